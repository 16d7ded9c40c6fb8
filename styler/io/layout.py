"""The tensors a :class:`~styler.nn.network.TransformerNet` of a given architecture holds, computed without torch.

Why: a model file declares its architecture and holds its weights; the two must agree before anything is built.
Checking them from the architecture alone lets ``styler info`` verify a file on the apply-only install (no torch),
and lets :func:`~styler.io.modelfile.load_model` refuse a tampered header (say, width 10⁶) before allocating a
network for it. This mirrors ``TransformerNet(arch).state_dict()`` name by name, shape by shape, in the same
order; ``tests/io/test_layout.py`` compares the two for every registered norm kind, so they cannot drift apart (a
new norm kind needs one entry in :data:`_NORM_TENSORS`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from styler.errors import ModelFileError
from styler.nn.spec import ArchSpec, NormSpec

__all__ = ["TensorSpec", "StoredTensor", "expected_tensors", "legacy_norm_keys", "parameter_count", "check_tensors",
           "LIMITS"]

Kind = Literal["float", "int", "bool"]

#: Bounds no real network reaches (the paper's net: width 32, 5 blocks); beyond them a header is damaged or hostile.
LIMITS = {"width": 1024, "residual_blocks": 64, "num_styles": 4096}


@dataclass(frozen=True)
class TensorSpec:
    """One tensor the network expects: its shape, the kind of dtype it needs, and whether it is a parameter."""

    shape: tuple[int, ...]
    kind: Kind = "float"
    parameter: bool = True


@dataclass(frozen=True)
class StoredTensor:
    """One tensor as a file stores it: shape and kind of dtype (read from a header, no data needed)."""

    shape: tuple[int, ...]
    kind: Kind


def _affine(c: int) -> dict[str, TensorSpec]:
    return {"weight": TensorSpec((c,)), "bias": TensorSpec((c,))}


def _running(c: int) -> dict[str, TensorSpec]:
    return {"running_mean": TensorSpec((c,), parameter=False), "running_var": TensorSpec((c,), parameter=False),
            "num_batches_tracked": TensorSpec((), "int", parameter=False)}


def _switchable(spec: NormSpec, c: int) -> dict[str, TensorSpec]:
    branches = 3 if spec.using_bn else 2
    out = {**_affine(c), "mean_logits": TensorSpec((branches,)), "var_logits": TensorSpec((branches,))}
    if spec.using_bn:
        out.update(_running(c))
        if not spec.using_moving_average:
            out.update({"batch_mean_sum": TensorSpec((c,), parameter=False),
                        "batch_sq_sum": TensorSpec((c,), parameter=False),
                        "batch_count": TensorSpec((), "int", parameter=False),
                        "finalized": TensorSpec((), "bool", parameter=False)})
    return out


#: norm kind -> the tensors of one such layer over ``c`` channels (suffixes after ``<layer>.norm.``).
_NORM_TENSORS: dict[str, Callable[[NormSpec, int], dict[str, TensorSpec]]] = {
    "instance": lambda spec, c: _affine(c),
    "group": lambda spec, c: _affine(c),
    "layer": lambda spec, c: _affine(c),
    "batch": lambda spec, c: {**_affine(c), **_running(c)},
    "switchable": _switchable,
    "conditional": lambda spec, c: {"weight": TensorSpec((spec.num_styles, c)),
                                    "bias": TensorSpec((spec.num_styles, c))},
    "none": lambda spec, c: {},
}

_LEGACY_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def _layers(arch: ArchSpec) -> list[tuple[str, int, int, int, bool]]:
    """``(prefix, in channels, out channels, kernel, normalized)`` for every conv layer, in module order."""
    c1, c2, c3 = arch.channels
    layers = [("encoder.0", 3, c1, 9, True), ("encoder.1", c1, c2, 3, True), ("encoder.2", c2, c3, 3, True)]
    for i in range(arch.residual_blocks):
        layers += [(f"residuals.{i}.block.0", c3, c3, 3, True), (f"residuals.{i}.block.1", c3, c3, 3, True)]
    layers += [("decoder.0", c3, c2, 3, True), ("decoder.1", c2, c1, 3, True), ("decoder.2", c1, 3, 9, False)]
    return layers


def _check_plausible(arch: ArchSpec) -> None:
    values = {"width": arch.width, "residual_blocks": arch.residual_blocks, "num_styles": arch.norm.num_styles}
    for name, value in values.items():
        if value > LIMITS[name]:
            raise ModelFileError(f"implausible architecture ({name} {value} > {LIMITS[name]}): the header is damaged "
                                 "or was tampered with")
    try:
        arch.validate()
    except ValueError as exc:
        raise ModelFileError(f"inconsistent architecture: {exc}") from exc


def expected_tensors(arch: ArchSpec) -> dict[str, TensorSpec]:
    """Every state_dict entry of ``TransformerNet(arch)``, in its order."""
    if arch.norm.kind not in _NORM_TENSORS:
        raise ValueError(f"no tensor layout for norm kind {arch.norm.kind!r} (add it to styler.io.layout)")
    out: dict[str, TensorSpec] = {}
    for prefix, cin, cout, kernel, normalized in _layers(arch):
        out[f"{prefix}.conv.weight"] = TensorSpec((cout, cin, kernel, kernel))
        out[f"{prefix}.conv.bias"] = TensorSpec((cout,))
        if normalized:
            for suffix, spec in _NORM_TENSORS[arch.norm.kind](arch.norm, cout).items():
                out[f"{prefix}.norm.{suffix}"] = spec
    return out


def legacy_norm_keys(arch: ArchSpec) -> set[str]:
    """Running-statistics keys pre-0.4 Torch instance norms carried, which modern ones lack (dropped on load)."""
    if arch.norm.kind != "instance":
        return set()
    return {f"{prefix}.norm.{suffix}" for prefix, _, _, _, normalized in _layers(arch) if normalized
            for suffix in _LEGACY_SUFFIXES}


def parameter_count(arch: ArchSpec) -> int:
    """Number of parameters (buffers excluded), as :func:`styler.nn.network.count_parameters` counts them."""
    total = 0
    for spec in expected_tensors(arch).values():
        if spec.parameter:
            count = 1
            for dim in spec.shape:
                count *= dim
            total += count
    return total


def check_tensors(arch: ArchSpec, stored: Mapping[str, StoredTensor], where: str) -> list[str]:
    """Check a file's tensors against the network its header declares; returns the legacy keys to drop.

    Raises :class:`ModelFileError` naming ``where`` (the file) with what is missing, unexpected or mis-shaped.
    """
    _check_plausible(arch)
    expected = expected_tensors(arch)
    legacy = legacy_norm_keys(arch)
    dropped = [key for key in stored if key in legacy and key not in expected]
    present = {key: value for key, value in stored.items() if key not in dropped}
    missing = [key for key in expected if key not in present]
    unexpected = [key for key in present if key not in expected]
    wrong = [f"{key} {present[key].shape} vs {spec.shape}" for key, spec in expected.items()
             if key in present and present[key].shape != spec.shape]
    kinds = [f"{key} holds {present[key].kind} data, expected {spec.kind}" for key, spec in expected.items()
             if key in present and present[key].kind != spec.kind]
    if missing or unexpected or wrong or kinds:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        if wrong:
            parts.append(f"shape mismatch: {wrong[0]}")
        if kinds:
            parts.append(f"dtype mismatch: {kinds[0]}")
        raise ModelFileError(f"{where}: weights do not match the architecture it declares "
                             f"({arch.norm.kind} norm, width {arch.width}): " + "; ".join(parts))
    return dropped
