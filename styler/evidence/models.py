"""The models being compared: loading them from whatever the caller has, and labelling them for grids and tables.

Every evidence function accepts a model file, a model name or an already loaded model, so that the CLI can pass
paths while the report loads each model once and reuses it for every measurement.
"""

from __future__ import annotations

import os
from typing import TypeAlias, Union

from styler.io.modelfile import LoadedModel, load_model

__all__ = ["ModelRef", "as_loaded", "model_label", "model_steps", "model_style"]

#: What the evidence functions accept as a model: a loaded model, a model file, or a bundled model's name.
ModelRef: TypeAlias = Union[LoadedModel, str, "os.PathLike[str]"]


def as_loaded(model: ModelRef) -> LoadedModel:
    """A :class:`LoadedModel` from a path or an already loaded model."""
    if isinstance(model, LoadedModel):
        return model
    from styler.io.zoo import find_model

    return load_model(find_model(model))


def model_style(loaded: LoadedModel) -> str:
    """The style's name; model files written by older versions store a plain string (or nothing) instead."""
    style = loaded.metadata.get("style")
    if isinstance(style, dict):
        return str(style.get("name") or style.get("file") or "?")
    return str(style) if style else "?"


def model_steps(loaded: LoadedModel) -> int | None:
    """Training steps from the metadata; None for a model file that does not record them."""
    training = loaded.metadata.get("training")
    if isinstance(training, dict) and training.get("steps") is not None:
        return int(training["steps"])
    return None


def model_label(loaded: LoadedModel, multiline: bool = True) -> str:
    """``IN · width 16`` / style / steps, the row label of grids and tables (width, so that a half- and a
    full-width model of the same norm can be told apart)."""
    steps = model_steps(loaded)
    parts = [f"{loaded.arch.norm.short_name} · width {loaded.arch.width}", model_style(loaded),
             f"{steps} steps" if steps is not None else "untrained?"]
    return ("\n" if multiline else " · ").join(parts)
