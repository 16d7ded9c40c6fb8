"""Training a style model: resumable, observable, and reproducible.

One run trains one :class:`~styler.nn.network.TransformerNet` against one style image with the perceptual loss.
Everything a run produces lives beside the model file::

    starry_night.pth            the model (self-describing, see styler.io.modelfile)
    starry_night.loss.png       loss curves (written at the end)
    starry_night.run/
        checkpoint.pth          model + optimizer + step + RNG + config, written atomically
        log.jsonl               one JSON record per logged step (loss terms, lr, images/s, SN weights)
        previews/step_000200.png  fixed photos stylized in eval mode every N steps; latest.png is the newest

Why the data order is a function of (seed, step) and not of a loader's internal state: a run resumed from step *k*
then sees exactly the batches an uninterrupted run would, so resuming reproduces the uninterrupted weights.

Distributed training (``torchrun --nproc_per_node=N -m styler train ...``, or ``styler train --nproc N``) runs this
same loop on every rank; see :mod:`styler.train.distributed`. ``batch_size`` is per rank, the global batch is
``batch_size · world_size``; only rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from styler.train import distributed as dist_utils
from styler.train.checkpoints import load_checkpoint, save_checkpoint
from styler.train.data import BatchSchedule, PhotoFolder, load_style_image
from styler.devices import bf16_is_fast, resolve_device
from styler.errors import StylerError, TrainingError
from styler.io.files import sha256_file
from styler.loss.lossnet import TAP_INDICES, VGG16Features, resolve_lossnet_spec
from styler.loss.losses import LossWeights, PerceptualLoss
from styler.io.modelfile import save_model
from styler.nn.network import ArchSpec, TransformerNet, count_parameters
from styler.nn.norms import NormSpec, finalize_switchable_statistics, make_norm, switchable_layers

__all__ = ["TrainConfig", "TrainResult", "TrainingInterrupted", "train", "PRESETS",
           "RESUMABLE_OVERRIDES"]


@dataclass
class TrainConfig:
    """All settings of a training run; stored in checkpoints and in the final model's metadata.

    Loss weights left at ``None`` take the defaults of the loss network's convention
    (:meth:`styler.loss.losses.LossWeights.for_lossnet`).
    """

    style: str
    dataset: str
    output: str
    norm: str = "instance"
    groups: int = 8
    sn_using_bn: bool = False
    width: int = 32
    residual_blocks: int = 5
    iterations: int = 2000
    batch_size: int = 4
    image_size: int = 256
    style_size: int | None = 256
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    content_layer: str = "relu3_3"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    lr: float = 1e-3
    seed: int = 42
    device: str = "auto"
    threads: int | None = None
    amp: bool = True
    channels_last: bool | None = None
    compile: bool = False
    vgg_source: str = "auto"
    vgg_weights: str | None = None
    vgg_convention: str | None = None
    checkpoint_interval: int = 200
    preview_interval: int = 200
    log_interval: int = 10
    run_dir: str | None = None
    log_file: str | None = None
    preview_images: tuple[str, ...] = ()
    preview_count: int = 4
    preview_size: int = 256
    half_storage: bool = False
    name: str | None = None
    progress: bool = True
    sync_bn: bool = True

    def __post_init__(self) -> None:
        self.style_layers = tuple(self.style_layers)
        self.preview_images = tuple(self.preview_images)
        for layer in (self.content_layer, *self.style_layers):
            if layer not in TAP_INDICES:
                raise StylerError(f"unknown VGG16 layer {layer!r}; known: {', '.join(TAP_INDICES)}")
        if self.iterations < 1 or self.batch_size < 1:
            raise StylerError("iterations and batch size must be at least 1")
        if self.image_size < 16:
            raise StylerError(f"training image size {self.image_size} is too small (minimum 16)")
        for key in ("checkpoint_interval", "preview_interval", "log_interval"):
            if getattr(self, key) < 0:
                raise StylerError(f"{key.replace('_', '-')} must be >= 0 (0 disables it)")
        # Validate the network early (before the dataset scan and VGG load), as a user error rather than a
        # traceback: the norm name and options, the width, and that a group count divides every layer width.
        try:
            for channels in self.arch.channels:
                make_norm(self.norm_spec, channels)
        except ValueError as exc:
            raise StylerError(f"invalid network settings: {exc}") from None

    @property
    def norm_spec(self) -> NormSpec:
        return NormSpec.parse(self.norm, groups=self.groups,
                              using_bn=self.sn_using_bn if NormSpec.parse(self.norm).kind == "switchable" else False)

    @property
    def arch(self) -> ArchSpec:
        return ArchSpec(width=self.width, residual_blocks=self.residual_blocks, norm=self.norm_spec)

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir) if self.run_dir else Path(self.output).with_suffix(".run")

    @property
    def checkpoint_path(self) -> Path:
        return self.run_path / "checkpoint.pth"

    @property
    def log_path(self) -> Path:
        return Path(self.log_file) if self.log_file else self.run_path / "log.jsonl"

    @property
    def loss_curve_path(self) -> Path:
        return Path(self.output).with_suffix(".loss.png")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["style_layers"] = list(self.style_layers)
        data["preview_images"] = list(self.preview_images)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


#: Settings that may differ when a run is resumed; everything else must match the checkpoint.
RESUMABLE_OVERRIDES = frozenset({"iterations", "checkpoint_interval", "preview_interval", "log_interval", "device",
                                 "threads", "batch_size", "sync_bn",
                                 "progress", "output", "run_dir", "log_file", "compile", "half_storage", "name"})

#: Named bundles of settings for common situations (CLI: --preset).
PRESETS: dict[str, dict[str, Any]] = {
    # Recognizable style in well under 20 minutes on 2 CPU cores (measured in the README).
    "cpu-quick": {"width": 16, "image_size": 128, "batch_size": 4, "iterations": 600, "style_size": 256,
                  "checkpoint_interval": 100, "preview_interval": 100},
    # The settings of the shipped model zoo (half width; quality measured against full width in the README).
    "zoo": {"width": 16, "image_size": 160, "batch_size": 4, "iterations": 2000, "style_size": 256},
    # Johnson et al.'s recipe, for a GPU: full width, 256 px crops, 40k steps at batch 4.
    "paper": {"width": 32, "image_size": 256, "batch_size": 4, "iterations": 40000, "style_size": 256},
}


class TrainingInterrupted(StylerError):
    """Raised after a SIGINT/SIGTERM once the checkpoint has been written."""

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted at step {step}; checkpoint saved to {checkpoint}. "
                         f"Continue with: styler train --resume {checkpoint}")
        self.step = step
        self.checkpoint = checkpoint


@dataclass
class TrainResult:
    model_path: Path
    steps: int
    wall_seconds: float
    images_per_second: float
    final_losses: dict[str, float]
    log_path: Path
    loss_curve: Path | None
    skipped_images: int
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The trained network (on the CPU, eval mode), on every rank; only rank 0 writes it to ``model_path``.
    net: Any = None
    rank: int = 0
    world_size: int = 1


def hardware_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {threads} thread{'' if threads == 1 else 's'}"


def precision_description(use_amp: bool) -> str:
    return "bf16 autocast (fp32 weights, fp32 Gram matrices and losses)" if use_amp else "fp32"


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a checkpoint is written before exiting."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not in the main thread: signals cannot be caught there
            self._previous.clear()
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C stops at once
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((3, tuple(state["python"]), None))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _optimizer(net: nn.Module, lr: float) -> torch.optim.Optimizer:
    # SN mixture logits get their own group (no weight decay toward uniform, docs/norms.md §5.3).
    logits = [p for n, p in net.named_parameters() if n.endswith("_logits")]
    others = [p for n, p in net.named_parameters() if not n.endswith("_logits")]
    groups = [{"params": others, "name": "weights"}]
    if logits:
        groups.append({"params": logits, "name": "sn_logits", "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=lr)


def _preview_photos(config: TrainConfig, dataset: PhotoFolder) -> list[torch.Tensor]:
    from styler.evidence.figures import fit_into
    from styler.io.images import open_rgb, pil_to_tensor

    paths = [Path(p) for p in config.preview_images]
    if not paths and config.preview_count > 0:
        files = dataset.files
        step = max(1, len(files) // config.preview_count)
        paths = files[::step][: config.preview_count]
    photos = []
    for path in paths:
        try:
            photos.append(pil_to_tensor(fit_into(open_rgb(path), config.preview_size)))
        except StylerError:
            continue
    return photos


def _save_preview(net: TransformerNet, photos: list[torch.Tensor], device: torch.device, step: int,
                  folder: Path, title: str) -> Path | None:
    if not photos:
        return None
    from styler.evidence.figures import image_grid
    from styler.io.images import tensor_to_pil

    was_training = net.training
    net.eval()
    with torch.no_grad():
        outputs = [tensor_to_pil(net(p.to(device)).cpu()) for p in photos]
    net.train(was_training)
    grid = image_grid([[tensor_to_pil(p) for p in photos], outputs], cell=max(p.shape[-1] for p in photos) // 2 * 2,
                      row_labels=["photo", f"step {step}"], title=title)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:06d}.png"
    grid.save(path)
    grid.save(folder / "latest.png")
    return path


def _check_resume_compatible(saved: TrainConfig, requested: TrainConfig, explicit: set[str]) -> TrainConfig:
    """The checkpoint's config wins; explicitly given options may only change the resumable settings."""
    conflicts = []
    merged = dataclasses.replace(saved)
    for key in explicit:
        new, old = getattr(requested, key), getattr(saved, key)
        if key in RESUMABLE_OVERRIDES:
            setattr(merged, key, new)
        elif new != old:
            conflicts.append(f"--{key.replace('_', '-')} ({old!r} in the checkpoint, {new!r} given)")
    if conflicts:
        raise StylerError("cannot change these settings when resuming: " + ", ".join(conflicts))
    return merged


def train(config: TrainConfig, *, resume: str | os.PathLike | None = None, explicit: set[str] | None = None,
          on_step: Callable[[int, dict[str, float]], None] | None = None,
          stop_after: int | None = None, epochs: float | None = None) -> TrainResult:
    """Run (or resume) training and write the model file; returns what was produced and measured.

    Under torchrun (``WORLD_SIZE > 1``) every rank calls this function; it joins the process group (or reuses one
    the caller set up), trains with DDP on ``batch_size`` images per rank, and only rank 0 writes files.

    Args:
        config: the run's settings. When resuming, the checkpoint's settings are used instead, except those in
            :data:`RESUMABLE_OVERRIDES` that appear in ``explicit`` (the options the user actually passed).
        resume: a checkpoint path to continue from (every rank reads the same file).
        on_step: called after every step with the step number and loss terms (tests and tooling). In a distributed
            run the terms are the means over the global batch, identical on every rank.
        stop_after: stop (as if interrupted, checkpoint written) after this many steps; for tests.
        epochs: train for this many passes over the dataset instead of ``config.iterations``. Computed here, after
            a resumed run's settings are known, from the dataset, per-rank batch and world size actually used.
    """
    if resume is not None:
        ckpt = load_checkpoint(resume)
        config = _check_resume_compatible(TrainConfig.from_dict(ckpt["config"]), config, explicit or set())
    else:
        ckpt = None

    device = torch.device(resolve_device(config.device))
    ctx, device = dist_utils.setup(device)
    try:
        if epochs is not None:
            count = len(PhotoFolder(Path(config.dataset), config.image_size))
            iterations = max(1, round(epochs * count / (config.batch_size * ctx.world_size)))
            config = dataclasses.replace(config, iterations=iterations)
        return _train(config, ckpt, ctx, device, on_step, stop_after)
    finally:
        dist_utils.cleanup(ctx)


def _batch_norm_mode(config: TrainConfig, ctx: "dist_utils.DistContext", synced: list[str]) -> str:
    """How batch statistics were computed, in words, for the model file."""
    if not config.norm_spec.batch_dependent_in_training:
        return "not applicable: the norm's statistics are per image, so they never cross images or ranks"
    if not ctx.enabled:
        return f"single process: statistics over the batch of {config.batch_size}"
    if synced:
        return (f"synchronized: statistics pooled over all {ctx.world_size} ranks, i.e. over the global batch of "
                f"{config.batch_size * ctx.world_size}")
    return (f"per rank: each of the {ctx.world_size} ranks normalized with its own {config.batch_size} images; "
            "running statistics are rank 0's")


def _train(config: TrainConfig, ckpt: dict[str, Any] | None, ctx: "dist_utils.DistContext", device: torch.device,
           on_step: Callable[[int, dict[str, float]], None] | None, stop_after: int | None) -> TrainResult:
    main = ctx.is_main
    if config.threads:
        torch.set_num_threads(config.threads)
    # The same seed on every rank: identical initialization (DDP also broadcasts rank 0's weights at wrap time).
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    use_amp = config.amp and bf16_is_fast(device.type)
    if ckpt is not None:
        # A resumed run keeps the precision it started with, so its steps are not a mix; bf16 can only continue
        # where it is still fast (a run moved to a CPU without native bf16 goes on in fp32).
        use_amp = bool(ckpt.get("bf16_autocast", use_amp)) and bf16_is_fast(device.type)
    if ctx.enabled:
        # Every rank must compute in the same precision, even on a mix of machines: bf16 only if all agree.
        use_amp = dist_utils.all_ranks_agree(use_amp, device)
    channels_last = config.channels_last if config.channels_last is not None else device.type == "cuda"
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    world = ctx.world_size
    global_batch = config.batch_size * world
    start_step, elapsed_before, images_before = 0, 0.0, 0
    history: list[dict[str, Any]] = []
    if ckpt is not None:
        start_step = int(ckpt["step"])
        elapsed_before = float(ckpt.get("elapsed", 0.0))
        saved_global = int(ckpt.get("global_batch", ckpt["config"]["batch_size"]))
        images_before = int(ckpt.get("images_seen", start_step * saved_global))
        history = list(ckpt.get("history", [{"from_step": 0, "world_size": 1, "batch_size": saved_global,
                                             "global_batch": saved_global}]))
        if saved_global != global_batch and main:
            import warnings

            warnings.warn(f"resuming with a global batch of {global_batch} ({world} rank(s) × {config.batch_size}) "
                          f"instead of {saved_global}: the data continues at image {images_before} of the schedule "
                          "(nothing skipped or repeated), but the steps from here on are not those of the original "
                          "run", stacklevel=2)
    if not history or (history[-1]["world_size"], history[-1]["batch_size"]) != (world, config.batch_size):
        history.append({"from_step": start_step, "world_size": world, "batch_size": config.batch_size,
                        "global_batch": global_batch})

    dataset = PhotoFolder(Path(config.dataset), config.image_size)
    schedule = BatchSchedule(dataset, config.batch_size, config.seed, rank=ctx.rank, world_size=world,
                             origin_step=start_step, origin_position=images_before)
    lossnet_spec = resolve_lossnet_spec(config.vgg_source, config.vgg_weights, config.vgg_convention)
    defaults = LossWeights.for_lossnet(lossnet_spec.convention)
    weights = LossWeights(
        content=defaults.content if config.content_weight is None else config.content_weight,
        style=defaults.style if config.style_weight is None else config.style_weight,
        tv=defaults.tv if config.tv_weight is None else config.tv_weight,
        content_layer=config.content_layer, style_layers=config.style_layers)
    lossnet, lossnet_spec = VGG16Features.load(lossnet_spec, (weights.content_layer, *weights.style_layers))
    style_image = load_style_image(config.style, config.style_size)
    loss_fn = PerceptualLoss(lossnet, style_image, weights).to(device)  # frozen, never wrapped in DDP
    if use_amp:
        # Style Grams were computed in fp32 above; the frozen conv stack now computes in bf16 once and for all.
        loss_fn.lossnet.layers.to(torch.bfloat16)

    net = TransformerNet(config.arch).to(device)
    synced = dist_utils.convert_sync_norms(net) if (ctx.enabled and config.sync_bn) else []
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        loss_fn = loss_fn.to(memory_format=torch.channels_last)
    optimizer = _optimizer(net, config.lr)
    if ckpt is not None:
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if main:
            _set_rng_state(ckpt["rng"], device)
        else:
            dist_utils.seed_rank(config.seed, ctx.rank, start_step)
    elif ctx.enabled and not main:
        dist_utils.seed_rank(config.seed, ctx.rank)
    net.train()
    model: nn.Module = net
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        # broadcast_buffers: rank 0's BN running statistics are copied to all ranks before each forward, so every
        # rank holds the same buffers (they are equal anyway when the statistics are synchronized).
        model = DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None,
                                        broadcast_buffers=True)
    forward = torch.compile(model) if config.compile else model
    loss_forward = torch.compile(loss_fn) if config.compile else loss_fn

    run_path = config.run_path
    log_path = config.log_path
    if main:
        run_path.mkdir(parents=True, exist_ok=True)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if ckpt is None and log_path.exists():
            log_path.unlink()  # a fresh run starts a fresh log
        elif ckpt is not None and log_path.exists():
            _truncate_log(log_path, start_step)
    preview_photos = _preview_photos(config, dataset) if main else []
    style_name = Path(config.style).stem
    title = f"{style_name} · {config.norm_spec.short_name} · width {config.width}"

    def images_seen(at_step: int) -> int:
        return images_before + (at_step - start_step) * global_batch

    def checkpoint(step: int, elapsed: float) -> None:
        if not main:
            return
        save_checkpoint(config.checkpoint_path, {
            "config": config.to_dict(), "model": net.state_dict(), "optimizer": optimizer.state_dict(),
            "step": step, "elapsed": elapsed, "rng": _rng_state(device), "bf16_autocast": use_amp,
            "skipped_images": len(dataset.bad_files), "world_size": world, "global_batch": global_batch,
            "images_seen": images_seen(step), "history": history})

    progress = None
    if config.progress and main:
        from tqdm import tqdm

        progress = tqdm(total=config.iterations, initial=start_step, unit="step", dynamic_ncols=True,
                        desc=f"train {style_name}/{config.norm_spec.short_name}"
                             + (f" ×{world} ranks" if ctx.enabled else ""))
    recent: list[dict[str, float]] = []
    window_start, window_images = time.perf_counter(), 0
    t0 = time.perf_counter()
    step = start_step
    last_saved = start_step if ckpt is not None else None
    try:
        with _StopFlag() as stop:
            while step < config.iterations:
                batch = schedule.batch(step).to(device, non_blocking=True)
                if channels_last:
                    batch = batch.contiguous(memory_format=torch.channels_last)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                    output = forward(batch)
                    terms = loss_forward(output.float(), batch)
                values = terms.as_floats()
                stop_requested = stop.signal is not None
                if ctx.enabled:
                    # Global-batch means for the log and the NaN guard (every rank takes the same decision), and
                    # a signal seen by any rank stops all of them at the same step.
                    values, stop_requested = _reduce_step_values(values, stop_requested, device)
                if not math.isfinite(values["loss"]):
                    kept = (f"the last good checkpoint {config.checkpoint_path} (step {last_saved}) was kept"
                            if last_saved is not None else "no checkpoint had been written yet")
                    raise TrainingError(
                        f"loss became {values['loss']} at step {step} (content {values['content']:.4g}, style "
                        f"{values['style']:.4g}, tv {values['tv']:.4g}). The usual cause is loss weights that are "
                        f"too high (style weight {weights.style:g}, content {weights.content:g}, tv {weights.tv:g}) "
                        f"or a learning rate that is too high ({config.lr:g}): lower --style-weight or --lr. {kept}.")
                terms.total.backward()
                optimizer.step()
                step += 1
                window_images += batch.shape[0] * world
                recent.append(values)
                if on_step is not None:
                    on_step(step, values)
                if progress is not None:
                    progress.update(1)
                    progress.set_postfix(loss=f"{values['loss']:.3g}", content=f"{values['content']:.3g}",
                                         style=f"{values['style']:.3g}", tv=f"{values['tv']:.2g}", refresh=False)
                elapsed = elapsed_before + time.perf_counter() - t0
                if main and config.log_interval and (step % config.log_interval == 0 or step == config.iterations):
                    now = time.perf_counter()
                    record = {"step": step, "epoch": round(schedule.epoch_of(step), 4),
                              **{k: sum(r[k] for r in recent) / len(recent) for k in recent[0]},
                              "lr": optimizer.param_groups[0]["lr"],
                              "images_per_s": window_images / max(now - window_start, 1e-9),
                              "elapsed_s": round(elapsed, 2)}
                    if ctx.enabled:
                        record["world_size"] = world
                    sn = {name: layer.mixture_weights() for name, layer in switchable_layers(net)}
                    if sn:
                        record["sn_weights"] = sn
                    with open(log_path, "a") as handle:
                        handle.write(json.dumps(record) + "\n")
                    recent, window_start, window_images = [], now, 0
                if main and config.preview_interval and step % config.preview_interval == 0:
                    _save_preview(net, preview_photos, device, step, run_path / "previews", title)
                if config.checkpoint_interval and step % config.checkpoint_interval == 0:
                    checkpoint(step, elapsed)
                    last_saved = step
                # A stop that arrives during the last step lets the run finish normally (the model gets written).
                if step < config.iterations and (stop_requested or (stop_after is not None
                                                                    and step - start_step >= stop_after)):
                    checkpoint(step, elapsed)
                    dist_utils.barrier(ctx)  # the checkpoint exists before any rank reports it
                    raise TrainingInterrupted(step, config.checkpoint_path)
    finally:
        if progress is not None:
            progress.close()

    wall = elapsed_before + time.perf_counter() - t0
    checkpoint(step, wall)
    # Batch-average SN statistics are meaningless until finalized over training batches (docs/norms.md §5.3). Every
    # rank takes part: with synchronized SN the finalize forwards pool statistics over the ranks.
    if any(m.using_bn and not m.using_moving_average for _, m in switchable_layers(net)):
        finalize_switchable_statistics(net, (schedule.batch(config.iterations + i).to(device) for i in range(50)))
    net.eval()
    bad_files: dict[str, str] = {}
    for part in dist_utils.gather_objects(dict(dataset.bad_files), ctx):
        bad_files.update(part)
    total_images = images_seen(step)
    run_images = total_images - images_before
    run_wall = wall - elapsed_before
    metadata: dict[str, Any] = {}
    final: dict[str, float] = {}
    curve = None
    if main:
        records = read_log(log_path)
        final = _final_losses(records)
        metadata = {
            "name": config.name or Path(config.output).stem,
            "style": {"name": style_name, "file": Path(config.style).name, "sha256": sha256_file(config.style),
                      "size": list(style_image.shape[-2:])},
            "norm": config.norm_spec.to_dict(),
            "inference_statistics": config.norm_spec.inference_statistics,
            "loss_network": lossnet_spec.describe(),
            "loss_weights": weights.to_dict(),
            "training": {**{k: v for k, v in config.to_dict().items()
                            if k not in ("progress", "preview_images", "run_dir", "log_file", "output")},
                         "steps": step, "images_seen": total_images, "wall_seconds": round(wall, 1),
                         "images_per_second": round(run_images / run_wall, 3) if run_wall > 0 else None,
                         "hardware": hardware_description(device), "device": device.type,
                         "precision": precision_description(use_amp),
                         "dataset_images": len(dataset), "skipped_images": len(bad_files),
                         "world_size": world, "global_batch": global_batch, "batch_size_is": "per rank",
                         "distributed": {**ctx.describe(), "history": history,
                                         "batch_statistics": _batch_norm_mode(config, ctx, synced),
                                         "synchronized_norm_layers": len(synced)}},
            "final_losses": final,
            "parameters": count_parameters(net),
        }
        model_path = save_model(config.output, net.cpu(), metadata, half=config.half_storage)
        if records:
            from styler.evidence.figures import plot_loss_curves

            curve = plot_loss_curves({config.norm_spec.short_name: records}, config.loss_curve_path,
                                     title=f"{style_name} · {config.norm_spec.short_name}")
    else:
        model_path = Path(config.output)
        net.cpu()
    dist_utils.barrier(ctx)  # the model file exists before any rank returns
    return TrainResult(model_path=model_path, steps=step, wall_seconds=wall,
                       images_per_second=run_images / run_wall if run_wall > 0 else 0.0, final_losses=final,
                       log_path=log_path, loss_curve=curve, skipped_images=len(bad_files),
                       metadata=metadata, net=net, rank=ctx.rank, world_size=world)


def _reduce_step_values(values: dict[str, float], stop: bool, device: torch.device) -> tuple[dict[str, float], bool]:
    """Mean of the loss terms over the ranks (equal per-rank batches: the global-batch mean) and any rank's stop."""
    import torch.distributed as dist

    keys = list(values)
    packed = torch.tensor([values[k] for k in keys] + [1.0 if stop else 0.0], dtype=torch.float64,
                          device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(packed)
    world = dist.get_world_size()
    reduced = {k: float(packed[i]) / world for i, k in enumerate(keys)}
    return reduced, bool(packed[-1] > 0)


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a training log (JSON lines); unreadable lines (e.g. a torn last line) are skipped."""
    records = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log records written after the checkpoint's step (they will be redone)."""
    kept = [r for r in read_log(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def _final_losses(records: list[dict[str, Any]], last: int = 5) -> dict[str, float]:
    tail = records[-last:]
    if not tail:
        return {}
    return {k: sum(r[k] for r in tail) / len(tail) for k in ("loss", "content", "style", "tv") if k in tail[0]}
