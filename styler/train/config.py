"""The settings of a training run, its presets, and how command-line options and checkpoints become one.

Why torch-free: the configuration is the contract between the command line, checkpoints and model files. Keeping it
free of torch lets ``styler train`` take its defaults and choices from here at import time (one source of truth
instead of a second hand-typed copy), reject bad settings — an unknown VGG layer, an unknown norm, a group count that
does not divide a layer width — before the dataset scan, the VGG load or even the torch import, and lets tools read
a checkpoint's configuration anywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styler.errors import StylerError
from styler.loss.taps import TAP_INDICES, unknown_taps
from styler.nn.spec import ArchSpec, NormSpec

__all__ = ["TrainConfig", "PRESETS", "RESUMABLE_OVERRIDES", "FROM_CHECKPOINT", "MIN_STYLE_SIZE", "config_from_options",
           "default_output", "iterations_for_epochs", "check_lr_drop", "resumed_config", "style_settings",
           "parse_style_argument"]

#: Placeholder for the paths a resumed run takes from its checkpoint (``--resume`` without ``--style`` etc.).
FROM_CHECKPOINT = "<checkpoint>"

#: Smallest long side of the style image: VGG16 pools it four times before relu5_x, and a few pixels leave no
#: texture to measure (the same floor as the training crops).
MIN_STYLE_SIZE = 16


@dataclass
class TrainConfig:
    """All settings of a training run; stored in checkpoints and in the final model's metadata.

    Loss weights left at ``None`` take the defaults of the loss network's convention
    (:meth:`styler.loss.losses.LossWeights.for_lossnet`). The field order is the order of the stored dictionaries.
    """

    style: str
    dataset: str
    output: str
    norm: str = "instance"
    groups: int = 8
    group_size: int | None = None
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
    lr_drops: tuple[tuple[int, float], ...] = ()
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
    styles: tuple[str, ...] = ()
    style_weights: tuple[float | None, ...] = ()
    base_model: str | None = None

    def __post_init__(self) -> None:
        self.style_layers = tuple(self.style_layers)
        self.lr_drops = tuple(sorted((int(step), float(factor)) for step, factor in self.lr_drops))
        self.preview_images = tuple(self.preview_images)
        self._check_styles()
        self._check_numbers()
        unknown = unknown_taps((self.content_layer, *self.style_layers))
        if unknown:
            raise StylerError(f"unknown VGG16 layer {unknown[0]!r}; known: {', '.join(TAP_INDICES)}")
        if self.iterations < 1 or self.batch_size < 1:
            raise StylerError("iterations and batch size must be at least 1")
        if self.image_size < 16:
            raise StylerError(f"training image size {self.image_size} is too small (minimum 16)")
        for key in ("checkpoint_interval", "preview_interval", "log_interval"):
            if getattr(self, key) < 0:
                raise StylerError(f"{key.replace('_', '-')} must be >= 0 (0 disables it)")
        # A user error rather than a traceback, and before the dataset scan and the VGG load.
        try:
            self.arch.validate()
        except ValueError as exc:
            raise StylerError(f"invalid network settings: {exc}") from None

    def _check_numbers(self) -> None:
        """Refuse settings that would only fail later, deep inside torch, or silently train nonsense.

        Why here and not only in the command line: a NaN learning rate or loss weight poisons every weight at the
        first step, a negative one climbs the loss instead of descending it, a style image of a few pixels vanishes
        in VGG's pooling, and an empty style-layer list has no style loss at all; library callers need the same
        one-line error as the command line, before the dataset scan and the VGG load.
        """
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise StylerError(f"learning rate must be a positive number, got {self.lr!r}")
        steps = [step for step, _ in self.lr_drops]
        for step, factor in self.lr_drops:
            check_lr_drop(step, factor)
        if len(set(steps)) != len(steps):
            raise StylerError("two learning-rate drops at the same step")
        for key in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, key)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise StylerError(f"{key.replace('_', '-')} must be a finite number >= 0, got {value!r}")
        if self.style_size is not None and self.style_size != 0 and self.style_size < MIN_STYLE_SIZE:
            raise StylerError(f"style size {self.style_size} is too small (minimum {MIN_STYLE_SIZE}, or 0 for the "
                              "image as it is)")
        if not self.style_layers:
            raise StylerError("no style layers: give at least one VGG16 layer, e.g. relu2_2")
        if self.threads is not None and self.threads < 1:
            raise StylerError(f"threads must be at least 1, got {self.threads}")

    def _check_styles(self) -> None:
        """Several styles (or a style added to a model) train one conditional-instance-norm network."""
        self.styles = tuple(str(s) for s in self.styles)
        self.style_weights = tuple(self.style_weights)
        if self.styles and self.styles[0] != self.style:
            raise StylerError("the first of several styles must be the run's style")
        if self.style_weights and len(self.style_weights) != len(self.style_list):
            raise StylerError(f"{len(self.style_weights)} style weights for {len(self.style_list)} styles")
        multi = len(self.styles) > 1 or self.base_model is not None
        if multi and NormSpec.parse(self.norm).kind not in ("instance", "conditional"):
            raise StylerError(f"several styles share one network through conditional instance norm (--norm cin); "
                              f"--norm {self.norm} cannot hold more than one style")

    @property
    def style_list(self) -> tuple[str, ...]:
        """Every style image this run trains, in style-index order (one for a single-style run)."""
        return self.styles if self.styles else (self.style,)

    @property
    def multi_style(self) -> bool:
        return len(self.style_list) > 1

    def style_weight_for(self, index: int) -> float | None:
        """The style loss weight of style ``index`` (None: the run's ``style_weight`` or the convention's)."""
        given = self.style_weights[index] if self.style_weights else None
        return self.style_weight if given is None else given

    def lr_at(self, step: int) -> float:
        """The learning rate of the step that follows ``step`` completed ones: ``lr`` times every drop due by then.

        Why a function of the step and nothing else: a resumed run then takes exactly the learning rates an
        uninterrupted one would, whatever the optimizer state it restored says.
        """
        rate = self.lr
        for drop_step, factor in self.lr_drops:
            if step >= drop_step:
                rate *= factor
        return rate

    @property
    def norm_spec(self) -> NormSpec:
        """The norm as a spec; ``sn_using_bn`` only means something for switchable norm. A multi-style run is
        conditional instance norm with one (γ, β) per style (an added style's count is the base model's plus one,
        settled by the trainer)."""
        if self.multi_style:
            return NormSpec(kind="conditional", num_styles=len(self.style_list))
        switchable = NormSpec.parse(self.norm).kind == "switchable"
        grouped = NormSpec.parse(self.norm).kind == "group"
        return NormSpec.parse(self.norm, groups=self.groups, using_bn=self.sn_using_bn if switchable else False,
                              group_size=self.group_size if grouped else None)

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
        """Plain JSON data (tuples as lists), as stored in checkpoints and model files."""
        data = dataclasses.asdict(self)
        data["style_layers"] = list(self.style_layers)
        data["preview_images"] = list(self.preview_images)
        # Left out at their defaults, so a single-style run's checkpoints and model files read as they always did.
        for key in _MULTI_STYLE_FIELDS:
            if not data[key]:
                del data[key]
            elif isinstance(data[key], tuple):
                data[key] = list(data[key])
        for key in _OPTIONAL_FIELDS:
            if data[key] in (None, ()):
                del data[key]
        if "lr_drops" in data:
            data["lr_drops"] = [list(drop) for drop in self.lr_drops]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; keys this version does not know (from a newer checkpoint) are ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


#: Multi-style settings, written only when used.
_MULTI_STYLE_FIELDS = ("styles", "style_weights", "base_model")

#: Further settings written only when set (older files never had them).
_OPTIONAL_FIELDS = ("group_size", "lr_drops")

#: Settings that may differ when a run is resumed; everything else must match the checkpoint.
RESUMABLE_OVERRIDES = frozenset({"iterations", "checkpoint_interval", "preview_interval", "log_interval", "device",
                                 "threads", "batch_size", "sync_bn", "lr_drops",
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


def default_output(style: str, norm: str) -> str:
    """Where a run writes its model when no output is given: ``models/<style>_<norm>.safetensors`` (model format v2)."""
    return str(Path("models") / f"{Path(style).stem}_{norm.lower()}.safetensors")


def config_from_options(options: Mapping[str, Any], *, explicit: Iterable[str] = (), preset: str | None = None,
                        resuming: bool = False) -> tuple[TrainConfig, set[str]]:
    """Build the configuration a command line asks for; returns it and the settings given explicitly.

    ``options`` maps every :class:`TrainConfig` field the caller offers to its value (defaults included);
    ``explicit`` names those the user actually passed. Why the distinction matters: a preset fills in only what was
    not given explicitly, and a resumed run keeps its checkpoint's settings except the explicit ones (see
    :func:`resumed_config`). When resuming, a missing style, dataset or output is :data:`FROM_CHECKPOINT` and not
    explicit; otherwise a missing output becomes :func:`default_output`.
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = dict(options)
    given = set(explicit) & fields
    if preset:
        if preset not in PRESETS:
            raise StylerError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
        values.update({key: value for key, value in PRESETS[preset].items() if key not in given})
        if not resuming:
            given |= set(PRESETS[preset])
    if resuming:
        for key in ("style", "dataset", "output"):
            if not values.get(key):
                values[key] = FROM_CHECKPOINT
                given.discard(key)
    elif values.get("style") and not values.get("output"):
        values["output"] = default_output(values["style"], values.get("norm", "instance"))
    return TrainConfig(**values), given


def resumed_config(saved: TrainConfig, requested: TrainConfig, explicit: Iterable[str],
                   step: int | None = None) -> TrainConfig:
    """The checkpoint's config wins; explicitly given options may only change the resumable settings.

    ``step`` is the checkpoint's step: learning-rate drops may be added or moved only where they change steps not
    taken yet (a drop before it would rewrite the run's history, and its log and model metadata would lie).
    """
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
    if step is not None and merged.lr_drops != saved.lr_drops:
        past = [f"{s}:{f:g}" for s, f in set(merged.lr_drops) ^ set(saved.lr_drops) if s < step]
        if past:
            raise StylerError(f"--lr-drop {', '.join(sorted(past))} would change steps this run has already taken "
                              f"(the checkpoint is at step {step}); drops may only come at step {step} or later")
    return merged


def check_lr_drop(step: int, factor: float) -> None:
    """One ``--lr-drop STEP:FACTOR``: a step of at least 1 and a finite factor in (0, 1] (a drop, never a rise)."""
    if step < 1 or not (math.isfinite(factor) and 0 < factor <= 1):
        raise StylerError(f"learning-rate drop {step}:{factor:g} needs a step >= 1 and a factor in (0, 1]")


def iterations_for_epochs(epochs: float, images: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps for ``epochs`` passes over ``images`` photos at a global batch of ``batch_size·world_size``.

    Raises:
        StylerError: ``epochs`` is not a positive, finite number (NaN and infinity would otherwise reach ``round``,
        and a negative count would silently train one step).
    """
    if not (math.isfinite(epochs) and epochs > 0):
        raise StylerError(f"epochs must be a positive number, got {epochs!r}")
    return max(1, round(epochs * images / (batch_size * world_size)))


#: Image suffixes a ``--styles DIR`` folder is searched for.
_STYLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def parse_style_argument(text: str) -> tuple[str, float | None]:
    """``painting.jpg`` or ``painting.jpg:2`` (the style weight of that style) → (path, weight or None).

    Only a trailing ``:NUMBER`` is a weight, so paths with colons elsewhere still work.
    """
    path, sep, tail = str(text).rpartition(":")
    if sep and path:
        try:
            weight = float(tail)
        except ValueError:
            return str(text), None
        if not weight > 0 or weight != weight or weight == float("inf"):
            raise StylerError(f"style weight in {text!r} must be a positive number")
        return path, weight
    return str(text), None


def style_settings(styles: Sequence[str] = (), styles_dir: str | None = None, add_style: str | None = None,
                   base_model: str | None = None) -> dict[str, Any]:
    """The style fields of a :class:`TrainConfig` from the command line's ``--style`` (repeatable,
    ``PATH[:WEIGHT]``), ``--styles DIR``, and ``--add-style PATH --from MODEL``.

    One style gives an ordinary single-style run; several give one conditional-instance-norm network with a
    (γ, β) per style; an added style trains only its own (γ, β) on top of ``base_model``. Returns ``style`` (None
    when nothing was given), ``styles``, ``style_weights`` and ``base_model``.
    """
    if (add_style is None) != (base_model is None):
        raise StylerError("--add-style and --from go together: the style to add and the model to add it to")
    if add_style is not None and (styles or styles_dir):
        raise StylerError("--add-style trains one new style; leave out --style/--styles")
    parsed = [parse_style_argument(s) for s in styles]
    if styles_dir is not None:
        folder = Path(styles_dir)
        if not folder.is_dir():
            raise StylerError(f"--styles: not a folder: {styles_dir}")
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in _STYLE_SUFFIXES and p.is_file())
        if not found:
            raise StylerError(f"--styles: no images in {styles_dir}")
        parsed += [(str(p), None) for p in found]
    if add_style is not None:
        parsed = [parse_style_argument(add_style)]
    if not parsed:
        return {"style": None, "styles": (), "style_weights": (), "base_model": None}
    paths = [path for path, _ in parsed]
    if len(set(paths)) != len(paths):
        raise StylerError("the same style image is given twice")
    weights = tuple(w for _, w in parsed)
    return {"style": paths[0], "styles": tuple(paths) if len(paths) > 1 else (),
            "style_weights": weights if any(w is not None for w in weights) else (), "base_model": base_model}
