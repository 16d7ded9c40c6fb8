#!/usr/bin/env python
"""How many steps a style added to a multi-style model needs: held-out loss against steps, beside a from-scratch model.

``styler train --add-style new.jpg --from MODEL`` trains only the new style's (γ, β) rows of a conditional-norm
network; every convolution stays as the base model learned it. This script runs that same training (same settings,
same library, same result file) and, every ``--eval-every`` steps, scores the network being trained on held-out
photos with the new style's own training loss (:mod:`styler.evidence.heldout`). With ``--reference`` (a single-style
model of the same painting trained from scratch) it scores that model with the same loss on the same photos — and
refuses to start if the reference was trained against another image or with other loss settings — and reports the
first evaluated step whose total loss is at most the reference's (and within 5 % and 10 % of it).

Why in-process, evaluating from the trainer's step callback, rather than polling the run's checkpoint file or
training in chunks with resume: the checkpoint is overwritten every interval, so a poller that falls behind (the
evaluation competes with training for the same cores) silently skips steps; chunks restart the trainer, the VGG load
and the style Grams every time. Here the evaluation runs between two steps on the very network being trained, with
no gradient, in eval mode (conditional instance norm has no running statistics) and with every RNG state saved and
restored around it, so the run's weights are exactly those of a plain ``styler train --add-style`` (tested), and no
step is missed. The curve is rewritten after every evaluation, so an interrupted run keeps what it measured;
``--resume`` continues from the run's checkpoint.

    python scripts/add_style_curve.py --add-style ../shared/data/style/the_kiss.jpg \\
        --from runs/cin6/six_styles_cin.safetensors -d ../shared/data/content/train \\
        -o runs/addstyle/cin7_the_kiss.safetensors --preset zoo --iterations 2000 --threads 2 \\
        --vgg-weights ../shared/weights/vgg16-imagenet-caffe-features.pth \\
        --photos ../shared/data/content/eval --eval-every 100 \\
        --reference runs/addstyle/the_kiss_in.safetensors \\
        --json docs/cin/add_style_curve.json --plot docs/cin/add_style_curve.png
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from styler.devices import resolve_device
from styler.errors import StylerError
from styler.evidence.heldout import HeldOutScorer, StyleTarget, style_target
from styler.evidence.photos import Photo, load_photos
from styler.io.files import atomic_write_bytes, sha256_file
from styler.io.modelfile import load_model, read_header
from styler.io.zoo import find_model
from styler.loss.criterion import resolve_loss_weights
from styler.loss.lossnet import resolve_lossnet_spec
from styler.train.checkpoints import load_checkpoint
from styler.train.config import TrainConfig, config_from_options, resumed_config, style_settings
from styler.train.signals import TrainingInterrupted

#: Tolerances the summary reports the first step within (0: at most the reference's loss).
TOLERANCES = (0.0, 0.05, 0.10)

#: Training options of this script -> their TrainConfig field (all optional; unset ones keep the preset/default).
TRAIN_FIELDS = ("iterations", "batch_size", "image_size", "style_size", "lr", "seed", "threads", "device",
                "checkpoint_interval", "preview_interval", "log_interval", "content_weight", "style_weight",
                "tv_weight", "run_dir", "amp", "name")


# --- configuration -------------------------------------------------------------------------------------------------

def build_config(args: argparse.Namespace) -> tuple[TrainConfig, set[str]]:
    """The TrainConfig ``styler train --add-style ... --from ...`` with the same options would build."""
    options: dict[str, Any] = {k: getattr(args, k) for k in TRAIN_FIELDS if getattr(args, k) is not None}
    options.update(dataset=args.dataset, output=args.output, vgg_source="file", vgg_weights=args.vgg_weights,
                   progress=not args.quiet)
    explicit = set(options)
    options.update(style_settings(add_style=args.add_style, base_model=args.base_model))
    explicit |= {"style", "styles", "style_weights", "base_model"}
    if not Path(options["style"]).is_file():
        raise StylerError(f"style image not found: {options['style']}")
    return config_from_options(options, explicit=explicit, preset=args.preset)


def added_style_target(config: TrainConfig, convention: str) -> StyleTarget:
    """The loss the added style trains with (its row is the base model's style count), from the configuration."""
    base = read_header(find_model(config.base_model or ""))
    existing = base.arch.norm.num_styles if base.arch.norm.kind == "conditional" else 1
    weights = resolve_loss_weights(convention, content=config.content_weight, style=config.style_weight_for(0),
                                   tv=config.tv_weight, content_layer=config.content_layer,
                                   style_layers=config.style_layers)
    return StyleTarget(name=Path(config.style).stem, index=existing, num_styles=existing + 1,
                       file=Path(config.style).name, sha256=sha256_file(config.style), weights=weights,
                       style_size=config.style_size)


def check_reference(target: StyleTarget, reference: StyleTarget, where: str) -> list[str]:
    """Refuse a reference trained against another image or loss; returns warnings (an unverifiable image)."""
    problems = []
    if reference.sha256 and reference.sha256 != target.sha256:
        problems.append(f"its style image is another one ({reference.file or reference.name}, sha256 differs)")
    mine, theirs = target.describe(), reference.describe()
    for key in ("style_weight", "content_weight", "tv_weight", "content_layer", "style_layers", "style_size"):
        if mine[key] != theirs[key]:
            problems.append(f"{key} {theirs[key]!r} (the added style trains with {mine[key]!r})")
    if problems:
        raise StylerError(f"reference {where} is not comparable: " + "; ".join(problems))
    return [] if reference.sha256 else [f"reference {where} records no style checksum: its image is not verified"]


# --- the curve -----------------------------------------------------------------------------------------------------

def first_steps_within(points: Sequence[dict[str, Any]], reference_loss: float | None,
                       tolerances: Sequence[float] = TOLERANCES) -> dict[str, int | None]:
    """For each tolerance, the first evaluated step whose total loss is at most ``reference · (1 + tolerance)``."""
    if reference_loss is None:
        return {}
    return {f"{round(100 * t)}%": next((p["step"] for p in points if p["loss"] <= reference_loss * (1 + t)), None)
            for t in tolerances}


class Curve:
    """The held-out curve of one add-style run, written to JSON (and a plot) after every evaluation."""

    def __init__(self, config: TrainConfig, target: StyleTarget, scorer: HeldOutScorer, *, size: int | None,
                 every: int, json_path: str | None = None, plot_path: str | None = None,
                 reference: dict[str, Any] | None = None, stop_within: float | None = None) -> None:
        self.config, self.target, self.scorer = config, target, scorer
        self.size, self.every, self.json_path, self.plot_path = size, every, json_path, plot_path
        self.reference, self.stop_within = reference, stop_within
        self.points: list[dict[str, Any]] = []

    def resume_from(self, step: int) -> None:
        """Keep the points an earlier part of this run measured (up to its checkpoint's step)."""
        if self.json_path and Path(self.json_path).is_file():
            earlier = json.loads(Path(self.json_path).read_text())
            self.points = [p for p in earlier.get("points", []) if p["step"] <= step]

    def evaluate(self, net: torch.nn.Module, step: int) -> dict[str, Any]:
        device = next(net.parameters()).device
        started = time.perf_counter()
        # The scoring draws no random numbers today; forking the RNGs keeps the training stream exact regardless.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            terms = self.scorer.score(net, self.target, self.config.style)
        point = {"step": step, **terms, "eval_seconds": round(time.perf_counter() - started, 2)}
        self.points = [p for p in self.points if p["step"] != step] + [point]
        self.write()
        ref = self.reference["loss"] if self.reference else None
        relative = f" ({terms['loss'] / ref:.3f}× the reference)" if ref else ""
        print(f"step {step}: held-out loss {terms['loss']:.4g}{relative}, content {terms['content']:.4g}, "
              f"style {terms['style']:.4g}", file=sys.stderr, flush=True)
        return point

    def reached(self) -> bool:
        """Whether the last point is within ``stop_within`` of the reference."""
        if self.stop_within is None or not self.reference or not self.points:
            return False
        return self.points[-1]["loss"] <= self.reference["loss"] * (1 + self.stop_within)

    def summary(self) -> dict[str, Any]:
        ref = self.reference["loss"] if self.reference else None
        points = sorted(self.points, key=lambda p: p["step"])
        return {"style": self.target.name, "style_image": self.config.style, "base_model": self.config.base_model,
                "output": self.config.output, "iterations": self.config.iterations, "eval_every": self.every,
                "photos": len(self.scorer.contents), "size": self.size, "criterion": self.target.describe(),
                "training": {k: getattr(self.config, k) for k in ("batch_size", "image_size", "lr", "seed")},
                "reference": self.reference, "first_step_within": first_steps_within(points, ref),
                "points": points}

    def write(self) -> None:
        if self.json_path:
            atomic_write_bytes(self.json_path, (json.dumps(self.summary(), indent=2) + "\n").encode())
        if self.plot_path and self.points:
            from styler.evidence.figures import plot_loss_curves

            runs = {"added style (its γ/β only)": sorted(self.points, key=lambda p: p["step"])}
            if self.reference:
                last = max(p["step"] for p in self.points)
                flat = {k: self.reference[k] for k in ("loss", "content", "style", "tv")}
                runs[f"from scratch ({self.reference.get('steps')} steps)"] = [{"step": 0, **flat},
                                                                               {"step": max(last, 1), **flat}]
            plot_loss_curves(runs, self.plot_path, title=f"{self.target.name}: held-out loss "
                                                         f"({len(self.scorer.contents)} photos)")


def run_curve(config: TrainConfig, photos: Sequence[Photo], *, every: int, size: int | None = None,
              reference: str | None = None, json_path: str | None = None, plot_path: str | None = None,
              checkpoint: dict[str, Any] | None = None, stop_within: float | None = None) -> dict[str, Any]:
    """Train the added style as ``styler train`` would, scoring it every ``every`` steps; returns the summary.

    Raises :class:`TrainingInterrupted` (checkpoint written, curve kept) on SIGINT/SIGTERM.
    """
    from styler.train.trainer import Trainer

    if config.base_model is None or config.multi_style:
        raise StylerError("the curve is for one style added to a model: give --add-style IMAGE and --from MODEL")
    if every < 1:
        raise StylerError(f"--eval-every must be at least 1, got {every}")
    lossnet = resolve_lossnet_spec(config.vgg_source, config.vgg_weights, config.vgg_convention)
    target = added_style_target(config, lossnet.convention)
    # Built before the trainer, which seeds every RNG when it is constructed: nothing here can shift its stream.
    scorer = HeldOutScorer(lossnet, photos, device=resolve_device(config.device))
    scorer.criterion(target, config.style)
    reference_record = None
    if reference is not None:
        model = load_model(find_model(reference))
        ref_target = style_target(model.metadata, model.arch, None, convention=lossnet.convention, where=reference)
        for warning in check_reference(target, ref_target, reference):
            print(f"warning: {warning}", file=sys.stderr)
        training = model.metadata.get("training") or {}
        reference_record = {"model": reference, **scorer.score(model.net, ref_target, config.style),
                            "steps": training.get("steps"), "images_seen": training.get("images_seen")}
        print(f"reference {reference}: held-out loss {reference_record['loss']:.4g} after "
              f"{reference_record['steps']} steps", file=sys.stderr)
    curve = Curve(config, target, scorer, size=size, every=every, json_path=json_path, plot_path=plot_path,
                  reference=reference_record, stop_within=stop_within)
    holder: dict[str, Trainer] = {}

    def on_step(step: int, values: dict[str, float]) -> None:
        trainer = holder["trainer"]
        if step % every and step != trainer.config.iterations:
            return
        curve.evaluate(trainer.net, step)
        if curve.reached() and step < trainer.config.iterations:
            print(f"within {stop_within:.0%} of the reference at step {step}: stopping here", file=sys.stderr)
            # The loop runs while current_step < config.iterations: the run ends after this step and writes its
            # model as one of `step` steps (the model file records iterations = steps = step).
            trainer.config = dataclasses.replace(trainer.config, iterations=step)

    trainer = Trainer(config, checkpoint=checkpoint, on_step=on_step)
    holder["trainer"] = trainer
    if (trainer.styles.mix_indices[0], trainer.styles.num_styles) != (target.index, target.num_styles) or \
            trainer.criteria[0].weights != target.weights:
        raise StylerError("the trainer's added style differs from the one this script scores (a bug: the script "
                          "and styler.train disagree)")
    if checkpoint is None:
        curve.evaluate(trainer.net, 0)  # the new style's starting point: the mean of the base styles' (γ, β)
    else:
        curve.resume_from(trainer.current_step)
    trainer.run()
    curve.config = trainer.config
    curve.write()
    return curve.summary()


# --- the command ---------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--add-style", required=True, metavar="IMAGE[:WEIGHT]", help="the style to add")
    parser.add_argument("--from", dest="base_model", required=True, help="the model to add it to")
    parser.add_argument("-d", "--dataset", required=True, help="training photos")
    parser.add_argument("-o", "--output", required=True, help="model file to write (run folder beside it)")
    parser.add_argument("--vgg-weights", required=True)
    parser.add_argument("--photos", nargs="+", required=True, help="held-out photo files or folders")
    parser.add_argument("--size", type=int, default=256, help="long side of the held-out photos")
    parser.add_argument("--eval-every", type=int, default=100, help="steps between evaluations")
    parser.add_argument("--reference", help="a single-style model of the same painting trained from scratch")
    parser.add_argument("--json", default=None, help="the curve (rewritten after every evaluation)")
    parser.add_argument("--plot", default=None, help="the curve as a PNG")
    parser.add_argument("--stop-within", type=float, default=None, metavar="FRACTION",
                        help="stop once the held-out loss is within this fraction of the reference's (0: at most "
                             "the reference's); the model written is the one of that step")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    parser.add_argument("--preset", default=None, help="training preset (e.g. zoo: the shipped models' settings)")
    for name in ("iterations", "batch_size", "image_size", "style_size", "seed", "threads", "checkpoint_interval",
                 "preview_interval", "log_interval"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=None)
    for name in ("lr", "content_weight", "style_weight", "tv_weight"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--name", default=None)
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    from styler.cli.signals import sigterm_as_interrupt

    args = parse_args(argv)
    try:
        with sigterm_as_interrupt():
            config, explicit = build_config(args)
            checkpoint = None
            if args.resume:
                checkpoint = load_checkpoint(config.checkpoint_path)
                config = resumed_config(TrainConfig.from_dict(checkpoint["config"]), config, explicit)
            photos = load_photos(args.photos, size=args.size)
            summary = run_curve(config, photos, every=args.eval_every, size=args.size, reference=args.reference,
                                json_path=args.json, plot_path=args.plot, checkpoint=checkpoint,
                                stop_within=args.stop_within)
    except TrainingInterrupted as exc:
        print(f"\n{exc}\n(continue the curve with the same command and --resume)", file=sys.stderr)
        sys.exit(130)
    except StylerError as exc:
        sys.exit(f"add_style_curve.py: error: {exc}")
    print(json.dumps({k: summary[k] for k in ("style", "reference", "first_step_within")}, indent=2))
    return summary


if __name__ == "__main__":
    main()
