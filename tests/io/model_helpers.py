"""Helpers shared by the model-file tests: small trained-looking nets, the v1 writer, and v2 header surgery."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from styler.nn.network import ArchSpec, TransformerNet
from styler.nn.norms import NormSpec, SwitchNorm2d

NORM_MODULES = (nn.InstanceNorm2d, nn.GroupNorm, nn.BatchNorm2d, SwitchNorm2d)
_CACHE: dict[tuple[str, int], TransformerNet] = {}


def trained_net(norm: str, width: int = 8) -> TransformerNet:
    """A small net with perturbed γ/β/logits and warmed-up running statistics (a fresh copy per call)."""
    if (norm, width) not in _CACHE:
        _CACHE[norm, width] = _build_trained(norm, width)
    return copy.deepcopy(_CACHE[norm, width])


def _build_trained(norm: str, width: int) -> TransformerNet:
    torch.manual_seed(21)
    net = TransformerNet(ArchSpec(width=width, residual_blocks=1, norm=NormSpec.parse(norm)))
    gen = torch.Generator().manual_seed(22)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, NORM_MODULES) and getattr(module, "weight", None) is not None:
                module.weight.add_(0.3 * torch.randn(module.weight.shape, generator=gen))
                module.bias.add_(0.2 * torch.randn(module.bias.shape, generator=gen))
            if isinstance(module, SwitchNorm2d):
                module.mean_logits.add_(torch.randn(module.mean_logits.shape, generator=gen))
                module.var_logits.add_(torch.randn(module.var_logits.shape, generator=gen))
        net.train()
        for _ in range(20):
            net(torch.rand(2, 3, 16, 16, generator=gen))
    return net.eval()


def probe() -> torch.Tensor:
    return torch.rand(2, 3, 28, 36, generator=torch.Generator().manual_seed(23))


def save_v1(path: Path, net: TransformerNet, metadata: dict[str, Any] | None = None, half: bool = False) -> Path:
    """A v1 model file exactly as styler 0.1's ``save_model`` wrote it (a ``torch.save`` archive of plain data)."""
    import styler

    meta = dict(metadata or {})
    meta.setdefault("styler_version", styler.__version__)
    meta.setdefault("torch_version", torch.__version__.split("+")[0])
    state = {}
    for key, value in net.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point() and key.endswith((".weight", ".bias", "_logits")):
            value = value.half()
        state[key] = value.clone()
    payload = {"format": "styler-model", "format_version": 1, "arch": json.dumps(net.arch.to_dict(), sort_keys=True),
               "metadata": json.dumps(meta, sort_keys=True, default=str),
               "storage_dtype": "float16" if half else "float32", "state_dict": state}
    torch.save(payload, path)
    return path


def read_v2(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    """The ``__metadata__`` fields and the tensors of a v2 file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        fields = dict(handle.metadata() or {})
    return fields, load_file(str(path))


def write_v2(path: Path, fields: dict[str, str], tensors: dict[str, torch.Tensor]) -> Path:
    """A safetensors file with exactly these header fields and tensors (for tampering with a good file)."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=fields)
    return path


def edit_v2(source: Path, target: Path, arch_dict: dict[str, Any] | None = None, **fields: str) -> Path:
    """``source`` rewritten to ``target`` with its architecture (``arch_dict``) and/or raw header fields replaced."""
    header, tensors = read_v2(source)
    if arch_dict is not None:
        header["arch"] = json.dumps(arch_dict)
    header.update(fields)
    return write_v2(target, header, tensors)
