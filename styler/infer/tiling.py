"""Tiled inference for images too large to run whole, with whole-image normalization statistics.

Why not just cut the image into tiles: instance, group, layer and switchable norms normalize every feature map by
*its own* statistics, so a tile run on its own is normalized differently from the same pixels inside the whole
image. The tiles come out in different "styles" and meet at visible seams (the tiling complaints collected in
``docs/peers.md`` §4.6). Overlap blending only hides the seams.

The scheme here makes tiles agree with the untiled network by construction:

1. **Statistics pass.** Run the network once on the whole image, or on a downscaled copy when the whole image is too
   big (``stats_max_pixels``), and record, for every norm layer, the per-channel affine map ``y = a·x + b`` that
   layer applied (``a = γ/√(σ²+ε)``, ``b = β − μ·a`` for IN; group/layer/switchable statistics are broadcast to
   channels). Eval-mode batch norm already uses global running statistics and is left alone.
2. **Tile pass.** Replace every norm by its frozen affine map and run overlapping tiles. Every tile carries a halo
   of at least the network's receptive-field radius (54 px for 5 residual blocks: ``14 + 8·blocks``), rounded up to
   a multiple of 4 plus 4 px of slack for the stride-2 grid; tile origins sit on multiples of 4, so every tile sees
   the same sampling grid as the whole image. With frozen statistics the network is a pure sliding-window
   function, so the core of each tile is *exactly* what the whole image would give there: tiles are cropped to
   their cores and placed side by side, with no seam to blend away. Image borders are reflection padded exactly as
   in the untiled network because edge tiles contain the real border.

With statistics taken from the full-resolution image the tiled output equals the untiled one up to float rounding
(``tests/test_tiling.py``). With statistics from a downscaled copy the result differs only through the statistics
(a global, smooth change of contrast/brightness per channel, never a seam). Cost: one statistics pass (small when
downscaled) plus the halo overhead, ``((tile + 2·halo)/tile)²``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from styler.nn.kinds import for_module

__all__ = ["FrozenAffine", "Tile", "receptive_radius", "default_halo", "plan_tiles", "capture_norm_affines",
           "freeze_norms", "has_image_statistics", "tiled_forward"]

ALIGN = 4  # two stride-2 convolutions: tiles must start on the 4-pixel grid


class FrozenAffine(nn.Module):
    """A norm layer with frozen statistics: ``x·scale + shift`` with per-channel ``scale``/``shift`` (1×C×1×1)."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().clone())
        self.register_buffer("shift", shift.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift.to(x.dtype), x, self.scale.to(x.dtype))


def receptive_radius(residual_blocks: int) -> int:
    """Receptive-field radius in input pixels: 4 (9×9) + 1 + 2 (stride-2 3×3) + 8 per residual block (two 3×3 at
    ¼ res) + 2 + 1 (up-convs) + 4 (output 9×9). 54 for the paper's 5 blocks (``docs/performance.md`` §6)."""
    return 14 + 8 * residual_blocks


def default_halo(residual_blocks: int) -> int:
    """Halo used around each tile: the receptive radius rounded up to the 4-px grid, plus 4 px of slack."""
    return int(math.ceil(receptive_radius(residual_blocks) / ALIGN) * ALIGN + ALIGN)


@dataclass(frozen=True)
class Tile:
    """Core box ``[y0, y1) × [x0, x1)`` that this tile produces, and the larger context box it is computed from."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int


def plan_tiles(height: int, width: int, tile: int, halo: int) -> list[Tile]:
    """Cover a (4-aligned) ``height × width`` image with cores of at most ``tile`` px and contexts of ``+halo``."""
    if height % ALIGN or width % ALIGN:
        raise ValueError(f"plan_tiles needs sizes on the {ALIGN}-px grid, got {height}×{width}")
    tile = max(ALIGN, tile - tile % ALIGN)
    halo = int(math.ceil(halo / ALIGN) * ALIGN)
    tiles = []
    for y0 in range(0, height, tile):
        y1 = min(height, y0 + tile)
        for x0 in range(0, width, tile):
            x1 = min(width, x0 + tile)
            tiles.append(Tile(y0, y1, x0, x1, max(0, y0 - halo), min(height, y1 + halo),
                              max(0, x0 - halo), min(width, x1 + halo)))
    return tiles


def norm_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The per-channel affine map ``module`` applies to ``x`` (batch 1), or None if it needs no freezing.

    Each norm kind answers for its own layers (``freeze_affine`` in :mod:`styler.nn.kinds`); eval-mode batch norm
    (global running statistics) and the identity need none.
    """
    if x.shape[0] != 1:
        raise ValueError("statistics are captured one image at a time")
    impl = for_module(module)
    return impl.freeze_affine(module, x) if impl is not None and impl.IMAGE_STATISTICS else None


def _norm_modules(net: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in net.named_modules():
        impl = for_module(module)
        if impl is not None and impl.IMAGE_STATISTICS:
            yield name, module


def has_image_statistics(net: nn.Module) -> bool:
    """True if some norm layer of ``net`` normalizes with statistics of the image itself (IN/GN/LN/SN)."""
    return any(True for _ in _norm_modules(net))


@torch.inference_mode()
def capture_norm_affines(net: nn.Module, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Run ``net`` on ``x`` (1×3×H×W, [0, 1]) and return each image-statistics norm's affine map, by module name."""
    affines: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    handles = []
    for name, module in _norm_modules(net):
        def hook(mod: nn.Module, args: tuple[torch.Tensor, ...], _name: str = name) -> None:
            found = norm_affine(mod, args[0])
            if found is not None:
                affines[_name] = found
        handles.append(module.register_forward_pre_hook(hook))
    try:
        net(x)
    finally:
        for handle in handles:
            handle.remove()
    return affines


def freeze_norms(net: nn.Module, affines: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> nn.Module:
    """A copy of ``net`` whose image-statistics norms are replaced by the given frozen affine maps."""
    frozen = copy.deepcopy(net)
    for name, (scale, shift) in affines.items():
        parent_name, _, child = name.rpartition(".")
        parent = frozen.get_submodule(parent_name) if parent_name else frozen
        setattr(parent, child, FrozenAffine(scale, shift))
    return frozen.eval()


def _pad_to_grid(x: torch.Tensor) -> torch.Tensor:
    pad_h, pad_w = (-x.shape[-2]) % ALIGN, (-x.shape[-1]) % ALIGN
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else x


def statistics_input(x: torch.Tensor, max_pixels: int | None) -> torch.Tensor:
    """The image the statistics pass runs on: ``x`` itself, or a downscaled copy of at most ``max_pixels``."""
    h, w = x.shape[-2:]
    if not max_pixels or h * w <= max_pixels:
        return x
    factor = math.sqrt(max_pixels / (h * w))
    size = (max(8, int(h * factor)), max(8, int(w * factor)))
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False).clamp_(0, 1)


@torch.inference_mode()
def tiled_forward(net: nn.Module, x: torch.Tensor, *, tile: int, halo: int | None = None,
                  stats_max_pixels: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Stylize ``x`` (1×3×H×W in [0, 1]) tile by tile with whole-image normalization statistics.

    Args:
        net: a :class:`~styler.nn.network.TransformerNet` in eval mode.
        tile: core tile size in pixels (rounded down to a multiple of 4).
        halo: context added on each side; default :func:`default_halo` for the net's residual blocks (exact).
        stats_max_pixels: run the statistics pass on a downscaled copy when the image is larger than this
            (``None``: always the full image, which makes the result match the untiled network).
        progress: called with ``(done, total)`` after every tile.
    """
    if x.dim() != 4 or x.shape[:2] != (1, 3):
        raise ValueError(f"tiled_forward expects a 1×3×H×W tensor, got {tuple(x.shape)}")
    blocks = getattr(getattr(net, "arch", None), "residual_blocks", 5)
    halo = default_halo(blocks) if halo is None else halo
    height, width = x.shape[-2:]
    if min(height, width) < 5:
        raise ValueError(f"image too small: {height}×{width}")
    runner = net
    if has_image_statistics(net):
        runner = freeze_norms(net, capture_norm_affines(net, statistics_input(x, stats_max_pixels)))
    padded = _pad_to_grid(x)
    out = torch.empty_like(padded)
    plan = plan_tiles(padded.shape[-2], padded.shape[-1], tile, halo)
    for index, t in enumerate(plan):
        piece = runner(padded[..., t.cy0:t.cy1, t.cx0:t.cx1])
        out[..., t.y0:t.y1, t.x0:t.x1] = piece[..., t.y0 - t.cy0:t.y1 - t.cy0, t.x0 - t.cx0:t.x1 - t.cx0]
        del piece
        if progress is not None:
            progress(index + 1, len(plan))
    return out[..., :height, :width]
