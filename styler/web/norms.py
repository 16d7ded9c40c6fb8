"""The Norms view, computed live on the user's photo: the ablation models side by side, and batch independence.

Why the evidence package and not new code: ``styler independence`` and ``styler report`` already measure exactly
this (:func:`styler.evidence.independence.measure_independence`, the same batch plans, the tolerances of norms.md
§6.5, :func:`~styler.evidence.independence.difference_heatmap`), so the page shows numbers a reader can reproduce
with the CLI. Only the sizes differ: the page works on a square centre crop of 256 px by default, which keeps one
measurement of all five models around a second on two cores.

The demo puts the photo in a batch of two, beside a dark copy of itself (the evidence package's synthetic ``dark``
mate) or beside a different photo, and runs every model in train mode: batch norm then normalizes with the batch's
statistics, as it did in training, so its output for the same photo shifts with its batch-mate; instance norm
(and group and layer norm) normalize each image by itself, and the output is unchanged to the last bit that
float32 keeps. Everything here imports torch; the app imports this module only when the Norms view is used.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from styler.infer.options import StylizeOptions
from styler.io.images import RGBImage, to_uint8
from styler.web.errors import ClientError
from styler.web.registry import Selection, StylizerCache

__all__ = ["side_by_side", "batch_independence", "png_data_url", "COMPANIONS"]

#: What the photo can share its batch with: a dark copy of itself, or another photo.
COMPANIONS = ("dark", "photo")


def png_data_url(image: Image.Image) -> str:
    """An image as a ``data:image/png;base64,...`` URL (the page shows it without another request)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pil(image: RGBImage) -> Image.Image:
    return Image.fromarray(to_uint8(image.rgb), "RGB")


def side_by_side(cache: StylizerCache, selections: Sequence[Selection], photo: RGBImage, size: int
                 ) -> dict[str, Any]:
    """Each model's stylization of ``photo`` (long side ``size``), as ``styler apply`` would produce it."""
    options = StylizeOptions(max_size=size)
    results = []
    for selection in selections:
        stylizer = cache.get(selection)
        result = stylizer.stylize(photo, options)
        results.append({"model": selection.info.name, "norm": selection.info.norm,
                        "norm_short": selection.info.norm_short, "style": selection.info.style,
                        "seconds": round(result.seconds, 4), "backend": result.backend,
                        "image": png_data_url(_pil(result.image))})
    return {"size": size, "photo": png_data_url(_pil(_scaled(photo, size))), "models": results}


def _scaled(photo: RGBImage, size: int) -> RGBImage:
    from styler.infer.sizing import processing_size
    from styler.io.images import resize_image

    return resize_image(photo, processing_size(photo.size, max_size=size, scale=None))


def batch_independence(cache: StylizerCache, selections: Sequence[Selection], photo: RGBImage,
                       other: RGBImage | None, size: int, amplify: float = 10.0) -> dict[str, Any]:
    """The photo alone vs in a batch of two (train mode), per model: both outputs, |Δ| map, max and mean |Δ|.

    ``other`` None puts the photo beside a dark copy of itself; otherwise beside ``other`` (both are centre-cropped
    to squares of ``size``, since a batch holds images of one size).
    """
    from styler.evidence.independence import BatchPlan, difference_heatmap, measure_independence
    from styler.evidence.photos import load_photo, synthetic_companions
    from styler.io.images import tensor_to_pil

    target = load_photo(photo, size, square=True, name="photo")
    companions = {}
    if other is not None:
        companions["other"] = load_photo(other, size, square=True, name="other").tensor
        plan = BatchPlan("photo", ("other",), 1)
    else:
        plan = BatchPlan("dark", ("dark",), 1)
    rows = []
    for selection in selections:
        loaded = cache.loaded(selection)
        start = time.perf_counter()
        (row,) = measure_independence(loaded, target, companions, modes=("train",), plans=[plan],
                                      keep_outputs=True)
        assert row.alone is not None and row.in_batch is not None  # keep_outputs=True
        seconds = time.perf_counter() - start
        rows.append({"model": selection.info.name, "norm": selection.info.norm,
                     "norm_short": selection.info.norm_short, "mode": row.mode,
                     "batch_statistics": row.mode.startswith("train (batch"),
                     "max_abs": row.max_abs, "mean_abs": row.mean_abs,
                     "psnr_db": None if not np.isfinite(row.psnr_db) else round(row.psnr_db, 2),
                     "tolerance": row.tolerance, "independent": row.independent, "seconds": round(seconds, 4),
                     "alone": png_data_url(tensor_to_pil(row.alone[0])),
                     "in_batch": png_data_url(tensor_to_pil(row.in_batch[0])),
                     "difference": png_data_url(difference_heatmap(row.in_batch, row.alone, amplify))})
    mate = companions["other"] if other is not None else synthetic_companions(target.tensor)["dark"]
    return {"size": size, "companion": plan.name, "amplify": amplify, "setting": plan.describe(),
            "photo": png_data_url(target.pil), "mate": png_data_url(tensor_to_pil(mate[0])), "models": rows}


def require_models(selections: Sequence[Selection], wanted: Sequence[str]) -> None:
    """404 when none of the Norms view's models is installed."""
    if not selections:
        raise ClientError(404, f"none of the norm-ablation models is installed ({', '.join(wanted)})")
