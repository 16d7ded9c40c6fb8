"""Sizes: the size an image is stylized at, and whether and how to tile it.

Why tiling is decided from a memory estimate and not from the image size alone: the network's peak activation
memory grows with pixels × network width, and differs by runtime (measured: ~0.9 GiB per megapixel at width 32 in
eager torch, ~1.2 GiB in ONNX Runtime; ``docs/performance.md`` §6). Each backend declares its own cost
(``activation_cost``, bytes per pixel per unit of width); tiles always run on eager torch, so their size is planned
with :data:`TORCH_ACTIVATION_COST`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from styler.errors import StylerError
from styler.infer.options import StylizeOptions

__all__ = ["GIB", "TORCH_ACTIVATION_COST", "MIN_SIDE", "TilePlan", "processing_size", "activation_bytes",
           "tile_plan"]

GIB = 1 << 30
#: Peak activation bytes per pixel per unit of network width of one eager torch pass.
TORCH_ACTIVATION_COST = 30
#: The smallest image side the network accepts after resizing (two stride-2 convolutions and reflection padding).
MIN_SIDE = 8
_MIN_TILE = 64


class TilePlan(NamedTuple):
    """How to tile one image: tiles of ``tile`` px, statistics taken at up to ``stats_max_pixels`` pixels."""

    tile: int
    stats_max_pixels: int


def processing_size(size: tuple[int, int], *, max_size: int | None = None, scale: float | None = None
                    ) -> tuple[int, int]:
    """(width, height) to stylize at: ``size`` × ``scale``, then the long side capped at ``max_size``.

    Raises:
        StylerError: the result is below :data:`MIN_SIDE`; the message names the option that shrank it, or says to
        enlarge the image (``--scale``), since ``--max-size`` only ever makes images smaller.
    """
    width, height = size
    if scale is not None and scale != 1:
        if scale <= 0:
            raise ValueError("scale must be positive")
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    scaled = (width, height)
    if max_size and max(width, height) > max_size:
        factor = max_size / max(width, height)
        width, height = max(1, round(width * factor)), max(1, round(height * factor))
    if min(width, height) < MIN_SIDE:
        raise StylerError(_too_small_message(size, scaled, (width, height), scale))
    return width, height


def _too_small_message(size: tuple[int, int], scaled: tuple[int, int], final: tuple[int, int],
                       scale: float | None) -> str:
    """Why an image ends up below 8×8 and the one thing that would help."""
    head = f"image would be {final[0]}×{final[1]} px; the network needs at least {MIN_SIDE}×{MIN_SIDE}"
    if final != scaled:  # --max-size shrank it (a very long, thin image): a larger cap keeps the short side
        return f"{head} (--max-size shrinks it that far; raise --max-size, or omit it)"
    if min(size) >= MIN_SIDE and scale is not None and scale < 1:
        return f"{head} (--scale {scale:g} shrinks it that far; use a larger --scale)"
    factor = math.ceil(MIN_SIDE / min(size) * 10) / 10
    return (f"{head}; the image itself is {size[0]}×{size[1]} px: enlarge it with --scale {factor:g} or more, or use "
            "a larger image")


def activation_bytes(height: int, width: int, *, net_width: int, cost: int) -> int:
    """Estimated peak activation memory of one untiled pass at ``height``×``width`` (padded to multiples of 4)."""
    return int(math.ceil(height / 4) * 4 * math.ceil(width / 4) * 4 * cost * net_width)


def tile_plan(height: int, width: int, options: StylizeOptions, *, untiled_bytes: int, net_width: int,
              residual_blocks: int = 5) -> TilePlan | None:
    """The tiling of one ``height``×``width`` image under ``options``, or None to run it whole.

    ``untiled_bytes`` is the running backend's estimate for a whole pass (:func:`activation_bytes`). Automatic tiles
    and the statistics pass each get half the memory budget, so the two never add up to more than the budget.
    """
    if options.tile_size == 0:
        return None
    half_budget_px = max(_MIN_TILE * _MIN_TILE,
                         int(options.memory_budget * GIB / 2 / (TORCH_ACTIVATION_COST * net_width)))
    stats = options.stats_max_pixels or half_budget_px
    if options.tile_size:
        return TilePlan(options.tile_size, stats) if max(height, width) > options.tile_size else None
    if untiled_bytes <= options.memory_budget * GIB:
        return None
    from styler.infer.tiling import default_halo  # imports torch, which tiling needs anyway

    halo = default_halo(residual_blocks)
    tile = int(math.sqrt(half_budget_px)) - 2 * halo
    return TilePlan(max(_MIN_TILE, tile - tile % 4), stats)
