"""The comparison grid behind ``styler compare``: one row per model, one column per photo.

A grid shows what the numbers of the other modules measure. BN/SN models can be drawn with the statistics they use
at inference (running averages, what ``styler apply`` does) or with the batch statistics they trained with, so the
grid can show both the train/eval gap and the effect of batch-mates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from styler.errors import StylerError
from styler.evidence.figures import image_grid
from styler.evidence.forward import forward
from styler.evidence.models import ModelRef, as_loaded, model_label
from styler.evidence.photos import Photo
from styler.io.images import RGBImage, tensor_to_pil, to_uint8
from styler.io.modelfile import LoadedModel

__all__ = ["STATS_CHOICES", "compare_outputs", "compare_grid"]

#: Which statistics BN/SN models use in ``compare``: running (eval, what ``styler apply`` does), batch (train-mode
#: statistics of all compared photos as one batch) or single (train mode, each photo alone: BN then equals IN).
STATS_CHOICES = ("running", "batch", "single")


def compare_outputs(models: Sequence[ModelRef], photos: Sequence[Photo], *, stats: str = "running",
                    use_stylizer: bool = True) -> list[list[Image.Image]]:
    """Stylized photos, one list per model. ``stats`` picks BN/SN statistics (see :data:`STATS_CHOICES`); models
    whose training forward is batch independent are always run in eval mode (their train mode is identical)."""
    if stats not in STATS_CHOICES:
        raise StylerError(f"unknown statistics {stats!r}; choose from {', '.join(STATS_CHOICES)}")
    rows = []
    for model in models:
        loaded = as_loaded(model)
        if stats == "running" or not loaded.arch.norm.batch_dependent_in_training:
            if use_stylizer:
                rows.append(_stylize_eval(loaded, photos))
            else:
                rows.append([tensor_to_pil(forward(loaded.net, p.tensor, "eval")[0]) for p in photos])
        elif stats == "single":
            rows.append([tensor_to_pil(forward(loaded.net, p.tensor, "train")[0]) for p in photos])
        else:
            rows.append(_stylize_as_one_batch(loaded, photos))
    return rows


def _stylize_as_one_batch(loaded: LoadedModel, photos: Sequence[Photo]) -> list[Image.Image]:
    if len({tuple(p.tensor.shape[-2:]) for p in photos}) > 1:
        raise StylerError("batch statistics need photos of one size; load them with square=True "
                          "(the CLI does this for --stats batch)")
    out = forward(loaded.net, torch.cat([p.tensor for p in photos]), "train")
    return [tensor_to_pil(o) for o in out]


def _stylize_eval(loaded: LoadedModel, photos: Sequence[Photo]) -> list[Image.Image]:
    """Eval-mode outputs through the apply engine's :class:`~styler.infer.stylizer.Stylizer`, so the grid shows
    exactly what ``styler apply`` would write."""
    from styler.infer.stylizer import Stylizer

    stylizer = Stylizer(loaded, device="cpu", backend="torch")
    images = [RGBImage(rgb=np.ascontiguousarray(p.tensor[0].permute(1, 2, 0).numpy()), source=p.name)
              for p in photos]
    results = stylizer.stylize_many(images)
    return [Image.fromarray(to_uint8(r.image.rgb), "RGB") for r in results]


def compare_grid(models: Sequence[ModelRef], photos: Sequence[Photo], *, cell: int = 256, stats: str = "running",
                 title: str | None = None, save_dir: str | os.PathLike[str] | None = None) -> Image.Image:
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
