"""Which optional parts of styler this install has, and the one sentence that says how to add the missing ones.

Why a module of its own: ``pip install styler`` is the apply-only install (Pillow, numpy, ONNX Runtime,
safetensors; tens of MB), and ``pip install 'styler[train]'`` adds PyTorch, torchvision, matplotlib and onnx
(gigabytes). Everything that needs the second set asks here first, so every such message names the same command
and no user ever sees a ``ModuleNotFoundError`` traceback. The checks use :func:`importlib.util.find_spec`, which
finds a package without importing it (torch takes ~2 s to import).
"""

from __future__ import annotations

import importlib.util
import sys

from styler.errors import StylerError

__all__ = ["TRAIN_EXTRA", "TRAIN_MODULES", "INSTALL_TRAIN", "MissingExtraError", "has_module", "missing_modules",
           "has_torch", "require_torch", "install_hint"]

#: The extra that adds training, evaluation and ONNX export.
TRAIN_EXTRA = "train"
#: The import names the ``train`` extra provides (what ``styler train`` and the evidence commands import).
TRAIN_MODULES = ("torch", "torchvision", "matplotlib")
#: The command that installs the ``train`` extra.
INSTALL_TRAIN = "pip install 'styler[train]'"


class MissingExtraError(StylerError):
    """Something needs a package that this install of styler does not have; the message names the pip command."""


def has_module(name: str) -> bool:
    """Whether ``name`` can be imported here, without importing it."""
    if name in sys.modules:
        return sys.modules[name] is not None  # None: blocked on purpose (how the tests simulate a missing package)
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(names: tuple[str, ...] = TRAIN_MODULES) -> list[str]:
    """The names in ``names`` that cannot be imported here, in order."""
    return [name for name in names if not has_module(name)]


def has_torch() -> bool:
    return has_module("torch")


def install_hint(what: str, missing: list[str] | None = None) -> str:
    """``"<what> needs PyTorch (missing: torch, ...), which this install of styler does not have; install it
    with: pip install 'styler[train]'"``."""
    missing = missing if missing is not None else missing_modules()
    listed = f" (missing: {', '.join(missing)})" if missing else ""
    return f"{what} needs PyTorch{listed}, which this install of styler does not have; install it with: {INSTALL_TRAIN}"


def require_torch(what: str) -> None:
    """Raise :class:`MissingExtraError` naming the install command when torch is absent."""
    if not has_torch():
        raise MissingExtraError(install_hint(what, ["torch"]))
