"""The frozen VGG16 loss network: named feature taps, two weight sources, and a load-time self-check.

Two weight sources are supported, because they need different input conventions and different loss weights:

* ``file``: a local ``state_dict`` of ``torchvision.models.vgg16().features`` (keys ``0.weight`` … ``28.bias``) with
  a declared input convention. The original Oxford/Caffe VGG16 weights (the reference material ships them as
  ``vgg16-imagenet-caffe-features.pth``) expect **BGR, 0–255, minus the per-channel mean** and no std division.
  Files in the Caffe convention are verified against published probe values before use: a wrong file gives wrong
  features without any error, so styler refuses to train on it.
* ``torchvision``: ``VGG16_Weights.IMAGENET1K_V1`` (RGB in [0, 1], ImageNet mean/std normalization), downloaded by
  torchvision into the torch hub cache on first use.

The network is built here from the VGG16 configuration (no torchvision import is needed for the ``file`` source)
and truncated after the deepest tap that the loss needs: layers past it would be pure wasted work.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from styler.errors import WeightsError
from styler.io.files import sha256_file
from styler.loss.taps import TAP_INDICES, unknown_taps

__all__ = ["LossNetSpec", "VGG16Features", "TAP_INDICES", "resolve_lossnet_spec", "sha256_file"]

#: VGG16 ``features`` configuration: channel counts and "M" for max-pool.
_VGG16_CONFIG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                                  512, 512, 512, "M"]

#: File sha256 of the Caffe VGG16 features file in the reference material.
CAFFE_VGG16_SHA256 = "927a3f71c53ade9eb7f6b1e9efde3fd62f764de089703baf4964c796d33bbed9"

#: Published values of the Caffe/Keras VGG16 weights: (key, index, expected). Tolerance 1e-6.
CAFFE_VGG16_PROBES: list[tuple[str, tuple, float]] = [
    ("0.weight", (0, 0, 0, 0), 0.42947057),
    ("0.bias", (0,), 0.73429835), ("0.bias", (1,), 0.093403675), ("0.bias", (2,), 0.06775674),
    ("0.bias", (3,), 0.8862966), ("0.bias", (25,), 0.7446502),
    ("2.weight", (63, 63, 2, 2), 0.016082443),
    ("5.bias", (1,), 0.06440781),
    ("24.weight", (269, 63, 1, 0), -0.011236359),
    ("26.bias", (510,), 0.23517226),
    ("28.weight", (400, 0, 0, 2), -0.008714244),
]

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)

ENV_WEIGHTS = "STYLER_VGG_WEIGHTS"
ENV_CONVENTION = "STYLER_VGG_CONVENTION"

HOW_TO_PROVIDE = (
    "Provide the VGG16 loss-network weights in one of these ways:\n"
    "  * a local file: --vgg-weights PATH (or the environment variable STYLER_VGG_WEIGHTS=PATH), a state_dict of\n"
    "    torchvision.models.vgg16().features; declare its input convention with --vgg-convention caffe|torchvision\n"
    "    (or STYLER_VGG_CONVENTION); the Oxford/Caffe file vgg16-imagenet-caffe-features.pth is 'caffe';\n"
    "  * torchvision's VGG16_Weights.IMAGENET1K_V1: --vgg-source torchvision, on a machine with internet access\n"
    "    (downloaded once into the torch hub cache, $TORCH_HOME/hub/checkpoints)."
)


@dataclass(frozen=True)
class LossNetSpec:
    """Identity of a loss network, recorded in every trained model.

    Attributes:
        source: ``"file"`` or ``"torchvision"``.
        convention: input convention, ``"caffe"`` or ``"torchvision"``.
        path: the weights file (source ``file`` only).
        sha256: file checksum, filled in when the file is loaded.
    """

    source: str = "file"
    convention: str = "caffe"
    path: str | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        if self.source not in ("file", "torchvision"):
            raise WeightsError(f"unknown loss-network source {self.source!r}; use 'file' or 'torchvision'")
        if self.convention not in ("caffe", "torchvision"):
            raise WeightsError(f"unknown VGG input convention {self.convention!r}; use 'caffe' or 'torchvision'")

    @property
    def name(self) -> str:
        return "vgg16-caffe" if self.convention == "caffe" else "vgg16-torchvision"

    def describe(self) -> dict:
        """Metadata for model files: what produced the features, not where the file lived."""
        return {"name": self.name, "source": self.source, "convention": self.convention,
                "file": Path(self.path).name if self.path else None, "sha256": self.sha256}


def resolve_lossnet_spec(source: str = "auto", weights: str | None = None,
                         convention: str | None = None) -> LossNetSpec:
    """Decide where the VGG16 weights come from: explicit flag, then ``$STYLER_VGG_WEIGHTS``, then torchvision.

    ``source="auto"`` uses a local file when one is given (argument or environment) and torchvision otherwise.
    """
    weights = weights or os.environ.get(ENV_WEIGHTS) or None
    if source == "auto":
        source = "file" if weights else "torchvision"
    if source == "file":
        if not weights:
            raise WeightsError("--vgg-source file needs a weights file.\n" + HOW_TO_PROVIDE)
        convention = convention or os.environ.get(ENV_CONVENTION) or "caffe"
        return LossNetSpec(source="file", convention=convention, path=str(weights))
    if source == "torchvision":
        return LossNetSpec(source="torchvision", convention="torchvision")
    raise WeightsError(f"unknown --vgg-source {source!r}; use auto, file or torchvision")


def _build_layers(last_index: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG16_CONFIG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
        if len(layers) > last_index:
            break
    return nn.Sequential(*layers[: last_index + 1])


def _expected_shapes() -> dict[str, tuple[int, ...]]:
    full = _build_layers(len(_VGG16_CONFIG) * 2)
    return {k: tuple(v.shape) for k, v in full.state_dict().items()}


def _check_caffe_probes(state: dict[str, torch.Tensor], path: str) -> None:
    for key, index, expected in CAFFE_VGG16_PROBES:
        actual = float(state[key][index])
        if abs(actual - expected) > 1e-6:
            raise WeightsError(
                f"{path}: self-check failed: {key}{list(index)} = {actual:.9g}, expected {expected:.9g}. "
                "This is not the Oxford/Caffe VGG16 file (or it is corrupted); refusing to use it as the loss "
                "network. If the file holds torchvision-convention weights, pass --vgg-convention torchvision.")


#: What a ``--vgg-weights`` file must be, for messages about files that are not.
EXPECTED_FILE = ("a VGG16 features state_dict saved with torch.save (keys 0.weight … 28.bias of "
                 "torchvision.models.vgg16().features), in the Caffe or torchvision convention (--vgg-convention)")


def _what_file_is(path: str, exc: Exception) -> str:
    """One line on what a file that ``torch.load(weights_only=True)`` refused actually is.

    Why not torch's own message: it spans many lines and advises ``weights_only=False``, which would let the file
    run arbitrary code; a weights file never needs that, and styler never suggests it.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
    except OSError as err:
        return f"it cannot be read ({err.strerror or err})"
    text = str(exc)
    if not head:
        return "the file is empty"
    if head.startswith(b"PK\x03\x04"):
        if "weights_only" in text or "Unpickl" in type(exc).__name__:
            return ("a torch archive holding Python objects beyond tensors and plain data (not loaded: they could "
                    "run code)")
        return "a zip archive that is not a complete torch file (truncated or corrupted?)"
    if head[:1] == b"\x80" and head[1:2] in bytes(range(2, 6)):
        if "weights_only" in text or "Unpickl" in type(exc).__name__:
            return "a Python pickle with objects beyond tensors and plain data (not loaded: it could run code)"
        return "a Python pickle that is truncated or not a state_dict"
    if len(head) >= 9 and head[8:9] == b"{":
        return "a safetensors file (styler reads VGG16 weights from torch .pth files)"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")):
        return "an image"
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "a text file"
    return "not a torch file (unrecognised content)"


def load_vgg16_state(spec: LossNetSpec) -> tuple[dict[str, torch.Tensor], LossNetSpec]:
    """Load and verify the full ``features`` state dict for ``spec``; returns it and the spec with sha256 filled."""
    if spec.source == "torchvision":
        try:
            from torchvision.models import VGG16_Weights, vgg16
        except ImportError as exc:  # pragma: no cover - torchvision is a dependency
            raise WeightsError(f"torchvision is not importable ({exc}).\n" + HOW_TO_PROVIDE) from exc
        try:
            model = vgg16(weights=VGG16_Weights.IMAGENET1K_V1)
        except Exception as exc:  # network errors come in many types (URLError, OSError, RuntimeError)
            raise WeightsError(
                f"could not obtain torchvision's VGG16 weights ({type(exc).__name__}: {exc}).\n" + HOW_TO_PROVIDE
            ) from exc
        return {k: v.detach().clone() for k, v in model.features.state_dict().items()}, spec

    assert spec.path is not None
    path = spec.path
    if not os.path.isfile(path):
        raise WeightsError(f"VGG16 weights file not found: {path}\n" + HOW_TO_PROVIDE)
    try:
        with warnings.catch_warnings():  # torch's advice about pickle protocols is not for the user of a weights file
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{path}: not a readable torch weights file: {_what_file_is(path, exc)}; expected "
                           f"{EXPECTED_FILE}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state_dict of vgg16().features, got {type(state).__name__}")
    # Accept a whole-vgg16 state dict too, by taking its features.* entries.
    if any(k.startswith("features.") for k in state):
        state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
    expected = _expected_shapes()
    missing = sorted(set(expected) - set(state), key=lambda k: int(k.split(".")[0]))
    wrong = [f"{k}: {tuple(state[k].shape)} != {shape}" for k, shape in expected.items()
             if k in state and tuple(state[k].shape) != shape]
    if missing or wrong:
        details = (f"missing keys {missing[:6]}{'…' if len(missing) > 6 else ''}; " if missing else "") + \
                  (f"wrong shapes {wrong[:3]}" if wrong else "")
        raise WeightsError(f"{path}: not a VGG16 features state_dict ({details})")
    state = {k: state[k].float() for k in expected}
    if spec.convention == "caffe":
        _check_caffe_probes(state, path)
    return state, LossNetSpec(spec.source, spec.convention, spec.path, sha256_file(path))


class VGG16Features(nn.Module):
    """Frozen VGG16 truncated after the deepest requested tap; returns ``{tap: activation}``.

    Input is RGB in [0, 1]; the module converts it to the weights' convention itself, so callers never have to know
    which source they got. ``forward(x, taps=...)`` can stop early at a shallower tap (e.g. the content target,
    which only needs relu3_3), saving the deeper layers.
    """

    scale: torch.Tensor
    offset: torch.Tensor

    def __init__(self, state: dict[str, torch.Tensor], convention: str, taps: Iterable[str]) -> None:
        super().__init__()
        self.taps = tuple(dict.fromkeys(taps))
        unknown = unknown_taps(self.taps)
        if unknown:
            raise ValueError(f"unknown VGG16 taps {unknown}; known: {', '.join(TAP_INDICES)}")
        if not self.taps:
            raise ValueError("at least one VGG16 tap is needed")
        self.convention = convention
        last = max(TAP_INDICES[t] for t in self.taps)
        self.layers = _build_layers(last)
        self.layers.load_state_dict({k: v for k, v in state.items() if int(k.split(".")[0]) <= last}, strict=True)
        if convention == "caffe":
            # Output channel c of the conversion reads input channel perm[c] (RGB → BGR), scales by 255, subtracts.
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0))
            self.register_buffer("offset", -torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
            self.channel_order = [2, 1, 0]
        else:
            std = torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1)
            self.register_buffer("scale", 1.0 / std)
            self.register_buffer("offset", -torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1) / std)
            self.channel_order = [0, 1, 2]
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG16Features:
        # VGG16 has no norm layers; keep it permanently in eval for consistency.
        return super().train(False)

    @property
    def dtype(self) -> torch.dtype:
        """Compute dtype of the conv layers: fp32, or bf16 after ``layers.to(torch.bfloat16)`` (the network is frozen,
        so casting it once saves autocast from re-casting 15 M weights on every call: 1.5x faster bf16 training
        steps). The input conversion (scale, mean) stays in fp32."""
        first = self.layers[0]
        assert isinstance(first, nn.Conv2d)
        return first.weight.dtype

    def preprocess(self, rgb01: torch.Tensor) -> torch.Tensor:
        x = rgb01[:, self.channel_order] if self.channel_order != [0, 1, 2] else rgb01
        return x * self.scale + self.offset

    def forward(self, rgb01: torch.Tensor, taps: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = tuple(taps) if taps is not None else self.taps
        stop = max(TAP_INDICES[t] for t in wanted)
        index_to_tap = {TAP_INDICES[t]: t for t in wanted}
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(rgb01)
        x = x.to(self.dtype)  # a loss network cast to bf16 for fast training takes fp32 images too
        for index, layer in enumerate(self.layers):
            if index > stop:
                break
            x = layer(x)
            if index in index_to_tap:
                out[index_to_tap[index]] = x
        return out

    @classmethod
    def load(cls, spec: LossNetSpec, taps: Iterable[str]) -> tuple[VGG16Features, LossNetSpec]:
        """Load weights for ``spec`` (verifying them) and build the truncated network."""
        state, spec = load_vgg16_state(spec)
        return cls(state, spec.convention, taps), spec
