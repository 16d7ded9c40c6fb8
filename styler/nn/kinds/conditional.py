"""Conditional instance norm (Dumoulin, Shlens & Kudlur 2017): instance statistics, one (γ, β) per style.

Why it belongs in styler: it is the strongest evidence for the norm story. The convolutions are shared by every
style; a whole style lives in the per-channel scale and shift applied after instance normalization. One-hot style
weights make the layer exactly ``InstanceNorm2d`` with that style's affine; other convex weights blend styles by
mixing their (γ, β). Statistics stay per image and channel, so batch independence is exactly that of IN.

Which style the layer applies is its *style mix*: a vector of ``num_styles`` weights (one mix for the batch) or an
``N×num_styles`` matrix (one per image). :func:`set_style_mix` sets it on every layer of a network; a mix passed as
a tensor that is derived from a graph input (``TransformerNet.forward(x, style=...)``) stays an input of an
exported graph, so one exported graph serves every style and blend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from styler.nn.kinds import affine_from_statistics

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

__all__ = ["ConditionalInstanceNorm2d", "conditional_layers", "set_style_mix", "one_hot_mix"]


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm followed by the affine of the current style mix: ``IN(x)·(m·Γ) + m·B``.

    ``weight`` and ``bias`` are ``num_styles × C`` parameters (row *s* is style *s*'s γ, β), initialized to the
    identity affine like ``InstanceNorm2d(affine=True)``.
    """

    mix: torch.Tensor

    def __init__(self, num_channels: int, num_styles: int, eps: float = 1e-5) -> None:
        super().__init__()
        if num_styles < 1:
            raise ValueError(f"conditional instance norm needs at least one style, got {num_styles}")
        self.num_channels = num_channels
        self.num_styles = num_styles
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_styles, num_channels))
        self.bias = nn.Parameter(torch.zeros(num_styles, num_channels))
        # Not persistent: the mix is a per-call choice, not part of the trained model.
        self.register_buffer("mix", one_hot_mix(0, num_styles), persistent=False)
        self.mix_override: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"{self.num_channels}, styles={self.num_styles}, eps={self.eps}"

    def style_affine(self, n: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ, β) of the current mix, each ``N×C×1×1`` (or ``1×C×1×1`` for one mix shared by the batch)."""
        mix = self.mix if self.mix_override is None else self.mix_override
        mix = mix.to(dtype)
        if mix.dim() == 1:
            mix = mix.unsqueeze(0)
        if mix.shape[-1] != self.num_styles or mix.shape[0] not in (1, n):
            raise ValueError(f"style mix of shape {tuple(mix.shape)} does not fit {self.num_styles} styles and a "
                             f"batch of {n}")
        gamma = mix @ self.weight.to(dtype)
        beta = mix @ self.bias.to(dtype)
        return gamma[:, :, None, None], beta[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
        xs = x.to(stats_dtype)
        normalized = F.instance_norm(xs, eps=self.eps)
        gamma, beta = self.style_affine(x.shape[0], stats_dtype)
        return (normalized * gamma + beta).to(x.dtype)


def one_hot_mix(index: int, num_styles: int) -> torch.Tensor:
    """The mix that selects style ``index`` alone."""
    mix = torch.zeros(num_styles)
    mix[index] = 1.0
    return mix


def conditional_layers(model: nn.Module) -> list[ConditionalInstanceNorm2d]:
    return [m for m in model.modules() if isinstance(m, ConditionalInstanceNorm2d)]


def set_style_mix(model: nn.Module, mix: torch.Tensor | None, *, override: bool = False) -> None:
    """Make every conditional layer of ``model`` apply ``mix`` (``S`` or ``N×S`` weights).

    ``override=True`` sets a transient tensor (possibly derived from a graph input, for export) instead of the
    stored buffer; ``mix=None`` with ``override=True`` clears it.
    """
    for layer in conditional_layers(model):
        if override:
            layer.mix_override = mix
        else:
            assert mix is not None
            layer.mix.copy_(mix.to(layer.mix.dtype).reshape(layer.mix.shape))


MODULE_TYPES: tuple[type[nn.Module], ...] = (ConditionalInstanceNorm2d,)
IMAGE_STATISTICS = True


def build(spec: NormSpec, num_channels: int) -> nn.Module:
    return ConditionalInstanceNorm2d(num_channels, spec.num_styles, eps=spec.eps)


def freeze_affine(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Instance statistics of ``x`` composed with the current style's (γ, β)."""
    assert isinstance(module, ConditionalInstanceNorm2d)
    xs = x.float()
    var, mean = torch.var_mean(xs, dim=(2, 3), correction=0, keepdim=True)
    gamma, beta = module.style_affine(1, torch.float32)
    scale, shift = affine_from_statistics(nn.Module(), mean, var, module.eps)
    return scale * gamma, shift * gamma + beta


def synchronized(module: nn.Module) -> nn.Module | None:
    return None


def mixes_batch(module: nn.Module) -> bool:
    return False
