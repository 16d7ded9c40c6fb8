"""Self-describing model files: weights plus everything needed to rebuild and explain the network.

A model file is a ``torch.save`` archive of plain data, loadable with ``weights_only=True`` (no code runs)::

    {"format": "styler-model", "format_version": 1,
     "arch": "<json ArchSpec: width, residual blocks, norm and its options>",
     "metadata": "<json: style, training settings, loss network identity, versions, losses, ...>",
     "storage_dtype": "float32" | "float16",
     "state_dict": {...}}

``load_model`` rebuilds the exact :class:`~styler.nn.network.TransformerNet` from ``arch`` and loads the weights with a
strict key/shape check, so a truncated, foreign or mismatched file fails with a message instead of a half-loaded
network. Legacy instance-norm ``running_*`` keys (pre-0.4 Torch checkpoints) are dropped and reported.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from styler.io.torchfiles import atomic_torch_save, safe_torch_load
from styler.errors import ModelFileError
from styler.io.files import sha256_file
from styler.nn.network import ArchSpec, TransformerNet

__all__ = ["LoadedModel", "MODEL_FORMAT", "save_model", "load_model", "read_model_info", "strip_legacy_norm_keys"]

MODEL_FORMAT = "styler-model"
MODEL_FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A rebuilt network with its architecture and metadata."""

    net: TransformerNet
    arch: ArchSpec
    metadata: dict[str, Any]
    path: Path | None = None
    dropped_keys: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.metadata.get("name") or (self.path.stem if self.path else "model")


def save_model(path: str | os.PathLike, net: TransformerNet, metadata: dict[str, Any] | None = None,
               half: bool = False) -> Path:
    """Write ``net`` and ``metadata`` atomically. ``half=True`` stores fp16 weights (buffers such as BN's running
    statistics and counters keep their dtype); loading always returns an fp32 network."""
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
    payload = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "arch": json.dumps(net.arch.to_dict(), sort_keys=True),
        "metadata": json.dumps(meta, sort_keys=True, default=str),
        "storage_dtype": "float16" if half else "float32",
        "state_dict": state,
    }
    path = Path(path)
    atomic_torch_save(payload, path)
    return path


_LEGACY_NORM_KEY = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")


def strip_legacy_norm_keys(state: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Drop ``running_*``/``num_batches_tracked`` keys that belong to instance-norm modules of ``net``.

    Old Torch (< 0.4) instance norms tracked running statistics; modern ones have no buffers, so a strict load would
    fail on those keys. They are meaningless for instance norm, so dropping them loses nothing.
    """
    instance_modules = {name for name, module in net.named_modules() if isinstance(module, nn.InstanceNorm2d)}
    kept, dropped = {}, []
    for key, value in state.items():
        match = _LEGACY_NORM_KEY.search(key)
        if match and key[: match.start()] in instance_modules:
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


def _parse_payload(data: Any, path: Path) -> tuple[ArchSpec, dict[str, Any], dict[str, torch.Tensor]]:
    if not isinstance(data, dict):
        raise ModelFileError(f"{path} is not a styler model (it holds a {type(data).__name__})")
    fmt = data.get("format")
    if fmt == "styler-checkpoint":
        raise ModelFileError(f"{path} is a training checkpoint, not a model; use `styler train --resume {path}` "
                             "to continue it, or the model file written at the end of training")
    if fmt != MODEL_FORMAT:
        hint = " (it looks like a bare state_dict from another project)" if all(
            isinstance(v, torch.Tensor) for v in data.values()) else ""
        raise ModelFileError(f"{path} is not a styler model file{hint}")
    if int(data.get("format_version", 0)) > MODEL_FORMAT_VERSION:
        raise ModelFileError(f"{path} was written by a newer styler (model format {data['format_version']}); "
                             "upgrade styler to read it")
    try:
        arch = ArchSpec.from_dict(json.loads(data["arch"]))
        metadata = json.loads(data.get("metadata") or "{}")
        state = data["state_dict"]
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: damaged model header ({exc})") from exc
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: damaged model file (no state_dict)")
    return arch, metadata, state


def _matched_network(arch: ArchSpec, state: dict[str, torch.Tensor], path: Path
                     ) -> tuple[TransformerNet, dict[str, torch.Tensor], list[str]]:
    """Build the declared network and check ``state`` against it key by key and shape by shape."""
    net = TransformerNet(arch)
    state, dropped = strip_legacy_norm_keys(state, net)
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"shape mismatch: {wrong[0]}")
        raise ModelFileError(f"{path}: weights do not match the architecture it declares "
                             f"({arch.norm.kind} norm, width {arch.width}): " + "; ".join(parts))
    converted = {k: (v.to(expected[k].dtype) if v.is_floating_point() else v) for k, v in state.items()}
    return net, converted, dropped


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the network described by a model file and load its weights (fp32, eval mode)."""
    path = Path(path)
    arch, metadata, state = _parse_payload(safe_torch_load(path, "model file"), path)
    net, state, dropped = _matched_network(arch, state, path)
    net.load_state_dict(state, strict=True)
    net.eval().to(device)
    return LoadedModel(net=net, arch=arch, metadata=metadata, path=path, dropped_keys=dropped)


def read_model_info(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of a model file plus file size and sha256; the weights are checked against the declared network."""
    path = Path(path)
    data = safe_torch_load(path, "model file")
    arch, metadata, state = _parse_payload(data, path)
    net, _, _ = _matched_network(arch, state, path)
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "storage_dtype": data.get("storage_dtype", "float32"),
        "parameters": sum(p.numel() for p in net.parameters()),
        "arch": arch.to_dict(),
        "inference_statistics": arch.norm.inference_statistics,
        "metadata": metadata,
    }
