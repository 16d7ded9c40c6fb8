"""The old home of the norm-ablation library, kept so that ``from styler.evidence.ablation import ...`` still works.

Scripts outside the package (``scripts/eval_models.py``) import from here. The code now lives in one module per
concept: :mod:`~styler.evidence.models`, :mod:`~styler.evidence.photos`, :mod:`~styler.evidence.compare`,
:mod:`~styler.evidence.independence`, :mod:`~styler.evidence.contrast`, :mod:`~styler.evidence.gap`,
:mod:`~styler.evidence.suite` and :mod:`~styler.evidence.tables`; new code should import from those.
"""

from __future__ import annotations

from styler.evidence.compare import STATS_CHOICES, compare_grid, compare_outputs
from styler.evidence.contrast import DEFAULT_TRANSFORMS, ContrastRow, contrast_figure, contrast_sensitivity
from styler.evidence.forward import tolerance_for
from styler.evidence.gap import GapRow, train_eval_gap
from styler.evidence.independence import (
                                          BatchPlan,
                                          IndependenceRow,
                                          default_batch_plans,
                                          difference_heatmap,
                                          independence_figure,
                                          measure_independence,
)
from styler.evidence.models import as_loaded, model_label, model_steps, model_style
from styler.evidence.photos import Photo, load_photo, load_photos, synthetic_companions
from styler.evidence.tables import format_table, rows_to_dicts

__all__ = [
    "STATS_CHOICES", "DEFAULT_TRANSFORMS", "Photo", "BatchPlan", "IndependenceRow", "ContrastRow", "GapRow",
    "as_loaded", "model_label", "model_steps", "model_style", "load_photo", "load_photos", "synthetic_companions",
    "default_batch_plans", "compare_grid", "compare_outputs", "measure_independence", "independence_figure",
    "contrast_sensitivity", "contrast_figure", "train_eval_gap", "tolerance_for", "difference_heatmap",
    "format_table", "rows_to_dicts",
]
