"""Normalization statistics smoothed across frames: the route against global colour pumping.

Why: an instance-, group- or layer-norm network normalizes every frame by that frame's own statistics. When they
jump from frame to frame (noise, exposure hunting, an object crossing the view), every feature map is rescaled and
the whole frame's colours pump. Here each such norm layer is wrapped so that it computes the per-channel affine map
it would apply to the frame, exactly as the two-pass tiler freezes it (:func:`styler.infer.tiling.norm_affine`, one
implementation per norm kind), takes an exponential moving average of ``(scale, shift)`` over frames, and applies
the averaged map. Frames of one batch are consecutive, so the average runs through the batch in order inside
each layer; it needs one pass, not a statistics pass and a frozen pass.

Measured (``scripts/bench_video.py``, ``docs/video/``): with instance norm the global part of the flicker is
already small, because IN divides a global gain and offset out exactly (up to clipping), and smoothing the
statistics *undoes* that: on the exposure clip the averaged maps lag behind the exposure and let it through, so the
route raises flicker there, while it lowers it a little on a pan (where new content re-tones the frame). It is kept
as an option, off by default. The average runs over the whole clip (it is not reset at scene cuts). Eval-mode
batch norm uses fixed running statistics and is left alone (nothing to smooth; ``scripts/video_norms.py`` shows
it passing exposure changes through).
"""

from __future__ import annotations

import copy
import dataclasses

import torch
from torch import nn

from styler.infer.tiling import norm_affine
from styler.nn.kinds import for_module

__all__ = ["SmoothedNorm", "smoothed_model", "reset_statistics"]


class SmoothedNorm(nn.Module):
    """A norm layer whose per-frame affine map is an exponential moving average over the frames seen so far.

    ``decay`` is the weight of the past: 0 is the plain layer, 0.7 averages over roughly the last 3 frames.
    """

    def __init__(self, inner: nn.Module, decay: float) -> None:
        super().__init__()
        self.inner = inner
        self.decay = decay
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        for frame in x.split(1):
            affine = norm_affine(self.inner, frame)
            if affine is None:  # e.g. a layer in a mode without image statistics: nothing to smooth
                return self.inner(x)
            if self.state is not None and self.state[0].shape == affine[0].shape:
                affine = (torch.lerp(affine[0], self.state[0], self.decay),
                          torch.lerp(affine[1], self.state[1], self.decay))
            self.state = affine
            outs.append(torch.addcmul(affine[1].to(x.dtype), frame, affine[0].to(x.dtype)))
        return torch.cat(outs)


def smoothed_model(loaded: object, decay: float) -> object:
    """A copy of a :class:`~styler.io.modelfile.LoadedModel` whose image-statistics norms are :class:`SmoothedNorm`.

    The copy can be handed to :class:`~styler.infer.stylizer.Stylizer` (torch backend) like any loaded model.
    """
    net = copy.deepcopy(loaded.net)  # type: ignore[attr-defined]
    targets = [name for name, module in net.named_modules()
               if (impl := for_module(module)) is not None and impl.IMAGE_STATISTICS]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, child, SmoothedNorm(getattr(parent, child), decay))
    return dataclasses.replace(loaded, net=net.eval())  # type: ignore[type-var]


def reset_statistics(net: nn.Module) -> None:
    """Forget the averaged statistics (a new clip, or a scene cut)."""
    for module in net.modules():
        if isinstance(module, SmoothedNorm):
            module.state = None
