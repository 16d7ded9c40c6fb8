"""The feed-forward transformer network of Johnson et al. (2016), with a pluggable normalization layer.

Layout (widths for the default ``width=32``)::

    9×9 conv 3→32 · 3×3/2 conv 32→64 · 3×3/2 conv 64→128 · 5 residual blocks at 128
    · nearest ×2 + 3×3 conv 128→64 · nearest ×2 + 3×3 conv 64→32 · 9×9 conv 32→3

Every convolution is reflection padded (zero padding would break instance norm's brightness invariance at the
borders and leave visible frames) and followed by the configured norm and a ReLU, except the last one. Upsampling is
nearest-neighbour followed by a convolution, which avoids the checkerboard artefacts of transposed convolutions.

Value range: the public interface takes and returns RGB in [0, 1]. Internally the network works in 0–255 pixel
units, like the original Torch and PyTorch implementations, so that published loss weights (e.g. total variation
1e-6 on 0–255 pixels) keep their meaning. Sizes that are not multiples of 4 are reflection padded up to the next
multiple of 4 and cropped back, so the output always has the input's H×W.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from styler.nn.norms import make_norm
from styler.nn.spec import ArchSpec, NormSpec

__all__ = ["ArchSpec", "TransformerNet", "count_parameters", "flops_per_pixel"]

PIXEL_SCALE = 255.0


class ConvNormAct(nn.Sequential):
    """Reflection pad → conv → norm → ReLU (norm and activation optional)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, norm: NormSpec | None = None,
                 relu: bool = True, upsample: bool = False, name: str = "") -> None:
        layers: dict[str, nn.Module] = {}
        if upsample:
            layers["upsample"] = nn.Upsample(scale_factor=2, mode="nearest")
        layers["pad"] = nn.ReflectionPad2d(kernel // 2)
        layers["conv"] = nn.Conv2d(cin, cout, kernel, stride=stride)
        if norm is not None:
            layers["norm"] = make_norm(norm, cout, layer_name=name)
        if relu:
            layers["relu"] = nn.ReLU(inplace=True)
        super().__init__()
        for key, module in layers.items():
            self.add_module(key, module)


class ResidualBlock(nn.Module):
    """conv-norm-ReLU-conv-norm plus identity; no ReLU after the sum (as in the PyTorch reference)."""

    def __init__(self, channels: int, norm: NormSpec, name: str = "") -> None:
        super().__init__()
        self.block = nn.Sequential(
            ConvNormAct(channels, channels, 3, norm=norm, name=f"{name}.0"),
            ConvNormAct(channels, channels, 3, norm=norm, relu=False, name=f"{name}.1"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class TransformerNet(nn.Module):
    """Image transformation network: RGB [0, 1] in, RGB (≈[0, 1], unclamped) out, same H×W."""

    def __init__(self, arch: ArchSpec | None = None) -> None:
        super().__init__()
        self.arch = arch = arch or ArchSpec()
        c1, c2, c3 = arch.channels
        norm = arch.norm
        self.encoder = nn.Sequential(
            ConvNormAct(3, c1, 9, norm=norm, name="encoder.0"),
            ConvNormAct(c1, c2, 3, stride=2, norm=norm, name="encoder.1"),
            ConvNormAct(c2, c3, 3, stride=2, norm=norm, name="encoder.2"),
        )
        self.residuals = nn.Sequential(*[ResidualBlock(c3, norm, name=f"residuals.{i}")
                                         for i in range(arch.residual_blocks)])
        self.decoder = nn.Sequential(
            ConvNormAct(c3, c2, 3, norm=norm, upsample=True, name="decoder.0"),
            ConvNormAct(c2, c1, 3, norm=norm, upsample=True, name="decoder.1"),
            ConvNormAct(c1, 3, 9, norm=None, relu=False, name="decoder.2"),
        )

    def forward(self, x: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """Stylize ``x``; ``style`` (conditional norm only) is the style mix, ``S`` or ``N×S`` weights, for this call.

        Without ``style`` a conditional network applies the mix set by
        :func:`styler.nn.kinds.conditional.set_style_mix` (style 0 by default).
        """
        if style is None:
            return self._forward(x)
        from styler.nn.kinds.conditional import set_style_mix

        set_style_mix(self, style, override=True)
        try:
            return self._forward(x)
        finally:
            set_style_mix(self, None, override=True)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"TransformerNet expects an N×3×H×W tensor, got shape {tuple(x.shape)}")
        height, width = x.shape[-2:]
        if min(height, width) < 5:
            raise ValueError(f"image too small: {height}×{width}; the 9×9 reflection-padded input conv needs ≥ 5×5")
        pad_h, pad_w = (-height) % 4, (-width) % 4
        y = x * PIXEL_SCALE
        if pad_h or pad_w:
            y = F.pad(y, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(y)))
        if pad_h or pad_w:
            y = y[..., :height, :width]
        return y / PIXEL_SCALE


def count_parameters(model: nn.Module) -> int:
    """Number of trainable and frozen parameters (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_pixel(arch: ArchSpec | None = None, size: int = 256) -> float:
    """Forward FLOPs per input pixel, counted with torch's FlopCounterMode (convolutions only, as in the literature)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = TransformerNet(arch or ArchSpec()).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / (size * size)
