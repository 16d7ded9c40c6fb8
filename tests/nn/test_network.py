"""TransformerNet: every norm builds and trains, any input size ≥ 5×5 works, parameter and FLOP counts."""

from __future__ import annotations

import pytest
import torch

from styler.nn.network import ArchSpec, TransformerNet, count_parameters, flops_per_pixel
from styler.nn.norms import NormSpec

pytestmark = pytest.mark.usefixtures("single_thread")

NORMS = ["in", "bn", "gn", "ln", "sn", "sn+bn", "none"]


def small(norm: str, width: int = 8, blocks: int = 1) -> TransformerNet:
    return TransformerNet(ArchSpec(width=width, residual_blocks=blocks, norm=NormSpec.parse(norm)))


@pytest.mark.parametrize("norm", NORMS)
def test_one_train_step_changes_parameters(norm):
    net = small(norm).train()
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand(2, 3, 24, 24)
    target = torch.rand(2, 3, 24, 24)
    loss = (net(x) - target).pow(2).mean()
    assert torch.isfinite(loss)
    optimizer.zero_grad()
    loss.backward()
    grads = {k: p.grad for k, p in net.named_parameters()}
    assert all(g is not None for g in grads.values()), [k for k, g in grads.items() if g is None]
    optimizer.step()
    changed = [k for k, v in net.named_parameters() if not torch.equal(v.detach(), before[k])]
    # Adam moves every parameter that got a non-zero gradient; all of them should have one.
    assert len(changed) == len(before)
    with torch.no_grad():
        assert (net(x) - target).pow(2).mean() < loss


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("size", [(5, 5), (37, 51), (64, 64), (6, 9), (13, 8)])
def test_output_size_equals_input_size(norm, size):
    net = small(norm).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape
    assert out.dtype == x.dtype
    assert torch.isfinite(out).all()


def test_padding_to_multiple_of_four_is_cropped_back_consistently():
    """The padded-and-cropped output of an odd size equals the same region of the explicitly padded input's output."""
    net = small("in").double().eval()
    x = torch.rand(1, 3, 37, 51, dtype=torch.float64)
    padded = torch.nn.functional.pad(x * 255, (0, 1, 0, 3), mode="reflect") / 255
    with torch.no_grad():
        odd = net(x)
        full = net(padded)
    torch.testing.assert_close(odd, full[..., :37, :51], atol=1e-10, rtol=0)


@pytest.mark.parametrize("size", [(4, 4), (4, 32), (32, 3), (1, 1)])
def test_too_small_input_raises(size):
    net = small("in").eval()
    with pytest.raises(ValueError, match="too small"):
        net(torch.rand(1, 3, *size))


@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 1, 16, 16), (1, 4, 16, 16)])
def test_wrong_input_shape_raises(shape):
    with pytest.raises(ValueError, match="N×3×H×W"):
        small("in")(torch.rand(*shape))


def test_value_range_convention():
    """Input [0, 1], internally 0–255: a no-norm net with an identity-like path maps 0–1 to 0–1 scale outputs."""
    net = small("none").eval()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.zero_()
                module.bias.zero_()
        net.decoder[2].conv.bias.fill_(127.5)  # 127.5 in pixel units is 0.5 in the public range
        out = net(torch.rand(1, 3, 16, 16))
    torch.testing.assert_close(out, torch.full_like(out, 0.5))


def test_parameter_count_and_flops_of_the_paper_net():
    arch = ArchSpec(width=32, residual_blocks=5, norm=NormSpec(kind="instance"))
    assert count_parameters(TransformerNet(arch)) == 1_679_235
    assert flops_per_pixel(arch, size=64) == 307_584
    # The half-width net has about 4× fewer FLOPs.
    half = flops_per_pixel(ArchSpec(width=16), size=32)
    assert 3.5 < 307_584 / half < 4.1


@pytest.mark.parametrize("norm, extra", [("bn", 0), ("gn", 0), ("ln", 0), ("sn", 60), ("sn+bn", 90),
                                         ("none", -3200)])
def test_parameter_count_per_norm(norm, extra):
    """Every affine norm has the same γ/β count as IN; SN adds its logits (2 or 3 per vector, 15 layers)."""
    arch = ArchSpec(width=32, residual_blocks=5, norm=NormSpec.parse(norm))
    assert count_parameters(TransformerNet(arch)) == 1_679_235 + extra


def test_arch_spec_round_trip_and_validation():
    arch = ArchSpec(width=16, residual_blocks=3, norm=NormSpec.parse("group:4"))
    assert ArchSpec.from_dict(arch.to_dict()) == arch
    assert ArchSpec(norm="sn+bn").norm.using_bn
    with pytest.raises(ValueError):
        ArchSpec(width=0)
    with pytest.raises(ValueError):
        ArchSpec.from_dict({"width": 8, "depth": 3})
