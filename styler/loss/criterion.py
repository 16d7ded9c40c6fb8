"""The one place that turns "which loss network, which weights, which style image" into a ready perceptual loss.

Why one function: training, the quality table (``scripts/eval_models.py``), the style-distance measurement
(``scripts/style_distance.py``) and the training benchmark (``scripts/bench_train.py``) all need the same chain —
resolve the loss weights against the loss network's convention, load (and verify) VGG16 with exactly the taps those
weights read, load the style image, precompute its Gram matrices in fp32, and optionally cast the frozen conv stack
to bf16. Each of them used to wire it by hand, so a change to one step (a new default weight, the bf16 cast) could
silently make the scripts measure a different loss from the one training optimizes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from styler.loss.losses import LossWeights, PerceptualLoss
from styler.loss.lossnet import LossNetSpec, VGG16Features
from styler.train.data import load_style_image

__all__ = ["Criterion", "build_criterion", "build_style_criteria", "cast_lossnet_to_bf16", "resolve_loss_weights"]

def resolve_loss_weights(convention: str, *, content: float | None = None, style: float | None = None,
                         tv: float | None = None, content_layer: str | None = None,
                         style_layers: Sequence[str] | None = None) -> LossWeights:
    """Loss weights where every value left at ``None`` takes the default of the loss network's ``convention``.

    The two VGG16 conventions have activation scales ~58× apart, so a weight only means something together with the
    convention it was chosen for (:meth:`LossWeights.for_lossnet`).
    """
    defaults = LossWeights.for_lossnet(convention)
    return LossWeights(
        content=defaults.content if content is None else content,
        style=defaults.style if style is None else style,
        tv=defaults.tv if tv is None else tv,
        content_layer=defaults.content_layer if content_layer is None else content_layer,
        style_layers=defaults.style_layers if style_layers is None else tuple(style_layers))


def cast_lossnet_to_bf16(loss: PerceptualLoss) -> PerceptualLoss:
    """Cast the frozen VGG conv stack of ``loss`` to bf16 in place, keeping its style Grams and input conversion fp32.

    Casting once saves autocast from re-casting 15 M frozen weights on every step (1.5× faster bf16 steps). It must
    come after the style Grams were computed, so that the style targets keep fp32 precision.
    """
    loss.lossnet.layers.to(torch.bfloat16)
    return loss


@dataclass
class Criterion:
    """A perceptual loss together with what it was built from (recorded in model files).

    Attributes:
        loss: the loss module (frozen VGG, style Grams as buffers); never wrapped in DDP.
        weights: the resolved loss weights and layers.
        lossnet: the loss network's spec, with the weights file's sha256 filled in.
        style_image: the style image as the loss saw it, 1×3×H×W in [0, 1] on the CPU.
        bf16: whether the VGG conv stack was cast to bf16.
    """

    loss: PerceptualLoss
    weights: LossWeights
    lossnet: LossNetSpec
    style_image: torch.Tensor
    bf16: bool = False

    def with_style(self, style: str | os.PathLike[str] | torch.Tensor, style_size: int | None = None, *,
                   style_weight: float | None = None) -> Criterion:
        """The same loss against another style image, sharing this criterion's (frozen) loss network.

        Loading and verifying VGG16 is the slow part; measuring many paintings against one set of photos needs it
        once. Only for fp32 criteria: new style Grams must not be computed by a bf16 network.
        """
        if self.bf16:
            raise ValueError("with_style needs an fp32 criterion: style Grams are computed in fp32")
        image = _style_tensor(style, style_size)
        weights = self.weights if style_weight is None else dataclasses.replace(self.weights, style=style_weight)
        device = next(self.loss.lossnet.parameters()).device
        loss = PerceptualLoss(self.loss.lossnet, image.to(device), weights)
        return Criterion(loss=loss, weights=weights, lossnet=self.lossnet, style_image=image)


def _style_tensor(style: str | os.PathLike[str] | torch.Tensor, style_size: int | None) -> torch.Tensor:
    if isinstance(style, torch.Tensor):
        return style
    return load_style_image(style, style_size)


def build_criterion(lossnet: LossNetSpec, style: str | os.PathLike[str] | torch.Tensor, *,
                    style_size: int | None = None, content_weight: float | None = None,
                    style_weight: float | None = None, tv_weight: float | None = None,
                    content_layer: str | None = None, style_layers: Sequence[str] | None = None,
                    device: torch.device | str = "cpu", bf16: bool = False) -> Criterion:
    """Build the perceptual loss for ``lossnet`` against one style image.

    Steps, in this order: weights (given values over the convention's defaults, :func:`resolve_loss_weights`) →
    VGG16 load and verification, truncated after the deepest tap the weights read → style image (a file resized to
    ``style_size`` on its long side, or a ready 1×3×H×W tensor) → :class:`PerceptualLoss`, whose style Grams are
    computed on the CPU in fp32 → moved to ``device`` → with ``bf16``, the conv stack cast once
    (:func:`cast_lossnet_to_bf16`).
    """
    weights = resolve_loss_weights(lossnet.convention, content=content_weight, style=style_weight, tv=tv_weight,
                                   content_layer=content_layer, style_layers=style_layers)
    network, lossnet = VGG16Features.load(lossnet, (weights.content_layer, *weights.style_layers))
    image = _style_tensor(style, style_size)
    loss = PerceptualLoss(network, image, weights).to(device)
    if bf16:
        cast_lossnet_to_bf16(loss)
    return Criterion(loss=loss, weights=weights, lossnet=lossnet, style_image=image, bf16=bf16)


def build_style_criteria(lossnet: LossNetSpec, styles: Sequence[str | os.PathLike[str] | torch.Tensor], *,
                         style_weights: Sequence[float | None] = (), style_size: int | None = None,
                         content_weight: float | None = None, style_weight: float | None = None,
                         tv_weight: float | None = None, content_layer: str | None = None,
                         style_layers: Sequence[str] | None = None, device: torch.device | str = "cpu",
                         bf16: bool = False) -> list[Criterion]:
    """One criterion per style, all sharing one frozen VGG16 (a multi-style run holds VGG once, not N times).

    ``style_weights[i]`` overrides the style weight of style *i* (paintings far from photos need a lower one; see
    ``scripts/style_distance.py``). Every style's Grams are computed in fp32 before the shared conv stack is cast to
    bf16 (once, when ``bf16``).
    """
    run_weight = resolve_loss_weights(lossnet.convention, style=style_weight).style
    weights = [run_weight if w is None else w
               for w in list(style_weights) + [None] * (len(styles) - len(style_weights))]
    first = build_criterion(lossnet, styles[0], style_size=style_size, content_weight=content_weight,
                            style_weight=weights[0], tv_weight=tv_weight, content_layer=content_layer,
                            style_layers=style_layers, device=device, bf16=False)
    criteria = [first] + [first.with_style(style, style_size, style_weight=weight)
                          for style, weight in zip(styles[1:], weights[1:])]
    if bf16:
        cast_lossnet_to_bf16(first.loss)  # the conv stack is one module shared by every criterion
        criteria = [dataclasses.replace(c, bf16=True) for c in criteria]
    return criteria
