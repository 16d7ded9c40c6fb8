"""Normalization layers for the transformer network, built from one factory.

Why a factory: the whole point of styler's norm ablation is that the *only* thing that changes between two models is
the normalization layer. Every norm is therefore described by a small, serializable :class:`NormSpec`, stored in the
model file, and turned into modules by :func:`make_norm`, which asks the kind's implementation module
(:mod:`styler.nn.kinds`, chosen by the registry :mod:`styler.nn.registry`) to build it.

Semantics follow ``docs/norms.md`` of the project's reference material:

* ``instance`` (default): ``InstanceNorm2d(C, affine=True)``, per-image statistics in train *and* eval, no running
  statistics (``track_running_stats`` is never enabled: in eval it would silently stop being instance norm).
* ``batch``: torch ``BatchNorm2d`` (momentum 0.1 on the new value, biased variance to normalize, unbiased
  ``running_var``, eval uses the running buffers).
* ``group``: ``GroupNorm(G, C)`` with a fixed number of groups, **G = 8** by default (4/8/16 channels per group at
  widths 32/64/128), so it sits strictly between layer norm (G = 1) and instance norm (G = C).
* ``layer``: statistics over (C, H, W) with a per-channel affine, i.e. ``GroupNorm(1, C)``. Never
  ``nn.LayerNorm([C, H, W])``, whose per-element affine ties the network to one image size.
* ``switchable``: :class:`SwitchNorm2d`, a learned softmax mix of IN/LN(/BN) statistics (Luo et al. 2019).
* ``none``: identity, the control.
"""

from __future__ import annotations

import math

from torch import nn

from styler.nn.kinds import for_module, implementation
from styler.nn.kinds.layer import LayerNorm2d
from styler.nn.kinds.switchable import SwitchNorm2d, finalize_switchable_statistics, switchable_layers
from styler.nn.registry import NORM_ALIASES, NORM_KINDS, canonical_norm_name
from styler.nn.spec import NormSpec

__all__ = [
    "NORM_ALIASES",
    "NORM_KINDS",
    "NormSpec",
    "LayerNorm2d",
    "SwitchNorm2d",
    "canonical_norm_name",
    "epsilon_law",
    "finalize_switchable_statistics",
    "make_norm",
    "switchable_layers",
    "uses_batch_statistics",
]


def make_norm(spec: NormSpec | str, num_channels: int, *, layer_name: str = "") -> nn.Module:
    """Build the normalization layer described by ``spec`` for ``num_channels`` channels.

    ``layer_name`` only improves error messages (e.g. a group count that does not divide the channels).
    """
    spec = NormSpec.parse(spec)
    spec.check_channels(num_channels, layer_name)
    return implementation(spec.kind).build(spec, num_channels)


def uses_batch_statistics(model: nn.Module) -> bool:
    """True if a training-mode forward of ``model`` mixes statistics across the images of a batch."""
    for module in model.modules():
        impl = for_module(module)
        if impl is not None and impl.mixes_batch(module):
            return True
    return False


def epsilon_law(max_abs_normalized: float, eps: float, k: float) -> float:
    """Predicted max |IN(y) − IN(y/k)| for a unit-variance map (docs/norms.md §6.4): the ε residual of contrast."""
    return max_abs_normalized * abs(1 / math.sqrt(1 + eps) - 1 / math.sqrt(1 + eps * k * k))

