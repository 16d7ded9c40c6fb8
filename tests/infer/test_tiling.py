"""Tiling with whole-image statistics: tiles match the untiled network for every norm."""

from __future__ import annotations

import pytest
import torch

from styler.infer.tiling import default_halo, plan_tiles, receptive_radius, tiled_forward
from styler.nn.network import ArchSpec, TransformerNet


def test_halo_covers_receptive_field() -> None:
    assert receptive_radius(5) == 54
    assert default_halo(5) >= 54 and default_halo(5) % 4 == 0


def test_plan_covers_image_once() -> None:
    plan = plan_tiles(100, 68, tile=32, halo=12)
    covered = torch.zeros(100, 68)
    for t in plan:
        covered[t.y0:t.y1, t.x0:t.x1] += 1
        assert t.cy0 % 4 == 0 and t.cx0 % 4 == 0 and t.cy0 <= t.y0 and t.cy1 >= t.y1
    assert torch.all(covered == 1)


@pytest.mark.parametrize("norm", ["instance", "group:4", "layer", "switchable", "sn+bn", "batch", "none"])
def test_tiled_equals_untiled_with_full_statistics(norm: str) -> None:
    net = TransformerNet(ArchSpec(width=8, residual_blocks=2, norm=norm)).eval()
    x = torch.rand(1, 3, 101, 77)  # odd sizes: padded to the 4-grid and cropped back
    with torch.inference_mode():
        ref = net(x)
        out = tiled_forward(net, x, tile=32)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-5


def test_downscaled_statistics_are_close_and_seamless() -> None:
    torch.manual_seed(0)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1)).eval()
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 24, 24), size=(160, 160), mode="bilinear")
    with torch.inference_mode():
        ref = net(x)
        approx = tiled_forward(net, x, tile=48, stats_max_pixels=80 * 80)
        whole = tiled_forward(net, x, tile=1000, stats_max_pixels=80 * 80)  # one tile, same statistics
    assert (approx - whole).abs().max().item() < 1e-5  # tiles themselves add nothing: no seams
    mse = (approx.clamp(0, 1) - ref.clamp(0, 1)).pow(2).mean().item()
    assert mse < 1e-2


def test_tiled_conditional_norm_keeps_the_blended_style() -> None:
    """CIN tiles freeze instance statistics composed with the current blend; a different blend (negative control)
    gives a different image, so the check can fail."""
    from styler.nn.kinds.conditional import ConditionalInstanceNorm2d, set_style_mix

    torch.manual_seed(0)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=2, norm="cin:3")).eval()
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, ConditionalInstanceNorm2d):
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.5, 0.5)
    x = torch.rand(1, 3, 90, 70)
    set_style_mix(net, torch.tensor([0.5, 0.2, 0.3]))
    with torch.inference_mode():
        ref = net(x)
        out = tiled_forward(net, x, tile=32)
        set_style_mix(net, torch.tensor([0.0, 1.0, 0.0]))
        other = tiled_forward(net, x, tile=32)
    assert (out - ref).abs().max().item() < 1e-5
    assert (other - ref).abs().max().item() > 1e-3
