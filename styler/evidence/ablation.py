"""Norm ablation: comparison grids and measured batch independence, contrast sensitivity and train/eval gaps.

The library behind ``styler compare``, ``styler independence`` and ``styler report``. Every measurement follows the
designs of the project's ``docs/norms.md`` §6:

* **Batch independence** (§6.1): the target photo is stylized alone, then inside batches with other companions
  (other photos, a darkened copy, a flat grey image, noise) and at different positions; the target's output in each
  batch is compared with its output alone, in eval mode and in train mode (batch statistics). Every train-mode
  forward runs on a fresh ``copy.deepcopy`` of the network, so running-statistics updates never leak between runs.
  Verdicts use the tolerances of §6.5: fp32 ``atol = rtol = 1e-4`` and fp64 ``atol = 1e-10``.
* **Contrast and brightness** (§6.4, Ulyanov et al.'s argument): ``f(a·A + b)`` vs ``f(A)`` for a set of affine
  intensity changes, reported as max|Δ| relative to max|f(A)|. With reflection padding, instance norm is exactly
  invariant to brightness and nearly invariant to contrast (the residual is ε's); no other norm is.
* **Train/eval gap** (§6.3): eval output (running statistics) vs the output with batch statistics, for the photos
  as one batch and for each photo alone (where batch norm equals instance norm).

Differences are measured on the raw (unclamped) network output. PSNR uses a peak of 1.0 on that raw output and is
``inf`` for identical outputs.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from PIL import Image

from styler.errors import StylerError
from styler.evidence.figures import image_grid
from styler.io.images import RGBImage, read_image, resize_image, tensor_to_pil, to_uint8
from styler.io.modelfile import LoadedModel, load_model
from styler.nn.norms import NormSpec

__all__ = [
    "STATS_CHOICES", "DEFAULT_TRANSFORMS", "Photo", "BatchPlan", "IndependenceRow", "ContrastRow", "GapRow",
    "as_loaded", "model_label", "model_steps", "model_style", "load_photo", "load_photos", "synthetic_companions",
    "default_batch_plans", "compare_grid", "compare_outputs", "measure_independence", "independence_figure",
    "contrast_sensitivity", "contrast_figure", "train_eval_gap", "tolerance_for", "difference_heatmap",
    "format_table", "rows_to_dicts",
]

#: Which statistics BN/SN models use in ``compare``: running (eval, what ``styler apply`` does), batch (train-mode
#: statistics of all compared photos as one batch) or single (train mode, each photo alone: BN then equals IN).
STATS_CHOICES = ("running", "batch", "single")

#: Intensity changes (a, b) for ``f(a·A + b)``, the network-level set of docs/norms.md §6.4.
DEFAULT_TRANSFORMS: tuple[tuple[float, float], ...] = (
    (0.5, 0.0), (2.0, 0.0), (1.0, 0.3), (1.0, -0.3), (0.6, 0.25), (0.2, 0.4))

#: Tolerances of docs/norms.md §6.5: (atol, rtol) per dtype.
TOLERANCES: dict[torch.dtype, tuple[float, float]] = {torch.float32: (1e-4, 1e-4), torch.float64: (1e-10, 0.0)}


# --- models and photos ---------------------------------------------------------------------------------------------

def as_loaded(model: "LoadedModel | str | os.PathLike") -> LoadedModel:
    """A :class:`LoadedModel` from a path or an already loaded model."""
    if isinstance(model, LoadedModel):
        return model
    from styler.io.zoo import find_model

    return load_model(find_model(model))


def model_style(loaded: LoadedModel) -> str:
    style = loaded.metadata.get("style")
    if isinstance(style, dict):
        return str(style.get("name") or style.get("file") or "?")
    return str(style) if style else "?"


def model_steps(loaded: LoadedModel) -> int | None:
    training = loaded.metadata.get("training")
    if isinstance(training, dict) and training.get("steps") is not None:
        return int(training["steps"])
    return None


def model_label(loaded: LoadedModel, multiline: bool = True) -> str:
    """``IN · width 16`` / style / steps, the row label of grids and tables (width, so that a half- and a
    full-width model of the same norm can be told apart)."""
    steps = model_steps(loaded)
    parts = [f"{loaded.arch.norm.short_name} · width {loaded.arch.width}", model_style(loaded),
             f"{steps} steps" if steps is not None else "untrained?"]
    return ("\n" if multiline else " · ").join(parts)


@dataclass
class Photo:
    """A photo prepared for the network: name, 1×3×H×W float32 tensor in [0, 1]."""

    name: str
    tensor: torch.Tensor

    @property
    def pil(self) -> Image.Image:
        return tensor_to_pil(self.tensor[0])


def _center_square(image: RGBImage) -> RGBImage:
    h, w = image.rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return RGBImage(rgb=np.ascontiguousarray(image.rgb[top:top + side, left:left + side]), source=image.source)


def load_photo(source: "str | os.PathLike | RGBImage | Image.Image", size: int | None = 256, *,
               square: bool = False, name: str | None = None) -> Photo:
    """Read a photo (via :mod:`styler.io.images`), optionally centre-crop it to a square, and scale its long side to
    ``size`` (None: keep the size). Alpha is dropped."""
    if isinstance(source, Image.Image):
        arr = np.asarray(source.convert("RGB"), dtype=np.float32) / 255.0
        image = RGBImage(rgb=arr, source=name or "<image>")
    elif isinstance(source, RGBImage):
        image = source
    else:
        image = read_image(source)
        name = name or Path(source).stem
    if square:
        image = _center_square(image)
    if size:
        w, h = image.size
        scale = size / max(w, h)
        image = resize_image(image, (max(5, round(w * scale)), max(5, round(h * scale))))
    tensor = torch.from_numpy(np.ascontiguousarray(image.rgb.transpose(2, 0, 1)))[None].float()
    return Photo(name=name or Path(image.source or "photo").stem, tensor=tensor)


def load_photos(sources: Iterable[Any], size: int | None = 256, *, square: bool = False) -> list[Photo]:
    """Several photos; folders are expanded to the images they contain (sorted)."""
    from styler.io.images import find_images

    photos = []
    for source in sources:
        if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            photos.extend(load_photo(p, size, square=square) for p in find_images(source))
        else:
            photos.append(load_photo(source, size, square=square))
    if not photos:
        raise StylerError("no photos given (or the folders hold no images)")
    return photos


def synthetic_companions(target: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Batch-mates that differ strongly from any photo: a darkened copy of the target, flat grey, uniform noise."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "dark": target * 0.1,
        "flat": torch.full_like(target, 0.5),
        "noise": torch.rand(target.shape, generator=gen, dtype=target.dtype),
    }


# --- forward passes ------------------------------------------------------------------------------------------------

def _forward(net: torch.nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Eval forward on ``net`` itself, or a train-mode forward (batch statistics) on a throwaway deep copy."""
    with torch.no_grad():
        if mode == "eval":
            was = net.training
            net.eval()
            try:
                return net(x)
            finally:
                net.train(was)
        if mode == "train":
            scratch = copy.deepcopy(net).train()
            return scratch(x)
    raise ValueError(f"unknown mode {mode!r}: expected 'eval' or 'train'")


def _net_in(loaded: LoadedModel, dtype: torch.dtype) -> torch.nn.Module:
    net = loaded.net
    device = next(net.parameters()).device
    if dtype != torch.float32 or device.type != "cpu":
        net = copy.deepcopy(net).to(device="cpu", dtype=dtype)
    return net.eval()


def tolerance_for(dtype: torch.dtype, scale: float) -> float:
    atol, rtol = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    return atol + rtol * scale


def _psnr(diff: torch.Tensor) -> float:
    mse = float(diff.double().pow(2).mean())
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def _diff_stats(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    diff = (a.double() - b.double())
    return float(diff.abs().max()), float(diff.abs().mean()), _psnr(diff)


def _stats_mode(spec: NormSpec, mode: str) -> str:
    if mode == "train" and spec.batch_dependent_in_training:
        return "train (batch statistics)"
    return mode


# --- comparison grid -----------------------------------------------------------------------------------------------

def compare_outputs(models: Sequence[Any], photos: Sequence[Photo], *, stats: str = "running",
                    use_stylizer: bool = True) -> list[list[Image.Image]]:
    """Stylized photos, one list per model. ``stats`` picks BN/SN statistics (see :data:`STATS_CHOICES`); models
    whose training forward is batch independent are always run in eval mode (their train mode is identical)."""
    if stats not in STATS_CHOICES:
        raise StylerError(f"unknown statistics {stats!r}; choose from {', '.join(STATS_CHOICES)}")
    rows = []
    for model in models:
        loaded = as_loaded(model)
        dependent = loaded.arch.norm.batch_dependent_in_training
        if stats == "running" or not dependent:
            if use_stylizer:
                rows.append(_stylize_eval(loaded, photos))
            else:
                rows.append([tensor_to_pil(_forward(loaded.net, p.tensor, "eval")[0]) for p in photos])
        elif stats == "single":
            rows.append([tensor_to_pil(_forward(loaded.net, p.tensor, "train")[0]) for p in photos])
        else:
            sizes = {tuple(p.tensor.shape[-2:]) for p in photos}
            if len(sizes) > 1:
                raise StylerError("batch statistics need photos of one size; load them with square=True "
                                  "(the CLI does this for --stats batch)")
            out = _forward(loaded.net, torch.cat([p.tensor for p in photos]), "train")
            rows.append([tensor_to_pil(o) for o in out])
    return rows


def _stylize_eval(loaded: LoadedModel, photos: Sequence[Photo]) -> list[Image.Image]:
    """Eval-mode outputs through the apply engine's :class:`~styler.infer.stylizer.Stylizer` (what ``styler apply`` shows)."""
    from styler.infer.stylizer import Stylizer

    stylizer = Stylizer(loaded, device="cpu", backend="torch")
    images = [RGBImage(rgb=np.ascontiguousarray(p.tensor[0].permute(1, 2, 0).numpy()), source=p.name)
              for p in photos]
    results = stylizer.stylize_many(images)
    return [Image.fromarray(to_uint8(r.image.rgb), "RGB") for r in results]


def compare_grid(models: Sequence[Any], photos: Sequence[Photo], *, cell: int = 256, stats: str = "running",
                 title: str | None = None, save_dir: str | os.PathLike | None = None) -> Image.Image:
    """Grid with the content photos in a header row and one row per model (labelled norm / style / steps).

    The canvas size follows :func:`styler.evidence.figures.image_grid`: ``(len(models) + 1)`` rows by ``len(photos)``
    columns of ``cell``-pixel slots. ``save_dir`` also writes every cell as ``<model>__<photo>.png``.
    """
    loaded = [as_loaded(m) for m in models]
    outputs = compare_outputs(loaded, photos, stats=stats)
    labels = ["content"]
    for lm in loaded:
        label = model_label(lm)
        if lm.arch.norm.batch_dependent_in_training and stats != "running":
            label = label.replace(lm.arch.norm.short_name, f"{lm.arch.norm.short_name} ({stats} stats)", 1)
        labels.append(label)
    if save_dir is not None:
        folder = Path(save_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for lm, row in zip(loaded, outputs):
            for photo, img in zip(photos, row):
                img.save(folder / f"{lm.name}__{photo.name}.png")
    rows = [[p.pil for p in photos], *outputs]
    if title is None:
        title = f"norm comparison · BN/SN statistics: {stats}"
    return image_grid(rows, cell=cell, row_labels=labels, col_labels=[p.name for p in photos], title=title)


# --- batch independence --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchPlan:
    """A batch to put the target in: companion names in order, with the target inserted at ``position``."""

    name: str
    companions: tuple[str, ...]
    position: int

    def describe(self) -> str:
        mates = ", ".join(self.companions)
        return f"{self.name}: target at {self.position + 1} of {len(self.companions) + 1} with {mates}"


def default_batch_plans(photo_names: Sequence[str]) -> list[BatchPlan]:
    """Batch A: the target first among other photos (noise fills up to 3 mates). Batch B: the target third among a
    dark copy, a flat grey image and noise. Batch C: the target last, beside only the flat image."""
    mates = list(photo_names[:3])
    for filler in ("noise", "dark", "flat"):
        if len(mates) >= 3:
            break
        if filler not in mates:
            mates.append(filler)
    return [BatchPlan("A", tuple(mates), 0), BatchPlan("B", ("dark", "flat", "noise"), 2),
            BatchPlan("C", ("flat",), 1)]


@dataclass
class IndependenceRow:
    """Target alone vs the target inside one batch, for one model, mode and precision."""

    model: str
    norm: str
    mode: str  # "eval" or "train"
    dtype: str  # "float32" or "float64"
    batch: str  # the plan name, "A", "B", ...
    setting: str  # human description of the batch
    batch_size: int
    position: int
    max_abs: float
    mean_abs: float
    psnr_db: float
    output_max: float
    tolerance: float
    independent: bool
    note: str = ""
    alone: torch.Tensor | None = field(default=None, repr=False, compare=False)
    in_batch: torch.Tensor | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.name not in ("alone", "in_batch")}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return value


def rows_to_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    return [row.to_dict() for row in rows]


def measure_independence(model: Any, target: Photo | torch.Tensor, companions: dict[str, torch.Tensor] | None = None,
                         modes: Sequence[str] = ("eval", "train"), *, dtype: torch.dtype = torch.float32,
                         plans: Sequence[BatchPlan] | None = None, keep_outputs: bool = False) -> list[IndependenceRow]:
    """Stylize ``target`` alone and inside each batch of ``plans``; one row per (mode, plan).

    ``companions`` maps names to 1×3×H×W tensors of the target's size; the synthetic ``dark``, ``flat`` and ``noise``
    mates are always added. ``keep_outputs`` stores the target's outputs on each row (for figures).
    """
    loaded = as_loaded(model)
    spec = loaded.arch.norm
    x = target.tensor if isinstance(target, Photo) else target
    mates = {**(companions or {}), **synthetic_companions(x)}
    for name, mate in mates.items():
        if tuple(mate.shape[-2:]) != tuple(x.shape[-2:]):
            raise StylerError(f"companion {name!r} is {tuple(mate.shape[-2:])}, the target {tuple(x.shape[-2:])}; "
                              "load photos with square=True and one size")
    plans = list(plans) if plans is not None else default_batch_plans([k for k in (companions or {})])
    net = _net_in(loaded, dtype)
    rows = []
    for mode in modes:
        alone = _forward(net, x.to(dtype), mode)
        scale = float(alone.abs().max())
        tol = tolerance_for(dtype, scale)
        for plan in plans:
            parts = [mates[name] for name in plan.companions]
            parts.insert(plan.position, x)
            out = _forward(net, torch.cat(parts).to(dtype), mode)[plan.position:plan.position + 1]
            max_abs, mean_abs, psnr = _diff_stats(out, alone)
            note = ""
            if mode == "train" and spec.kind == "batch":
                note = "alone = batch of 1, where BN equals IN (norms.md §6.3)"
            elif mode == "train" and spec.kind == "switchable" and spec.using_bn:
                note = "alone = batch of 1, where SN's BN branch equals its IN branch"
            rows.append(IndependenceRow(
                model=loaded.name, norm=spec.short_name, mode=_stats_mode(spec, mode), dtype=str(dtype).split(".")[-1],
                batch=plan.name, setting=plan.describe(), batch_size=len(parts), position=plan.position,
                max_abs=max_abs, mean_abs=mean_abs, psnr_db=psnr, output_max=scale, tolerance=tol,
                independent=max_abs <= tol, note=note,
                alone=alone.float() if keep_outputs else None, in_batch=out.float() if keep_outputs else None))
    return rows


def difference_heatmap(a: torch.Tensor, b: torch.Tensor, amplify: float = 10.0) -> Image.Image:
    """|a − b| (max over channels) × ``amplify``, clipped at 1 and coloured black → red → yellow → white."""
    diff = (a.double() - b.double()).abs()
    if diff.dim() == 4:
        diff = diff[0]
    v = (diff.max(dim=0).values * amplify).clamp(0, 1).numpy()
    rgb = np.stack([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], axis=-1)
    return Image.fromarray(to_uint8(rgb), "RGB")


def independence_figure(rows: Sequence[IndependenceRow], *, cell: int = 192, amplify: float = 10.0,
                        batches: tuple[str, str] = ("A", "B")) -> Image.Image:
    """Per model and mode, a row: target alone, target in batch A, target in batch B, amplified |Δ| heat map.

    Eval rows are drawn only for batch-dependent norms (for the others eval and train are the same function)."""
    grouped: dict[tuple[str, str, str], dict[str, IndependenceRow]] = {}
    for row in rows:
        if row.alone is None:
            raise StylerError("independence_figure needs rows measured with keep_outputs=True")
        grouped.setdefault((row.model, row.norm, row.mode), {})[row.batch] = row
    keep = {key for key in grouped if key[2] != "eval" or any(
        k[0] == key[0] and k[2].startswith("train (batch") for k in grouped)}
    grid, labels = [], []
    for key in sorted(keep, key=lambda k: list(grouped).index(k)):
        by_batch = grouped[key]
        first, second = by_batch.get(batches[0]), by_batch.get(batches[1])
        if first is None or second is None:
            continue
        worst = first if first.max_abs >= second.max_abs else second
        heat = difference_heatmap(worst.in_batch, worst.alone, amplify)
        grid.append([tensor_to_pil(first.alone[0]), tensor_to_pil(first.in_batch[0]),
                     tensor_to_pil(second.in_batch[0]), heat])
        mode = "train" if key[2].startswith("train") else key[2]
        labels.append(f"{key[1]} {mode}\n{key[0]}\nmax|Δ| {_fmt(max(first.max_abs, second.max_abs))}")
    return image_grid(grid, cell=cell, row_labels=labels,
                      col_labels=["target alone", f"in batch {batches[0]}", f"in batch {batches[1]}",
                                  f"|Δ| × {amplify:g}"],
                      title="Same photo, different batch-mates", label_width=max(cell // 2, 150))


# --- contrast and brightness ---------------------------------------------------------------------------------------

@dataclass
class ContrastRow:
    model: str
    norm: str
    mode: str
    dtype: str
    a: float
    b: float
    relative_max: float  # max|f(aA+b) − f(A)| / max|f(A)|
    max_abs: float
    mean_abs: float
    psnr_db: float
    output: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def transform(self) -> str:
        parts = []
        if self.a != 1.0:
            parts.append(f"×{self.a:g}")
        if self.b != 0.0:
            parts.append(f"{self.b:+g}")
        return " ".join(parts) or "identity"

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "output"}
        d["transform"] = self.transform
        return d


def contrast_sensitivity(model: Any, photo: Photo | torch.Tensor,
                         transforms: Sequence[tuple[float, float]] = DEFAULT_TRANSFORMS, *, mode: str = "eval",
                         dtype: torch.dtype = torch.float32, keep_outputs: bool = False) -> list[ContrastRow]:
    """Ulyanov's experiment: stylize ``a·A + b`` for each (a, b) and compare with the output for ``A``.

    The changed photo is *not* clipped to [0, 1]: clipping is not an affine change and would hide the property being
    measured. In train mode each image is stylized alone (batch of 1)."""
    loaded = as_loaded(model)
    x = (photo.tensor if isinstance(photo, Photo) else photo).to(dtype)
    net = _net_in(loaded, dtype)
    base = _forward(net, x, mode)
    scale = float(base.abs().max()) or 1.0
    rows = []
    for a, b in transforms:
        out = _forward(net, x * a + b, mode)
        max_abs, mean_abs, psnr = _diff_stats(out, base)
        rows.append(ContrastRow(model=loaded.name, norm=loaded.arch.norm.short_name, mode=mode,
                                dtype=str(dtype).split(".")[-1], a=float(a), b=float(b), relative_max=max_abs / scale,
                                max_abs=max_abs, mean_abs=mean_abs, psnr_db=psnr,
                                output=out.float() if keep_outputs else None))
    if keep_outputs:
        rows.insert(0, ContrastRow(model=loaded.name, norm=loaded.arch.norm.short_name, mode=mode,
                                   dtype=str(dtype).split(".")[-1], a=1.0, b=0.0, relative_max=0.0, max_abs=0.0,
                                   mean_abs=0.0, psnr_db=math.inf, output=base.float()))
    return rows


def contrast_figure(photo: Photo, rows_per_model: Sequence[Sequence[ContrastRow]], *, cell: int = 160) -> Image.Image:
    """Header row: the photo and its changed versions (clipped for display); then per model the outputs."""
    first = rows_per_model[0]
    header = [tensor_to_pil((photo.tensor[0] * r.a + r.b)) for r in first]
    grid = [header]
    labels = ["input"]
    for rows in rows_per_model:
        grid.append([tensor_to_pil(r.output[0]) for r in rows])
        worst = max(r.relative_max for r in rows)
        labels.append(f"{rows[0].norm}\n{rows[0].model}\nmax rel. Δ {_fmt(worst)}")
    return image_grid(grid, cell=cell, row_labels=labels, col_labels=[r.transform for r in first],
                      title="Contrast / brightness changes of one photo", label_width=max(cell // 2, 150))


# --- train/eval gap ------------------------------------------------------------------------------------------------

@dataclass
class GapRow:
    """Eval output (running statistics) vs train-mode output (batch statistics) of one model."""

    model: str
    norm: str
    dtype: str
    reference: str  # "batch of N" or "alone (batch of 1)"
    max_abs: float
    mean_abs: float
    psnr_db: float
    output_max: float

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


def train_eval_gap(model: Any, photos: Sequence[Photo | torch.Tensor], *,
                   dtype: torch.dtype = torch.float32) -> list[GapRow]:
    """Max/mean |eval − train| over ``photos``: once with all photos as one train-mode batch (they must share a
    size), once with each photo alone. Zero for norms without running statistics."""
    loaded = as_loaded(model)
    xs = [(p.tensor if isinstance(p, Photo) else p).to(dtype) for p in photos]
    net = _net_in(loaded, dtype)
    evals = [_forward(net, x, "eval") for x in xs]
    scale = max(float(e.abs().max()) for e in evals)
    references: list[tuple[str, list[torch.Tensor]]] = []
    if len({tuple(x.shape[-2:]) for x in xs}) == 1 and len(xs) > 1:
        batch = _forward(net, torch.cat(xs), "train")
        references.append((f"batch of {len(xs)}", [batch[i:i + 1] for i in range(len(xs))]))
    references.append(("alone (batch of 1)", [_forward(net, x, "train") for x in xs]))
    rows = []
    for name, trains in references:
        diffs = torch.cat([(t.double() - e.double()).flatten() for t, e in zip(trains, evals)])
        rows.append(GapRow(model=loaded.name, norm=loaded.arch.norm.short_name, dtype=str(dtype).split(".")[-1],
                           reference=name, max_abs=float(diffs.abs().max()), mean_abs=float(diffs.abs().mean()),
                           psnr_db=_psnr(diffs), output_max=scale))
    return rows


# --- text tables ---------------------------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if value == 0.0:
            return "0"
        if abs(value) >= 1000 or abs(value) < 1e-2:
            return f"{value:.2e}"
        return f"{value:.3g}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False) -> str:
    """A plain-text (aligned) or Markdown table of already chosen columns."""
    cells = [[_fmt(v) for v in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out)
