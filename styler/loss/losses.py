"""Perceptual loss of Johnson et al.: Gram-matrix style loss, feature content loss and total variation.

Conventions (all measured on the Caffe VGG16 weights, whose activations are in Caffe's 0–255 scale):

* Gram matrix per image, normalized by C·H·W, so layers of different sizes contribute on comparable scales.
* style loss = Σ over style layers of the mean squared difference between the output's and the style's Grams.
* content loss = mean squared difference of the output's and the photo's features at the content layer.
* total variation = Σ of squared differences between neighbouring pixels, in 0–255 units, averaged over the batch.

:class:`PerceptualLoss` returns every term separately (:class:`LossTerms`) so that training can log them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from styler.loss.lossnet import VGG16Features

__all__ = ["LossTerms", "LossWeights", "PerceptualLoss", "gram_matrix", "total_variation"]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Per-image Gram matrix ``F Fᵀ / (C·H·W)`` of N×C×H×W features, computed in fp32 (N×C×C).

    Autocast is switched off for the product: the style loss is a *difference* of Gram matrices, and a bf16 product
    and output (8-bit mantissa) would put a ~0.4 % error on every entry, comparable to the differences late in
    training. The features themselves may be bf16 (the loss network's output under autocast).
    """
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w).float()
    if features.device.type not in ("cpu", "cuda"):  # no autocast there (and entering it can raise on old torch)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)
    with torch.autocast(features.device.type, enabled=False):
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def total_variation(images01: torch.Tensor) -> torch.Tensor:
    """Sum of squared neighbour differences per image in 0–255 units, averaged over the batch."""
    x = images01.float() * 255.0
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).sum(dim=(1, 2, 3))
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).sum(dim=(1, 2, 3))
    return (dh + dw).mean()


@dataclass(frozen=True)
class LossWeights:
    """Weights and layers of the perceptual loss. Defaults are tuned for the Caffe VGG16 (see :meth:`for_lossnet`)."""

    content: float = 1.0
    style: float = 5.0
    tv: float = 1e-6
    content_layer: str = "relu3_3"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")

    @classmethod
    def for_lossnet(cls, convention: str) -> LossWeights:
        """Default weights per loss network: the two VGG16 sources have very different activation scales.

        * caffe (0–255 BGR input): content 1, style 5, TV 1e-6, the settings Johnson et al. used with these very
          weights, verified here by training.
        * torchvision (normalized input, ~58× smaller inputs): content and style weights are scaled up as in the
          PyTorch example (content 1e5, style 1e10). Not verified here (the weights need a download).
        """
        if convention == "torchvision":
            return cls(content=1e5, style=1e10, tv=1e-6)
        return cls()

    def to_dict(self) -> dict:
        return {"content": self.content, "style": self.style, "tv": self.tv, "content_layer": self.content_layer,
                "style_layers": list(self.style_layers)}


@dataclass
class LossTerms:
    """Weighted loss terms of one batch; ``total`` carries the graph, the others are for logging."""

    total: torch.Tensor
    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {"loss": float(self.total.detach()), "content": float(self.content), "style": float(self.style),
                "tv": float(self.tv)}


class PerceptualLoss(nn.Module):
    """Johnson's perceptual loss against one style image.

    The style image's Gram matrices are computed once at construction and kept as buffers (recomputing them every
    step would waste a VGG forward). Content targets are computed under ``no_grad`` and only as deep as the content
    layer needs.
    """

    def __init__(self, lossnet: VGG16Features, style_image01: torch.Tensor, weights: LossWeights) -> None:
        super().__init__()
        missing = [t for t in (weights.content_layer, *weights.style_layers) if t not in lossnet.taps]
        if missing:
            raise ValueError(f"loss network was built without taps {missing}")
        self.lossnet = lossnet
        self.weights = weights
        with torch.no_grad():
            feats = lossnet(style_image01, taps=weights.style_layers)
        for name in weights.style_layers:
            self.register_buffer(f"style_gram_{name}", gram_matrix(feats[name]))

    def style_grams(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"style_gram_{name}") for name in self.weights.style_layers}

    def content_targets(self, content01: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.lossnet(content01, taps=(self.weights.content_layer,))[self.weights.content_layer]

    def forward(self, output01: torch.Tensor, content01: torch.Tensor) -> LossTerms:
        w = self.weights
        target = self.content_targets(content01)
        feats = self.lossnet(output01, taps=(w.content_layer, *w.style_layers))
        content = (feats[w.content_layer].float() - target.float()).pow(2).mean()
        style = output01.new_zeros((), dtype=torch.float32)
        for name, gram_style in self.style_grams().items():
            gram_out = gram_matrix(feats[name])
            style = style + (gram_out - gram_style.expand_as(gram_out)).pow(2).mean()
        tv = total_variation(output01)
        content, style, tv = w.content * content, w.style * style, w.tv * tv
        return LossTerms(total=content + style + tv, content=content.detach(), style=style.detach(), tv=tv.detach())


def evaluate_terms(loss: PerceptualLoss, outputs01: Sequence[torch.Tensor], contents01: Sequence[torch.Tensor]
                   ) -> dict[str, float]:
    """Mean weighted loss terms over a list of (output, content) image pairs, each 1×3×H×W (for quality tables)."""
    totals: dict[str, float] = {}
    with torch.no_grad():
        for out, content in zip(outputs01, contents01):
            for key, value in loss(out, content).as_floats().items():
                totals[key] = totals.get(key, 0.0) + value
    return {k: v / max(1, len(outputs01)) for k, v in totals.items()}
