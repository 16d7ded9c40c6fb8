"""The two model-file containers, told apart by content, and the header they share — all without torch.

* **v2** (what :func:`~styler.io.modelfile.save_model` writes): a `safetensors <https://huggingface.co/docs/
  safetensors>`_ file. The weights are raw little-endian arrays; the architecture and metadata are JSON strings in
  the header's ``__metadata__``::

      {"format": "styler-model", "format_version": "2", "arch": "<json ArchSpec>", "metadata": "<json>",
       "storage_dtype": "float32" | "float16"}

  Why: the header is plain JSON behind an 8-byte length, so ``styler info`` and the ONNX path read it with the
  ``safetensors`` package and numpy on an install without torch, and nothing in the file can execute.
* **v1** (written by styler ≤ 0.1): a ``torch.save`` archive of the same fields plus ``state_dict``, read only with
  ``weights_only=True``. Reading one needs torch.

Which one a file is comes from its first bytes, never its name (``*.pth`` files may be either). Everything a hostile
or broken file can do is answered here with a :class:`~styler.errors.ModelFileError` saying what is wrong: empty,
random bytes ("not a styler model file"), a header length beyond :data:`MAX_HEADER_BYTES` or beyond the file,
truncated data, JSON that is not an object, offsets the ``safetensors`` library refuses.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from styler.errors import ModelFileError
from styler.io.layout import StoredTensor
from styler.nn.spec import ArchSpec

__all__ = ["MODEL_FORMAT", "MODEL_FORMAT_VERSION", "SAFETENSORS", "TORCH", "MAX_HEADER_BYTES", "ModelHeader",
           "sniff_container", "encode_fields", "decode_fields", "read_safetensors_header"]

MODEL_FORMAT = "styler-model"
CHECKPOINT_FORMAT = "styler-checkpoint"
#: The version save_model writes (safetensors); torch archives are version 1.
MODEL_FORMAT_VERSION = 2
SAFETENSORS: Literal["safetensors"] = "safetensors"
TORCH: Literal["torch"] = "torch"
Container = Literal["safetensors", "torch"]
#: Largest header accepted (a real one is a few kB); bigger claims are refused before anything is read.
MAX_HEADER_BYTES = 16 << 20
_HIGHEST_VERSION = {SAFETENSORS: MODEL_FORMAT_VERSION, TORCH: 1}


@dataclass
class ModelHeader:
    """What a model file declares, read without loading its weights."""

    path: Path
    container: Container
    format_version: int
    arch: ArchSpec
    metadata: dict[str, Any]
    storage_dtype: str
    tensors: dict[str, StoredTensor] = field(default_factory=dict)


def sniff_container(path: str | os.PathLike, what: str = "model file") -> Container:
    """``"safetensors"`` or ``"torch"`` from the first bytes of ``path``; ModelFileError for anything else.

    A torch archive is a zip (``PK\\x03\\x04``) or, from torch < 1.6, a pickle stream (``\\x80`` + protocol 2-5); a
    safetensors file starts with its header length and then ``{``.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{what} not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{what} is a directory, not a file: {path}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError as exc:
        raise ModelFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if not head:
        raise ModelFileError(f"{what} is empty: {path}")
    if head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return TORCH
    if len(head) == 9 and head[8:9] == b"{":
        return SAFETENSORS
    raise ModelFileError(f"cannot read {what} {path}: it is not a styler {what} (neither a safetensors file nor a "
                         "torch archive)")


def encode_fields(arch: ArchSpec, metadata: Mapping[str, Any], storage_dtype: str) -> dict[str, str]:
    """The ``__metadata__`` of a v2 file (safetensors allows only strings there)."""
    return {"format": MODEL_FORMAT, "format_version": str(MODEL_FORMAT_VERSION),
            "arch": json.dumps(arch.to_dict(), sort_keys=True),
            "metadata": json.dumps(dict(metadata), sort_keys=True, default=str),
            "storage_dtype": storage_dtype}


def decode_fields(fields: Mapping[str, Any], path: Path, container: Container,
                  all_tensors: bool = False) -> tuple[ArchSpec, dict[str, Any], str, int]:
    """``(arch, metadata, storage_dtype, format_version)`` from a header's fields (either container).

    ``all_tensors``: the rest of the file is nothing but tensors (a bare state_dict), for a better message.
    """
    fmt = fields.get("format")
    if fmt == CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path} is a training checkpoint, not a model; use `styler train --resume {path}` "
                             "to continue it, or the model file written at the end of training")
    if fmt != MODEL_FORMAT:
        hint = " (it looks like a bare state_dict from another project)" if all_tensors else ""
        raise ModelFileError(f"{path} is not a styler model file{hint}")
    try:
        version = int(fields.get("format_version", 0))
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: damaged model header (format_version {fields.get('format_version')!r})"
                             ) from exc
    if version > _HIGHEST_VERSION[container]:
        raise ModelFileError(f"{path} was written by a newer styler (model format {version}); upgrade styler to "
                             "read it")
    try:
        arch = ArchSpec.from_dict(json.loads(fields["arch"]))
        metadata = json.loads(fields.get("metadata") or "{}")
        storage_dtype = str(fields.get("storage_dtype", "float32"))
    except (KeyError, ValueError, TypeError, RecursionError) as exc:
        raise ModelFileError(f"{path}: damaged model header ({exc})") from exc
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path}: damaged model header (metadata is a {type(metadata).__name__})")
    return arch, metadata, storage_dtype, version


def _raw_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file, after checking its length against the limit and the file."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        if length > MAX_HEADER_BYTES:
            raise ModelFileError(f"cannot read model file {path}: its header claims {length:,} bytes (limit "
                                 f"{MAX_HEADER_BYTES:,}): tampered with, or not a styler model file")
        if 8 + length > size:
            raise ModelFileError(f"cannot read model file {path}: it is truncated (header of {length:,} bytes, "
                                 f"file of {size:,})")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"cannot read model file {path}: damaged safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelFileError(f"cannot read model file {path}: damaged safetensors header (not a JSON object)")
    try:
        end = max((int(entry["data_offsets"][1]) for key, entry in header.items() if key != "__metadata__"),
                  default=0)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ModelFileError(f"cannot read model file {path}: damaged safetensors header (bad data_offsets)"
                             ) from exc
    if 8 + length + end > size:
        raise ModelFileError(f"cannot read model file {path}: it is truncated ({size:,} of "
                             f"{8 + length + end:,} bytes)")
    return header


def _dtype_kind(dtype: str) -> Literal["float", "int", "bool"]:
    if dtype == "BOOL":
        return "bool"
    return "float" if dtype.startswith(("F", "BF")) else "int"


def read_safetensors_header(path: str | os.PathLike) -> ModelHeader:
    """The declared architecture, metadata and tensor shapes of a v2 file, validated by the ``safetensors`` library
    (offsets, dtypes, coverage of the data) without reading the weights and without torch."""
    from safetensors import safe_open

    path = Path(path)
    header = _raw_header(path)
    fields = header.get("__metadata__") or {}
    if not isinstance(fields, dict):
        raise ModelFileError(f"cannot read model file {path}: damaged safetensors header (__metadata__)")
    arch, metadata, storage_dtype, version = decode_fields(fields, path, SAFETENSORS,
                                                           all_tensors=len(header) > (1 if fields else 0))
    tensors: dict[str, StoredTensor] = {}
    try:
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - a safe_open handle, not a dict
                piece = handle.get_slice(key)
                tensors[key] = StoredTensor(tuple(int(d) for d in piece.get_shape()), _dtype_kind(piece.get_dtype()))
    except Exception as exc:  # the library raises SafetensorError (and OSError); both mean the file is unusable
        raise ModelFileError(f"cannot read model file {path}: damaged safetensors file ({exc})") from exc
    return ModelHeader(path, SAFETENSORS, version, arch, metadata, storage_dtype, tensors)
