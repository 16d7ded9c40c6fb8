"""styler: fast neural style transfer with a pluggable normalization layer.

The public Python API is small and typed; heavy modules (torch, torchvision) load only when a name that needs them
is used, so ``import styler`` and ``styler --help`` stay fast::

    from styler import load_model, stylize_image
    model = load_model("starry_night.safetensors")   # or a v1 .pth file; needs the train extra (torch)
    out = stylize_image("starry_night_in", "photo.jpg", backend="onnx")  # a PIL image; a bundled model needs no torch

``__version__`` below is the package's only version number: ``pyproject.toml`` reads it (setuptools dynamic
version), and model files record it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily on first access)
_LAZY = {
    "NormSpec": "styler.nn.norms",
    "make_norm": "styler.nn.norms",
    "SwitchNorm2d": "styler.nn.norms",
    "ArchSpec": "styler.nn.network",
    "TransformerNet": "styler.nn.network",
    "LossNetSpec": "styler.loss.lossnet",
    "VGG16Features": "styler.loss.lossnet",
    "LossWeights": "styler.loss.losses",
    "PerceptualLoss": "styler.loss.losses",
    "save_model": "styler.io.modelfile",
    "load_model": "styler.io.modelfile",
    "read_model_info": "styler.io.modelfile",
    "StylerError": "styler.errors",
    "Stylizer": "styler.infer.stylizer",
    "StylizeOptions": "styler.infer.options",
    "stylize_image": "styler.infer.stylizer",
    "find_model": "styler.io.zoo",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'styler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
