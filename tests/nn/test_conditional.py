"""Conditional instance norm: one-hot styles are plain IN with that style's affine, blends mix the affines, and
per-instance independence is exact (with batch norm as the negative control)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from styler.nn.kinds.conditional import ConditionalInstanceNorm2d, one_hot_mix, set_style_mix
from styler.nn.network import TransformerNet
from styler.nn.norms import make_norm
from styler.nn.spec import ArchSpec, NormSpec


def _layer(styles: int = 3, channels: int = 5) -> ConditionalInstanceNorm2d:
    gen = torch.Generator().manual_seed(1)
    layer = ConditionalInstanceNorm2d(channels, styles).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(styles, channels, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(styles, channels, generator=gen, dtype=torch.float64))
    return layer


def test_spec_parsing_and_storage() -> None:
    spec = NormSpec.parse("cin:6")
    assert (spec.kind, spec.num_styles, spec.short_name) == ("conditional", 6, "CIN×6")
    assert NormSpec.from_dict(spec.to_dict()) == spec
    assert "num_styles" not in NormSpec.parse("in").to_dict()  # other norms' stored form is unchanged
    with pytest.raises(ValueError, match="conditional instance norm only"):
        NormSpec(kind="batch", num_styles=2)
    assert not spec.batch_dependent_in_training and not spec.uses_running_statistics
    assert isinstance(make_norm(spec, 8), ConditionalInstanceNorm2d)


@pytest.mark.parametrize("style", [0, 1, 2])
def test_one_hot_style_is_instance_norm_with_that_affine(style: int) -> None:
    layer = _layer()
    reference = nn.InstanceNorm2d(5, affine=True).double()
    with torch.no_grad():
        reference.weight.copy_(layer.weight[style])
        reference.bias.copy_(layer.bias[style])
    x = torch.randn(2, 5, 7, 9, dtype=torch.float64)
    set_style_mix(layer, one_hot_mix(style, 3))
    torch.testing.assert_close(layer(x), reference(x), atol=1e-12, rtol=0)
    other = nn.InstanceNorm2d(5, affine=True).double()  # negative control: another style's affine differs
    with torch.no_grad():
        other.weight.copy_(layer.weight[(style + 1) % 3])
        other.bias.copy_(layer.bias[(style + 1) % 3])
    assert not torch.allclose(layer(x), other(x), atol=1e-3)


def test_blend_is_the_convex_mix_of_affines() -> None:
    layer = _layer()
    x = torch.randn(1, 5, 6, 6, dtype=torch.float64)
    mix = torch.tensor([0.6, 0.0, 0.4], dtype=torch.float64)
    set_style_mix(layer, mix)
    normalized = torch.nn.functional.instance_norm(x, eps=layer.eps)
    gamma = 0.6 * layer.weight[0] + 0.4 * layer.weight[2]
    beta = 0.6 * layer.bias[0] + 0.4 * layer.bias[2]
    torch.testing.assert_close(layer(x), normalized * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1),
                               atol=1e-12, rtol=0)


def _cross_sample_jacobian_max(net: nn.Module, x: torch.Tensor) -> float:
    """max |∂ out[0] / ∂ x[1:]|: zero exactly when image 0's output ignores its batch-mates."""
    x = x.clone().requires_grad_(True)
    out = net(x)
    (grad,) = torch.autograd.grad(out[0].sum(), x)
    return float(grad[1:].abs().max())


def test_per_instance_independence_is_exact() -> None:
    torch.manual_seed(0)
    cin = TransformerNet(ArchSpec(width=4, residual_blocks=1, norm=NormSpec.parse("cin:3"))).double().train()
    set_style_mix(cin, torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64))
    x = torch.rand(3, 3, 20, 20, dtype=torch.float64)
    assert _cross_sample_jacobian_max(cin, x) == 0.0
    bn = TransformerNet(ArchSpec(width=4, residual_blocks=1, norm=NormSpec.parse("bn"))).double().train()
    assert _cross_sample_jacobian_max(bn, x) > 1e-6  # negative control: batch norm mixes the batch


def test_per_call_style_and_per_image_mix() -> None:
    torch.manual_seed(0)
    net = TransformerNet(ArchSpec(width=4, residual_blocks=1, norm=NormSpec.parse("cin:2"))).eval()
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, ConditionalInstanceNorm2d):
                layer.weight[1].mul_(3.0)
        x = torch.rand(2, 3, 16, 16)
        style0, style1 = net(x, style=one_hot_mix(0, 2)), net(x, style=one_hot_mix(1, 2))
        assert not torch.allclose(style0, style1, atol=1e-3)
        torch.testing.assert_close(net(x), style0)  # the per-call style does not stick
        per_image = net(x, style=torch.stack([one_hot_mix(0, 2), one_hot_mix(1, 2)]))
        torch.testing.assert_close(per_image[0], style0[0])
        torch.testing.assert_close(per_image[1], style1[1])
        with pytest.raises(ValueError, match="does not fit 2 styles"):
            net(x, style=torch.ones(3))
