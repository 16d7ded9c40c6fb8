"""The contract between the stylizer and a runtime that executes the network.

Why a protocol and not a base class: runtimes share no code worth inheriting (eager torch, ONNX Runtime and the
next one have nothing in common but the array in and the array out), and a protocol lets each module stay
self-contained. The stylizer owns everything around the network (sizing, padding to multiples of 4, colour,
strength, the tiling decision) so a backend only has to turn a batch into a batch.

A model travels to the backends as a :class:`ModelHandle`, shared between the stylizer and every backend it opens:
the file is hashed, exported or loaded at most once, and whichever backend learns the model's metadata first
(torch from the file, ONNX Runtime from its cache sidecar) records it there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union, cast

from styler.errors import StylerError

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from styler.io.modelfile import LoadedModel

__all__ = ["Backend", "TilingBackend", "BackendError", "ModelHandle", "ModelLike"]


class BackendError(StylerError):
    """A backend is unavailable here or cannot run this model (under ``auto`` the stylizer then uses torch)."""


@dataclass
class ModelHandle:
    """A model file and, once a backend needed them, its loaded torch model and metadata.

    ``path`` is None only for a model built in memory (it cannot be exported and cached, so it runs on torch).
    ``meta`` holds ``name``, ``arch`` (the :class:`~styler.nn.spec.ArchSpec` as a dict) and ``metadata``.
    ``style_mix`` is the style blend every backend applies to a multi-style model (None: its first style); it
    lives here because it belongs to the model being run, whichever backend runs it.
    """

    path: Path | None
    loaded: LoadedModel | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    style_mix: np.ndarray | None = None

    @classmethod
    def of(cls, model: ModelLike) -> ModelHandle:
        """A handle for a path, a model name, None (the default model), a loaded model, or a handle (returned)."""
        if isinstance(model, ModelHandle):
            return model
        if model is not None and hasattr(model, "net") and hasattr(model, "arch"):  # duck-typed: no torch import
            loaded = cast("LoadedModel", model)
            return cls(loaded.path, loaded)
        from styler.io.zoo import find_model

        return cls(find_model(model))

    def load(self) -> LoadedModel:
        """The torch model, loaded from :attr:`path` on first use (this imports torch)."""
        if self.loaded is None:
            from styler.io.modelfile import load_model

            assert self.path is not None, "a handle holds a path, a loaded model, or both"
            self.loaded = load_model(self.path)
        if not self.meta:
            self.meta = {"name": self.loaded.name, "arch": self.loaded.arch.to_dict(),
                         "metadata": self.loaded.metadata}
        return self.loaded


ModelLike = Union[ModelHandle, "LoadedModel", str, os.PathLike, None]


class Backend(Protocol):
    """A runtime executing the network on batches.

    Attributes every backend declares:
        name: what ``--backend`` calls it and what results report (``torch``, ``compiled``, ``onnx``).
        device: the resolved device it runs on (``cpu``, ``cuda:1``, ...).
        precision: ``fp32`` or ``bf16``, the precision it actually computes in.
        tiles: whether it is a :class:`TilingBackend`; if not, the stylizer tiles on an eager fp32 torch backend.
        activation_cost: peak activation bytes per pixel per unit of network width of one pass (auto-tiling).
        notes: fallbacks taken, as sentences for the user (opening, or later: a failed compile). Appended to.
        model: the shared handle of the model it runs.
    """

    name: str
    device: str
    precision: str
    tiles: bool
    activation_cost: int
    notes: list[str]
    model: ModelHandle

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The network on ``N×3×H×W`` float32 in [0, 1], H and W multiples of 4; float32, same shape, unclamped."""
        ...


class TilingBackend(Backend, Protocol):
    """A backend that can also run one image tile by tile (:func:`styler.infer.tiling.tiled_forward`, torch)."""

    def run_tiled(self, image: np.ndarray, tile: int, stats_max_pixels: int | None) -> np.ndarray:
        """The fp32 network on one ``H×W×3`` float32 image in tiles of ``tile`` px; ``H×W×3``, unclamped."""
        ...
