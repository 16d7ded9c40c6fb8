"""The torch side of each registered norm kind, one module per kind.

Every module here implements the same small interface, which the rest of styler reaches only through
:func:`implementation` and :func:`for_module` (so no caller tests ``isinstance(m, nn.BatchNorm2d)`` itself):

* ``MODULE_TYPES``: the layer classes of this kind (for recognising its layers in a built network);
* ``IMAGE_STATISTICS``: whether the layer normalizes with statistics of the image itself (tiling must freeze them);
* ``build(spec, num_channels) -> nn.Module``;
* ``freeze_affine(module, x) -> (scale, shift) | None``: the per-channel affine map the layer applies to the single
  image ``x`` (None: nothing to freeze), used by tiled inference;
* ``synchronized(module) -> nn.Module | None``: the layer's form whose batch statistics span every process of a
  distributed run (None: it needs none);
* ``mixes_batch(module) -> bool``: whether a training forward of this layer mixes the images of a batch.

Which module serves which kind is the registry entry's ``implementation`` (:mod:`styler.nn.registry`).
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch
from torch import nn

from styler.nn.registry import NORMS, norm_kind

__all__ = ["implementation", "for_module", "affine_from_statistics"]

_LOADED: dict[str, ModuleType] = {}


def implementation(kind: str) -> ModuleType:
    """The implementation module of a norm kind (canonical name or alias)."""
    name = norm_kind(kind).implementation
    if name not in _LOADED:
        _LOADED[name] = importlib.import_module(f"{__name__}.{name}")
    return _LOADED[name]


def for_module(module: nn.Module) -> ModuleType | None:
    """The implementation whose layer classes ``module`` belongs to (the most specific match), or None."""
    best: tuple[int, ModuleType] | None = None
    for kind in NORMS:
        impl = implementation(kind)
        for cls in impl.MODULE_TYPES:
            if isinstance(module, cls):
                depth = len(type(module).__mro__) - type(module).__mro__.index(cls)
                if best is None or depth > best[0]:
                    best = (depth, impl)
    return None if best is None else best[1]


def affine_from_statistics(module: nn.Module, mean: torch.Tensor, var: torch.Tensor, eps: float
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` with ``scale = γ/√(σ²+ε)`` and ``shift = β − μ·scale``; γ, β omitted if the layer has
    none."""
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.view(1, -1, 1, 1).to(scale.dtype)
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.view(1, -1, 1, 1).to(scale.dtype)
    return scale, shift


def copy_state(new: nn.Module, old: nn.Module) -> nn.Module:
    """Give ``new`` the state, dtype, device and mode of ``old`` (used when swapping in a synchronized layer)."""
    reference = next((t for t in old.state_dict().values() if t.is_floating_point()), None)
    if reference is not None:
        new.to(device=reference.device, dtype=reference.dtype)
    new.load_state_dict(old.state_dict())
    new.train(old.training)
    return new
