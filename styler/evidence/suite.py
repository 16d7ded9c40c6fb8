"""Every measurement of one target photo and its batch-mates, for a list of models: the evidence in one call.

``styler independence`` prints it and ``styler report`` writes it up; both call :func:`measure_suite`, so the
numbers in a report are exactly the numbers the command prints for the same models, photos and size.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from styler.evidence.contrast import ContrastRow, contrast_figure, contrast_sensitivity, contrast_table
from styler.evidence.gap import GapRow, gap_table, train_eval_gap
from styler.evidence.independence import IndependenceRow, independence_figure, independence_table, measure_independence
from styler.evidence.models import ModelRef, as_loaded
from styler.evidence.photos import Photo
from styler.evidence.tables import rows_to_dicts
from styler.io.modelfile import LoadedModel

__all__ = ["SuiteResult", "measure_suite", "format_suite"]

#: Batch-mates beside the target in the train/eval gap's one-batch reference.
GAP_MATES = 3


@dataclass
class SuiteResult:
    """What :func:`measure_suite` measured, with the outputs the figures need.

    ``contrast`` holds the changed-photo rows only; ``contrast_by_model`` holds each model's rows with its identity
    row first (the unchanged photo's output), as :func:`~styler.evidence.contrast.contrast_figure` draws them.
    """

    target: Photo
    models: list[LoadedModel]
    independence: list[IndependenceRow] = field(default_factory=list)
    contrast: list[ContrastRow] = field(default_factory=list)
    contrast_by_model: list[list[ContrastRow]] = field(default_factory=list)
    gaps: list[GapRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Every row as JSON-safe dicts, the ``measurements.json`` / ``--json`` layout."""
        return {"independence": rows_to_dicts(self.independence), "contrast": rows_to_dicts(self.contrast),
                "train_eval_gap": rows_to_dicts(self.gaps)}

    def independence_figure(self, *, cell: int = 192, amplify: float = 10.0) -> Image.Image:
        """The fp32 rows' figure (fp64 rows prove the same with tighter numbers; their pictures are identical)."""
        return independence_figure([r for r in self.independence if r.dtype == "float32"], cell=cell,
                                   amplify=amplify)

    def contrast_figure(self, *, cell: int = 160) -> Image.Image:
        return contrast_figure(self.target, self.contrast_by_model, cell=cell)


def measure_suite(models: Sequence[ModelRef], target: Photo, companions: Sequence[Photo] = (), *,
                  modes: Sequence[str] = ("eval", "train"), fp64: bool = False,
                  contrast: bool = True) -> SuiteResult:
    """Measure batch independence (fp32, and fp64 with ``fp64``), contrast sensitivity (unless ``contrast`` is
    False) and, for norms with running statistics, the train/eval gap of every model on ``target``.

    ``companions`` are the target's batch-mates (a photo named like the target is skipped, so the target's folder
    can be passed as is); they must have the target's size. The gap's one-batch reference is the target and the
    first :data:`GAP_MATES` companions.
    """
    mates = {p.name: p.tensor for p in companions if p.name != target.name}
    dtypes = [torch.float32] + ([torch.float64] if fp64 else [])
    result = SuiteResult(target=target, models=[as_loaded(m) for m in models])
    for loaded in result.models:
        for dtype in dtypes:
            result.independence += measure_independence(loaded, target, mates, modes, dtype=dtype,
                                                        keep_outputs=dtype == torch.float32)
        if contrast:
            rows = contrast_sensitivity(loaded, target, keep_outputs=True)
            result.contrast_by_model.append(rows)
            result.contrast += [r for r in rows if not r.is_identity]
        if loaded.arch.norm.uses_running_statistics:
            result.gaps += train_eval_gap(loaded, [target.tensor, *itertools.islice(mates.values(), GAP_MATES)])
    return result


def format_suite(result: SuiteResult, size: int) -> str:
    """The text ``styler independence`` prints: the independence table and its notes, the train/eval gap, and the
    contrast table, each present only when measured."""
    blocks = [f"target {result.target.name} at {size}×{size}; tolerance fp32 atol=rtol=1e-4, fp64 atol=1e-10 "
              "(norms.md §6.5)", independence_table(result.independence)]
    if result.gaps:
        blocks += ["\ntrain/eval gap (eval output vs output with batch statistics)", gap_table(result.gaps)]
    if result.contrast:
        blocks += ["\ncontrast/brightness: max|f(a·A+b) − f(A)| / max|f(A)|, eval mode",
                   contrast_table(result.contrast)]
    return "\n".join(blocks)
