"""Batch independence (docs/norms.md §6.1): is a photo's output the same whatever else is in its batch?

The target photo is stylized alone, then inside batches with other companions (other photos, a darkened copy, a
flat grey image, noise) and at different positions; its output in each batch is compared with its output alone, in
eval mode and in train mode (batch statistics). Verdicts use the tolerances of §6.5: fp32 ``atol = rtol = 1e-4``
and fp64 ``atol = 1e-10``. This is the property that lets instance norm stylize each photo of a batch as if it were
alone, and the one batch norm loses in train mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from styler.errors import StylerError
from styler.evidence.figures import image_grid
from styler.evidence.forward import diff_stats, dtype_name, forward, network_in, stats_mode, tolerance_for
from styler.evidence.models import ModelRef, as_loaded
from styler.evidence.photos import Photo, synthetic_companions
from styler.evidence.tables import format_table, format_value, row_dict
from styler.io.images import tensor_to_pil, to_uint8
from styler.nn.spec import NormSpec

__all__ = ["BatchPlan", "IndependenceRow", "default_batch_plans", "measure_independence", "difference_heatmap",
           "independence_figure", "independence_table"]

#: Why the train-mode reference (the target alone) is not a batch-statistics forward, per batch-dependent kind.
_ALONE_NOTES: dict[str, str] = {
    "batch": "alone = batch of 1, where BN equals IN (norms.md §6.3)",
    "switchable": "alone = batch of 1, where SN's BN branch equals its IN branch",
}


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
    mode: str  # "eval", "train" or "train (batch statistics)"
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
        return row_dict(self, exclude=("alone", "in_batch"))


def _alone_note(spec: NormSpec, mode: str) -> str:
    if mode == "train" and spec.batch_dependent_in_training:
        return _ALONE_NOTES.get(spec.kind, "")
    return ""


def measure_independence(model: ModelRef, target: Photo | torch.Tensor,
                         companions: Mapping[str, torch.Tensor] | None = None,
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
    plans = list(plans) if plans is not None else default_batch_plans(list(companions or {}))
    net = network_in(loaded, dtype)
    rows = []
    for mode in modes:
        alone = forward(net, x.to(dtype), mode)
        scale = float(alone.abs().max())
        tol = tolerance_for(dtype, scale)
        for plan in plans:
            parts = [mates[name] for name in plan.companions]
            parts.insert(plan.position, x)
            out = forward(net, torch.cat(parts).to(dtype), mode)[plan.position:plan.position + 1]
            max_abs, mean_abs, psnr_db = diff_stats(out, alone)
            rows.append(IndependenceRow(
                model=loaded.name, norm=spec.short_name, mode=stats_mode(spec, mode), dtype=dtype_name(dtype),
                batch=plan.name, setting=plan.describe(), batch_size=len(parts), position=plan.position,
                max_abs=max_abs, mean_abs=mean_abs, psnr_db=psnr_db, output_max=scale, tolerance=tol,
                independent=max_abs <= tol, note=_alone_note(spec, mode),
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


def _figure_groups(rows: Sequence[IndependenceRow]) -> dict[tuple[str, str, str], dict[str, IndependenceRow]]:
    """Rows by (model, norm, mode), then batch; eval groups only for models whose train rows use batch statistics
    (for the others eval and train are the same function, and one row of pictures says it)."""
    grouped: dict[tuple[str, str, str], dict[str, IndependenceRow]] = {}
    for row in rows:
        if row.alone is None:
            raise StylerError("independence_figure needs rows measured with keep_outputs=True")
        grouped.setdefault((row.model, row.norm, row.mode), {})[row.batch] = row
    batch_stats_models = {key[0] for key in grouped if key[2].startswith("train (batch")}
    return {key: by_batch for key, by_batch in grouped.items()
            if key[2] != "eval" or key[0] in batch_stats_models}


def independence_figure(rows: Sequence[IndependenceRow], *, cell: int = 192, amplify: float = 10.0,
                        batches: tuple[str, str] = ("A", "B")) -> Image.Image:
    """Per model and mode, a row: target alone, target in batch A, target in batch B, amplified |Δ| heat map.

    Eval rows are drawn only for batch-dependent norms (for the others eval and train are the same function)."""
    grid, labels = [], []
    for (model, norm, mode), by_batch in _figure_groups(rows).items():
        first, second = by_batch.get(batches[0]), by_batch.get(batches[1])
        if first is None or second is None:
            continue
        worst = first if first.max_abs >= second.max_abs else second
        if worst.in_batch is None or worst.alone is None or first.alone is None or first.in_batch is None \
                or second.in_batch is None:
            raise ValueError("the independence figure needs rows measured with keep_outputs=True")
        heat = difference_heatmap(worst.in_batch, worst.alone, amplify)
        grid.append([tensor_to_pil(first.alone[0]), tensor_to_pil(first.in_batch[0]),
                     tensor_to_pil(second.in_batch[0]), heat])
        shown_mode = "train" if mode.startswith("train") else mode
        labels.append(f"{norm} {shown_mode}\n{model}\nmax|Δ| {format_value(max(first.max_abs, second.max_abs))}")
    return image_grid(grid, cell=cell, row_labels=labels,
                      col_labels=["target alone", f"in batch {batches[0]}", f"in batch {batches[1]}",
                                  f"|Δ| × {amplify:g}"],
                      title="Same photo, different batch-mates", label_width=max(cell // 2, 150))


def independence_table(rows: Sequence[IndependenceRow]) -> str:
    """Every measured row as an aligned text table, then one line per distinct note (``styler independence``)."""
    table = format_table(
        ["norm", "model", "mode", "dtype", "batch", "size", "pos", "max|Δ|", "mean|Δ|", "PSNR dB", "max|out|",
         "independent"],
        [[r.norm, r.model, r.mode, r.dtype, r.batch, r.batch_size, r.position + 1, r.max_abs, r.mean_abs, r.psnr_db,
          r.output_max, r.independent] for r in rows])
    notes = [f"note: train mode, {note}" for note in sorted({r.note for r in rows if r.note})]
    return "\n".join([table, *notes])
