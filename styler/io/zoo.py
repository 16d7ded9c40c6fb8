"""Finding models by name: ``$STYLER_MODEL_DIR``, then the bundled ``weights/`` folder and its manifest.

Torch-free on purpose: ``styler apply`` resolves ``-m NAME`` (or the default model) before deciding whether it needs
torch at all (the ONNX Runtime path does not).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from styler.errors import ModelFileError

__all__ = ["MODEL_SUFFIX", "ENV_MODEL_DIR", "BUNDLED_DIR", "model_search_dirs", "available_models", "read_manifest",
           "default_model", "find_model"]

MODEL_SUFFIX = ".pth"
ENV_MODEL_DIR = "STYLER_MODEL_DIR"
#: The repository's model zoo (models, MANIFEST.json with checksums and the default model's name).
BUNDLED_DIR = Path(__file__).resolve().parent.parent.parent / "weights"


def model_search_dirs() -> list[Path]:
    """Folders searched for model names, in order: ``$STYLER_MODEL_DIR``, then the bundled ``weights/``."""
    dirs = []
    if os.environ.get(ENV_MODEL_DIR):
        dirs.append(Path(os.environ[ENV_MODEL_DIR]))
    dirs.append(BUNDLED_DIR)
    return dirs


def available_models() -> list[str]:
    """Names of every model file in the search folders."""
    return sorted({p.stem for d in model_search_dirs() if d.is_dir() for p in d.glob(f"*{MODEL_SUFFIX}")})


def read_manifest(folder: Path = BUNDLED_DIR) -> dict[str, Any]:
    """``folder/MANIFEST.json`` as a dict (empty when absent or unreadable)."""
    try:
        data = json.loads((folder / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def default_model() -> Path | None:
    """The default model named by ``MANIFEST.json`` (key ``"default"``) or ``default.txt`` in a model folder."""
    for folder in model_search_dirs():
        name = read_manifest(folder).get("default")
        if not name and (folder / "default.txt").is_file():
            name = (folder / "default.txt").read_text().strip() or None
        if name:
            candidate = folder / (name if str(name).endswith(MODEL_SUFFIX) else f"{name}{MODEL_SUFFIX}")
            if candidate.is_file():
                return candidate
    return None


def find_model(name_or_path: str | os.PathLike | None) -> Path:
    """A model file path as given, a model name looked up in :func:`model_search_dirs`, or the default model."""
    if name_or_path is None or str(name_or_path) == "":
        found = default_model()
        if found is None:
            listed = available_models()
            raise ModelFileError(
                "no model given and no default model is installed; pass -m PATH.pth (a model written by "
                "`styler train`) or -m NAME (a model in $STYLER_MODEL_DIR or weights/)"
                + (f"; available: {', '.join(listed)}" if listed else ""))
        return found
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        raise ModelFileError(f"model path is a directory: {candidate}")
    stem = candidate.name if candidate.suffix == MODEL_SUFFIX else candidate.name + MODEL_SUFFIX
    for folder in model_search_dirs():
        if (folder / stem).is_file():
            return folder / stem
    listed = available_models()
    raise ModelFileError(f"model not found: {name_or_path}" + (f"; available: {', '.join(listed)}" if listed else
                                                                "; no models installed in weights/ yet"))
