"""``styler train``: parse options, build a TrainConfig, call :func:`styler.train.trainer.train`.

Why the defaults and choices are read from the library: the command documents ~25 settings of
:class:`~styler.train.config.TrainConfig`, and a second hand-typed copy of their defaults drifts. The configuration,
presets and norm registry are torch-free, so reading them here keeps ``styler train --help`` fast.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import click

from styler.cli.signals import sigterm_as_interrupt
from styler.errors import StylerError
from styler.nn.registry import norm_choices
from styler.train.config import (
    FROM_CHECKPOINT,
    MIN_STYLE_SIZE,
    PRESETS,
    TrainConfig,
    check_lr_drop,
    config_from_options,
    style_settings,
)
from styler.train.signals import TrainingInterrupted

#: TrainConfig field -> its default, for the options below.
DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(TrainConfig)
                            if f.default is not dataclasses.MISSING}

#: Command parameters whose TrainConfig field has another name.
FIELD_OF_PARAM = {"compile_": "compile", "quiet": "progress"}


class FiniteFloat(click.ParamType):
    """A float option that must be finite (no NaN, no infinity) and above ``minimum`` (or at least it).

    Why not ``click.FloatRange``: every comparison with NaN is false, so ``--lr nan`` passes any range check and
    surfaces much later as NaN weights or a traceback from ``round``; infinities pass a lower bound too.
    """

    name = "float"

    def __init__(self, minimum: float = 0.0, *, inclusive: bool = False) -> None:
        self.minimum, self.inclusive = minimum, inclusive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value} is not a finite number", param, ctx)
        if number < self.minimum or (number == self.minimum and not self.inclusive):
            self.fail(f"{value} must be {'>=' if self.inclusive else '>'} {self.minimum:g}", param, ctx)
        return number


class LrDrop(click.ParamType):
    """``STEP:FACTOR`` for ``--lr-drop``: from step STEP on, the learning rate is multiplied by FACTOR (in (0, 1])."""

    name = "STEP:FACTOR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, float]:
        if isinstance(value, tuple):
            return value
        step, sep, factor = str(value).partition(":")
        try:
            parsed = int(step), float(factor)
        except ValueError:
            self.fail(f"{value!r} is not STEP:FACTOR (e.g. 5000:0.1)", param, ctx)
        try:
            check_lr_drop(*parsed)
        except StylerError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)
        return parsed


def _style_size(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """``--style-size``: 0 (the image as it is) or at least :data:`~styler.train.config.MIN_STYLE_SIZE` pixels."""
    if value is not None and value != 0 and value < MIN_STYLE_SIZE:
        raise click.BadParameter(f"{value} is too small: the style image needs at least {MIN_STYLE_SIZE} px on its "
                                 "long side (0 = as it is)")
    return value


def _layer_list(value: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in str(value).split(",") if s.strip())


def _style_layers(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--style-layers``: comma-separated, at least one (an empty list would train without any style loss)."""
    if not _layer_list(value):
        example = ",".join(DEFAULTS["style_layers"])
        raise click.BadParameter(f"no layer given; name at least one VGG16 layer, e.g. {example}")
    return value


def _explicit(ctx: click.Context) -> set[str]:
    """The config fields the user gave on the command line or in the environment (not left at their default)."""
    from click.core import ParameterSource

    given = {name for name in ctx.params
             if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP, None)}
    fields = {FIELD_OF_PARAM.get(name, name) for name in given}
    if given & {"styles", "styles_dir", "add_style"}:  # the style options together set these fields
        fields |= {"style", "styles", "style_weights"}
    return fields


def _check_style_and_dataset(options: dict[str, Any]) -> None:
    from pathlib import Path

    missing = [f"--{k}" for k in ("style", "dataset") if not options.get(k)]
    if missing:
        raise click.UsageError(f"missing {' and '.join(missing)} (or use --resume CHECKPOINT)")
    for style in options.get("styles") or (options["style"],):
        if not Path(style).is_file():
            raise click.BadParameter(f"style image not found: {style}", param_hint="--style")


@click.command(context_settings={"show_default": True})
@click.option("--style", "-s", "styles", multiple=True, metavar="IMAGE[:WEIGHT]",
              help="Style image (any format Pillow reads). Repeat it to train one network on several styles "
                   "(conditional instance norm, a (γ, β) per style); ':WEIGHT' sets that style's style weight.")
@click.option("--styles", "styles_dir", type=click.Path(file_okay=False),
              help="Train on every image in this folder as a style (one multi-style network).")
@click.option("--add-style", type=click.Path(dir_okay=False), metavar="IMAGE[:WEIGHT]",
              help="Add this style to the model given with --from, training only its new (γ, β); the rest of the "
                   "network stays exactly as it is.")
@click.option("--from", "base_model", help="The model (file or bundled name) --add-style extends.")
@click.option("--dataset", "-d", type=click.Path(file_okay=False),
              help="Folder of training photos (searched recursively).")
@click.option("--output", "-o", type=click.Path(dir_okay=False),
              help="Model file to write. Default: models/<style>_<norm>.safetensors. Logs, checkpoints and previews "
                   "go to <output without its suffix>.run/.")
@click.option("--preset", type=click.Choice(list(PRESETS)),
              help="Bundle of settings: cpu-quick = half width, 128 px, 600 steps (~10 min on 2 CPU cores); "
                   "zoo = the shipped models' settings; paper = Johnson et al. (40k steps, for a GPU). "
                   "Options given explicitly override the preset.")
@click.option("--norm", "-n", type=click.Choice(norm_choices(), case_sensitive=False), default=DEFAULTS["norm"],
              help="Normalization layer: instance (default), batch, group, layer, switchable, or none.")
@click.option("--groups", type=int, default=DEFAULTS["groups"],
              help="Group norm: number of groups G (fixed G, not group size).")
@click.option("--group-size", type=click.IntRange(min=1), default=DEFAULTS["group_size"],
              help="Group norm: channels per group instead of a group count, the same in every layer "
                   "(1 = instance norm's statistics, the layer's width = layer norm's).")
@click.option("--sn-using-bn/--sn-no-bn", default=DEFAULTS["sn_using_bn"],
              help="Switchable norm: include the batch-norm branch (batch dependent in training).")
@click.option("--width", type=int, default=DEFAULTS["width"],
              help="Channels of the first layer (32 = paper, 16 = half width).")
@click.option("--residual-blocks", type=int, default=DEFAULTS["residual_blocks"],
              help="Residual blocks at quarter resolution.")
@click.option("--iterations", "-i", type=int, default=DEFAULTS["iterations"], help="Optimizer steps.")
@click.option("--epochs", type=FiniteFloat(0), default=None,
              help="Train for this many passes over the dataset instead of --iterations.")
@click.option("--batch-size", "-b", type=int, default=DEFAULTS["batch_size"],
              help="Images per step and per process: under torchrun/--nproc the global batch is this × processes.")
@click.option("--image-size", type=int, default=DEFAULTS["image_size"], help="Training crop size (pixels, square).")
@click.option("--style-size", type=click.IntRange(min=0), default=DEFAULTS["style_size"], callback=_style_size,
              help="Long side of the style image (0 = as is).")
@click.option("--content-weight", type=FiniteFloat(0, inclusive=True), default=DEFAULTS["content_weight"],
              help="Content loss weight. Default depends on the loss network: 1 (caffe), 1e5 (torchvision).")
@click.option("--style-weight", type=FiniteFloat(0, inclusive=True), default=DEFAULTS["style_weight"],
              help="Style loss weight. Default: 5 (caffe), 1e10 (torchvision).")
@click.option("--tv-weight", type=FiniteFloat(0, inclusive=True), default=DEFAULTS["tv_weight"],
              help="Total-variation weight on 0–255 pixels. Default: 1e-6.")
@click.option("--content-layer", default=DEFAULTS["content_layer"], help="VGG16 layer for the content loss.")
@click.option("--style-layers", default=",".join(DEFAULTS["style_layers"]), callback=_style_layers,
              help="Comma-separated VGG16 style layers.")
@click.option("--lr", type=FiniteFloat(0), default=DEFAULTS["lr"], help="Adam learning rate.")
@click.option("--lr-drop", "lr_drops", type=LrDrop(), multiple=True,
              help="From step STEP on, multiply the learning rate by FACTOR (repeatable, e.g. --lr-drop 5000:0.1). "
                   "A resumed run may add drops at its checkpoint's step or later.")
@click.option("--seed", type=int, default=DEFAULTS["seed"], help="Seed for initialization and the data order.")
@click.option("--device", default=DEFAULTS["device"], help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--threads", type=click.IntRange(min=1), default=DEFAULTS["threads"],
              help="CPU threads for torch. Default: torch's choice (all cores). On a busy machine 1 can be faster.")
@click.option("--amp/--no-amp", default=DEFAULTS["amp"],
              help="bf16 autocast where it is fast: CUDA, or a CPU with AMX/AVX512-BF16 (elsewhere on CPU bf16 is "
                   "~3x slower, so it stays off).")
@click.option("--channels-last/--no-channels-last", default=DEFAULTS["channels_last"],
              help="channels_last memory format. Default: on for CUDA, off for CPU.")
@click.option("--compile/--no-compile", "compile_", default=DEFAULTS["compile"],
              help="torch.compile the network and loss (worth it for long runs; ~1 min to compile).")
@click.option("--vgg-source", type=click.Choice(["auto", "file", "torchvision"]), default=DEFAULTS["vgg_source"],
              help="Loss network weights: a local file, torchvision's IMAGENET1K_V1 download, or auto "
                   "(file if --vgg-weights/$STYLER_VGG_WEIGHTS is set, else torchvision).")
@click.option("--vgg-weights", type=click.Path(dir_okay=False), default=DEFAULTS["vgg_weights"],
              envvar="STYLER_VGG_WEIGHTS",
              help="Local VGG16 features state_dict [env: STYLER_VGG_WEIGHTS].")
@click.option("--vgg-convention", type=click.Choice(["caffe", "torchvision"]), default=DEFAULTS["vgg_convention"],
              envvar="STYLER_VGG_CONVENTION", help="Input convention of --vgg-weights. Default: caffe.")
@click.option("--checkpoint-interval", type=int, default=DEFAULTS["checkpoint_interval"],
              help="Steps between checkpoints (0: only at the end).")
@click.option("--preview-interval", type=int, default=DEFAULTS["preview_interval"],
              help="Steps between preview grids (0: none).")
@click.option("--preview-image", "preview_images", multiple=True, type=click.Path(dir_okay=False),
              help="Photo to stylize in previews (repeatable). Default: 4 photos from the dataset.")
@click.option("--log-interval", type=int, default=DEFAULTS["log_interval"], help="Steps between log records.")
@click.option("--log-file", type=click.Path(dir_okay=False), default=DEFAULTS["log_file"],
              help="JSON-lines log. Default: <run dir>/log.jsonl.")
@click.option("--run-dir", type=click.Path(file_okay=False), default=DEFAULTS["run_dir"],
              help="Folder for checkpoints/logs/previews.")
@click.option("--half-storage/--full-storage", default=DEFAULTS["half_storage"],
              help="Store the model's weights in fp16.")
@click.option("--resume", type=click.Path(dir_okay=False), default=None,
              help="Continue from a checkpoint (settings come from the checkpoint; --iterations may be raised, "
                   "--lr-drop added from the checkpoint's step on).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--nproc", type=click.IntRange(min=1), default=None,
              help="Train data-parallel in this many local processes: relaunches this command under torchrun "
                   "(one process per GPU on CUDA; gloo on CPU). For several machines run torchrun yourself.")
@click.option("--sync-bn/--no-sync-bn", default=DEFAULTS["sync_bn"],
              help="Distributed runs with batch norm (or SN's BN branch): pool batch statistics over all processes "
                   "(the global batch) or keep per-process statistics. IN/GN/LN never need it.")
@click.option("--stop-after", type=int, default=None, hidden=True,
              help="Stop as if interrupted after this many steps (checkpoint written); for tests.")
@click.pass_context
def train(ctx: click.Context, **options) -> None:
    """Train a style model on a folder of photos.

    \b
    Example (recognizable style in ~10 minutes on 2 CPU cores):
      styler train -s starry_night.jpg -d photos/ --preset cpu-quick --vgg-weights vgg16-caffe.pth

    \b
    Data-parallel on 4 GPUs (or CPU processes), --batch-size per process:
      styler train ... --nproc 4
      torchrun --nproc_per_node=4 -m styler train ...      (the same, launched by hand)

    Ctrl-C (or SIGTERM) writes a checkpoint and stops; --resume continues exactly where it stopped.
    Exit codes: 0 done, 1 error (message on stderr), 2 usage error, 130 interrupted (checkpoint saved).
    """
    import sys

    from styler.train import distributed as dist_utils

    nproc = options.pop("nproc")
    stop_after = options.pop("stop_after")
    if nproc is not None and nproc > 1 and not dist_utils.under_launcher():
        argv = (ctx.find_root().obj or {}).get("argv", sys.argv[1:])
        args = dist_utils.strip_option(list(argv), "--nproc")
        click.echo(f"launching {nproc} processes with torchrun", err=True)
        ctx.exit(dist_utils.launch(nproc, args))
    # Not around the launcher above: torchrun, not this process, stops the ranks there.
    with sigterm_as_interrupt():
        _train_here(ctx, options, stop_after)


def _train_here(ctx: click.Context, options: dict[str, Any], stop_after: int | None) -> None:
    """The run in this process (one rank of a distributed run, or the whole run): configure, clean, train, report.

    The configuration is built and checked before torch is imported, so a bad setting is a one-line error at once.
    """
    import os

    main_rank = int(os.environ.get("RANK", "0")) == 0
    resume = options.pop("resume")
    epochs = options.pop("epochs")
    options.update(style_settings(options.pop("styles"), options.pop("styles_dir"), options.pop("add_style"),
                                  options.pop("base_model")))
    preset = options.pop("preset")
    options["compile"] = options.pop("compile_")
    options["progress"] = not options.pop("quiet")
    options["style_layers"] = _layer_list(options["style_layers"])
    if options["style_size"] == 0:
        options["style_size"] = None
    if resume is None:
        _check_style_and_dataset(options)
    config, explicit = config_from_options(options, explicit=_explicit(ctx), preset=preset,
                                           resuming=resume is not None)
    if main_rank:  # only rank 0 writes files, so only it may remove what an earlier run left
        _clean_stale_temp_files(config, resume)

    from styler.train.trainer import train as run_training

    try:
        # --epochs is turned into iterations by the library, once a resumed run's dataset and batch are known.
        result = run_training(config, resume=resume, explicit=explicit, stop_after=stop_after, epochs=epochs)
    except TrainingInterrupted as exc:
        if main_rank:
            click.echo(f"\n{exc}", err=True)
        ctx.exit(130)
    if not main_rank:
        return
    click.echo(f"model written to {result.model_path}")
    click.echo(f"  {result.steps} steps in {result.wall_seconds / 60:.1f} min "
               f"({result.images_per_second:.2f} images/s); final losses: "
               + ", ".join(f"{k} {v:.4g}" for k, v in result.final_losses.items()))
    click.echo(f"  log {result.log_path}" + (f", loss curve {result.loss_curve}" if result.loss_curve else ""))
    if result.skipped_images:
        click.echo(f"  skipped {result.skipped_images} unreadable or blank image(s)", err=True)


def _clean_stale_temp_files(config: TrainConfig, resume: str | None) -> None:
    """Remove the torn checkpoint and model temporaries that a killed earlier run of this folder left behind.

    Why at this point: a ``kill -9`` (or power loss) during a checkpoint or model write leaves
    ``.checkpoint.pth.XXXXXXXX.tmp`` beside the last good checkpoint, and nothing else ever removes it. Only
    styler's own temp names of this run's files go, and only those older than this process
    (:func:`styler.io.tempfiles.clean_stale_temp_files`).
    """
    from pathlib import Path

    from styler.io.tempfiles import clean_stale_temp_files

    run_dirs = {Path(resume).parent} if resume else {config.run_path}
    if config.run_dir:
        run_dirs.add(Path(config.run_dir))
    for folder in run_dirs:
        clean_stale_temp_files(folder, names={config.checkpoint_path.name})
    if config.output != FROM_CHECKPOINT:
        output = Path(config.output)
        clean_stale_temp_files(output.parent, names={output.name})
