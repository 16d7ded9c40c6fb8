"""The train/eval gap (docs/norms.md §6.3): how far a model's inference output is from what it computed in training.

Norms with running statistics (BN, SN's BN branch) normalize with batch statistics in training and with running
averages at inference, so the network that ``styler apply`` runs is not the function that was optimized. The gap is
measured against the photos as one batch and against each photo alone (where batch norm equals instance norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from styler.evidence.forward import dtype_name, forward, network_in, psnr
from styler.evidence.models import ModelRef, as_loaded
from styler.evidence.photos import Photo
from styler.evidence.tables import format_table, row_dict

__all__ = ["GapRow", "train_eval_gap", "gap_table"]


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
        return row_dict(self)


def train_eval_gap(model: ModelRef, photos: Sequence[Photo | torch.Tensor], *,
                   dtype: torch.dtype = torch.float32) -> list[GapRow]:
    """Max/mean |eval − train| over ``photos``: once with all photos as one train-mode batch (they must share a
    size), once with each photo alone. Zero for norms without running statistics."""
    loaded = as_loaded(model)
    xs = [(p.tensor if isinstance(p, Photo) else p).to(dtype) for p in photos]
    net = network_in(loaded, dtype)
    evals = [forward(net, x, "eval") for x in xs]
    scale = max(float(e.abs().max()) for e in evals)
    references: list[tuple[str, list[torch.Tensor]]] = []
    if len({tuple(x.shape[-2:]) for x in xs}) == 1 and len(xs) > 1:
        batch = forward(net, torch.cat(xs), "train")
        references.append((f"batch of {len(xs)}", [batch[i:i + 1] for i in range(len(xs))]))
    references.append(("alone (batch of 1)", [forward(net, x, "train") for x in xs]))
    rows = []
    for name, trains in references:
        diffs = torch.cat([(t.double() - e.double()).flatten() for t, e in zip(trains, evals)])
        rows.append(GapRow(model=loaded.name, norm=loaded.arch.norm.short_name, dtype=dtype_name(dtype),
                           reference=name, max_abs=float(diffs.abs().max()), mean_abs=float(diffs.abs().mean()),
                           psnr_db=psnr(diffs), output_max=scale))
    return rows


def gap_table(gaps: Sequence[GapRow]) -> str:
    """One line per model and train-mode reference, as ``styler independence`` prints it."""
    return format_table(["norm", "model", "train-mode reference", "max|Δ|", "mean|Δ|", "PSNR dB"],
                        [[g.norm, g.model, g.reference, g.max_abs, g.mean_abs, g.psnr_db] for g in gaps])
