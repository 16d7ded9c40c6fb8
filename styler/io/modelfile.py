"""Self-describing model files: weights plus everything needed to rebuild and explain the network.

:func:`save_model` always writes format v2, a safetensors file whose header carries the architecture and metadata
(:mod:`styler.io.modelformat`), whatever the file is called. :func:`load_model` and :func:`read_model_info` accept v2
and the v1 ``torch.save`` archives of earlier releases (loaded with ``weights_only=True``, exactly as before); which
one a file is comes from its content. No file can run code: safetensors holds only arrays and JSON, and v1 archives
go through torch's restricted unpickler.

``load_model`` rebuilds the exact :class:`~styler.nn.network.TransformerNet` from the header and loads the weights
with a strict key/shape check made from the architecture before any network is built
(:func:`styler.io.layout.check_tensors`), so a truncated, foreign, mismatched or tampered file fails with a message
instead of a half-loaded (or absurdly large) network. Legacy instance-norm ``running_*`` keys (pre-0.4 Torch
checkpoints) are dropped and reported. ``read_model_info`` on a v2 file needs neither torch nor the weights' data.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styler.errors import ModelFileError
from styler.extras import has_torch, install_hint
from styler.io.files import atomic_write_bytes, sha256_file
from styler.io.layout import StoredTensor, check_tensors, parameter_count
from styler.io.modelformat import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    SAFETENSORS,
    ModelHeader,
    decode_fields,
    encode_fields,
    read_safetensors_header,
    sniff_container,
)
from styler.nn.spec import ArchSpec

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from styler.nn.network import TransformerNet

__all__ = ["LoadedModel", "MODEL_FORMAT", "MODEL_FORMAT_VERSION", "save_model", "load_model", "read_model_info",
           "read_header", "strip_legacy_norm_keys"]

#: Parameters stored in fp16 by ``half=True`` (buffers such as running statistics and counters keep their dtype).
_HALF_SUFFIXES = (".weight", ".bias", "_logits")


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
        """The model's name as a file-name-safe token: it comes from the file and ends up in output names."""
        from styler.io.names import safe_name

        return safe_name(self.metadata.get("name") or (self.path.stem if self.path else "model"))


def save_model(path: str | os.PathLike, net: TransformerNet, metadata: dict[str, Any] | None = None,
               half: bool = False) -> Path:
    """Write ``net`` and ``metadata`` atomically as a v2 (safetensors) model file, whatever ``path`` is called.

    ``half=True`` stores fp16 weights (buffers such as BN's running statistics and counters keep their dtype);
    loading always returns an fp32 network.
    """
    import torch
    from safetensors.torch import save

    import styler

    meta = dict(metadata or {})
    meta.setdefault("styler_version", styler.__version__)
    meta.setdefault("torch_version", torch.__version__.split("+")[0])
    state: dict[str, torch.Tensor] = {}
    for key, value in net.state_dict().items():
        value = value.detach().cpu()
        if half and value.is_floating_point() and key.endswith(_HALF_SUFFIXES):
            value = value.half()
        state[key] = value.contiguous().clone()  # safetensors refuses tensors that share storage
    data = save(state, metadata=encode_fields(net.arch, meta, "float16" if half else "float32"))
    return atomic_write_bytes(path, data)


def strip_legacy_norm_keys(state: dict[str, torch.Tensor], net: nn.Module) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Drop ``running_*``/``num_batches_tracked`` keys that belong to instance-norm modules of ``net``.

    Old Torch (< 0.4) instance norms tracked running statistics; modern ones have no buffers, so a strict load would
    fail on those keys. They are meaningless for instance norm, so dropping them loses nothing.
    """
    from torch import nn

    instance_modules = {name for name, module in net.named_modules() if isinstance(module, nn.InstanceNorm2d)}
    kept, dropped = {}, []
    for key, value in state.items():
        match = _LEGACY_NORM_KEY.search(key)
        if match and key[: match.start()] in instance_modules:
            dropped.append(key)
        else:
            kept[key] = value
    return kept, dropped


_LEGACY_NORM_KEY = re.compile(r"\.(running_mean|running_var|num_batches_tracked)$")


def _torch_payload(path: Path) -> tuple[ModelHeader, dict[str, torch.Tensor]]:
    """Header and weights of a v1 torch archive (``weights_only`` load; needs torch)."""
    if not has_torch():
        raise ModelFileError(f"{path} is a v1 model file (a torch archive): " + install_hint("reading it", ["torch"])
                             + " (or convert it to v2 where torch is installed: load_model, then save_model)")
    import torch

    from styler.io.torchfiles import safe_torch_load

    data = safe_torch_load(path, "model file")
    if not isinstance(data, dict):
        raise ModelFileError(f"{path} is not a styler model (it holds a {type(data).__name__})")
    arch, metadata, storage_dtype, version = decode_fields(
        data, path, "torch", all_tensors=all(isinstance(v, torch.Tensor) for v in data.values()))
    state = data.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path}: damaged model file (no state_dict)")
    tensors = {key: StoredTensor(tuple(value.shape), "bool" if value.dtype == torch.bool else
                                 "float" if value.is_floating_point() else "int") for key, value in state.items()}
    return ModelHeader(path, "torch", version, arch, metadata, storage_dtype, tensors), state


def read_header(path: str | os.PathLike) -> ModelHeader:
    """What a model file declares, with its tensors checked against the declared network; torch-free for v2."""
    path = Path(path)
    if sniff_container(path) == SAFETENSORS:
        header = read_safetensors_header(path)
    else:
        header, _ = _torch_payload(path)
    check_tensors(header.arch, header.tensors, str(path))
    return header


def _load_state(path: Path) -> tuple[ModelHeader, dict[str, torch.Tensor]]:
    if sniff_container(path) != SAFETENSORS:
        return _torch_payload(path)
    from safetensors.torch import load_file

    header = read_safetensors_header(path)
    try:
        return header, load_file(str(path))
    except Exception as exc:  # SafetensorError or OSError: the data part is unusable
        raise ModelFileError(f"cannot read model file {path}: damaged safetensors file ({exc})") from exc


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the network described by a model file (v1 or v2) and load its weights (fp32, eval mode)."""
    from styler.extras import require_torch

    path = Path(path)
    sniff_container(path)  # a missing, empty or foreign file is the first thing to say, torch or not
    require_torch("loading a model into a torch network")
    from styler.nn.network import TransformerNet

    header, state = _load_state(path)
    dropped = check_tensors(header.arch, header.tensors, str(path))  # before building: refuses absurd headers
    net = TransformerNet(header.arch)
    state = {key: value for key, value in state.items() if key not in dropped}
    expected = net.state_dict()
    converted = {k: (v.to(expected[k].dtype) if v.is_floating_point() else v) for k, v in state.items()}
    try:
        net.load_state_dict(converted, strict=True)
    except RuntimeError as exc:  # only if styler.io.layout disagrees with the network (a bug, tested against)
        raise ModelFileError(f"{path}: weights do not match the network: {str(exc).splitlines()[0]}") from exc
    net.eval().to(device)
    return LoadedModel(net=net, arch=header.arch, metadata=header.metadata, path=path, dropped_keys=dropped)


def read_model_info(path: str | os.PathLike) -> dict[str, Any]:
    """Metadata of a model file plus file size and sha256; the weights are checked against the declared network.

    Torch-free for v2 files (the header and the tensor table are enough); v1 files need torch to be read at all.
    """
    header = read_header(path)
    path = Path(path)
    return {
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "format_version": header.format_version,
        "storage_dtype": header.storage_dtype,
        "parameters": parameter_count(header.arch),
        "arch": header.arch.to_dict(),
        "inference_statistics": header.arch.norm.inference_statistics,
        "metadata": header.metadata,
    }
