"""Contrast and brightness sensitivity (docs/norms.md §6.4, Ulyanov et al.'s argument for instance norm).

``f(a·A + b)`` vs ``f(A)`` for a set of affine intensity changes, reported as max|Δ| relative to max|f(A)|. With
reflection padding, instance norm removes any per-channel scale and shift after the first convolution, so it is
exactly invariant to brightness and nearly invariant to contrast (the residual is ε's); no other norm is. A style
should not depend on how bright the photo happened to be exposed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from styler.evidence.figures import image_grid
from styler.evidence.forward import diff_stats, dtype_name, forward, network_in
from styler.evidence.models import ModelRef, as_loaded
from styler.evidence.photos import Photo
from styler.evidence.tables import format_table, format_value, row_dict
from styler.io.images import tensor_to_pil

__all__ = ["DEFAULT_TRANSFORMS", "ContrastRow", "contrast_sensitivity", "contrast_figure", "contrast_table"]

#: Intensity changes (a, b) for ``f(a·A + b)``, the network-level set of docs/norms.md §6.4.
DEFAULT_TRANSFORMS: tuple[tuple[float, float], ...] = (
    (0.5, 0.0), (2.0, 0.0), (1.0, 0.3), (1.0, -0.3), (0.6, 0.25), (0.2, 0.4))


@dataclass
class ContrastRow:
    """One intensity change of the photo and how much it moved the output of one model."""

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
        """``×0.6 +0.25``-style name of the change (``identity`` for the unchanged photo)."""
        parts = []
        if self.a != 1.0:
            parts.append(f"×{self.a:g}")
        if self.b != 0.0:
            parts.append(f"{self.b:+g}")
        return " ".join(parts) or "identity"

    @property
    def is_identity(self) -> bool:
        return (self.a, self.b) == (1.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        d = row_dict(self, exclude=("output",))
        d["transform"] = self.transform
        return d


def contrast_sensitivity(model: ModelRef, photo: Photo | torch.Tensor,
                         transforms: Sequence[tuple[float, float]] = DEFAULT_TRANSFORMS, *, mode: str = "eval",
                         dtype: torch.dtype = torch.float32, keep_outputs: bool = False) -> list[ContrastRow]:
    """Ulyanov's experiment: stylize ``a·A + b`` for each (a, b) and compare with the output for ``A``.

    The changed photo is *not* clipped to [0, 1]: clipping is not an affine change and would hide the property being
    measured. In train mode each image is stylized alone (batch of 1). ``keep_outputs`` stores each output and puts
    an identity row (the unchanged photo's output) first, for :func:`contrast_figure`."""
    loaded = as_loaded(model)
    x = (photo.tensor if isinstance(photo, Photo) else photo).to(dtype)
    net = network_in(loaded, dtype)
    base = forward(net, x, mode)
    scale = float(base.abs().max()) or 1.0
    common: dict[str, Any] = dict(model=loaded.name, norm=loaded.arch.norm.short_name, mode=mode,
                                  dtype=dtype_name(dtype))
    rows = []
    for a, b in transforms:
        out = forward(net, x * a + b, mode)
        max_abs, mean_abs, psnr_db = diff_stats(out, base)
        rows.append(ContrastRow(**common, a=float(a), b=float(b), relative_max=max_abs / scale, max_abs=max_abs,
                                mean_abs=mean_abs, psnr_db=psnr_db, output=out.float() if keep_outputs else None))
    if keep_outputs:
        rows.insert(0, ContrastRow(**common, a=1.0, b=0.0, relative_max=0.0, max_abs=0.0, mean_abs=0.0,
                                   psnr_db=math.inf, output=base.float()))
    return rows


def contrast_figure(photo: Photo, rows_per_model: Sequence[Sequence[ContrastRow]], *, cell: int = 160) -> Image.Image:
    """Header row: the photo and its changed versions (clipped for display); then per model the outputs."""
    first = rows_per_model[0]
    header = [tensor_to_pil(photo.tensor[0] * r.a + r.b) for r in first]
    grid = [header]
    labels = ["input"]
    for rows in rows_per_model:
        if any(r.output is None for r in rows):
            raise ValueError("the contrast figure needs rows measured with keep_outputs=True")
        grid.append([tensor_to_pil(r.output[0]) for r in rows if r.output is not None])
        worst = max(r.relative_max for r in rows)
        labels.append(f"{rows[0].norm}\n{rows[0].model}\nmax rel. Δ {format_value(worst)}")
    return image_grid(grid, cell=cell, row_labels=labels, col_labels=[r.transform for r in first],
                      title="Contrast / brightness changes of one photo", label_width=max(cell // 2, 150))


def contrast_table(rows: Sequence[ContrastRow]) -> str:
    """One line per model and change, as ``styler independence`` prints it."""
    return format_table(["norm", "model", "change", "relative max|Δ|", "mean|Δ|", "PSNR dB"],
                        [[r.norm, r.model, r.transform, r.relative_max, r.mean_abs, r.psnr_db] for r in rows])
