"""The per-image options of a stylizer, in a module of their own.

Why separate: the CLI, :mod:`styler.infer.apply` and :mod:`styler.infer.sizing` all need this dataclass, and none
of them should pay for numpy or the stylizer just to name it (``styler apply --help`` stays quick).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StylizeOptions"]


@dataclass
class StylizeOptions:
    """Per-image options of :meth:`~styler.infer.stylizer.Stylizer.stylize` (see ``styler apply --help``).

    ``tile_size``: None tiles automatically when the untiled pass would exceed ``memory_budget`` (GiB of network
    activations), 0 never tiles, N tiles images whose long side exceeds N px into tiles of N px.
    ``stats_max_pixels``: size of the statistics pass when tiling; None derives it from ``memory_budget``.
    """

    max_size: int | None = None
    scale: float | None = None
    preserve_color: str | None = None  # None, "ycbcr" or "lab"
    strength: float = 1.0
    tile_size: int | None = None
    memory_budget: float = 2.0
    stats_max_pixels: int | None = None
