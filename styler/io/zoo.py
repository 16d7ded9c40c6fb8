"""Finding models by name: ``$STYLER_MODEL_DIR``, then the zoo bundled inside the package and its manifest.

The bundled zoo is package data (``styler/models/``: model files, their pre-exported ONNX graphs, ``MANIFEST.json``
and the credits), located beside the package's code (:func:`bundled_dir`), so a wheel install, an editable install
and a checkout all find the same models. Torch-free on purpose: ``styler apply`` resolves ``-m NAME`` (or the
default model) before deciding whether it needs torch at all (the ONNX Runtime path does not).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from styler.errors import ModelFileError

__all__ = ["MODEL_SUFFIX", "MODEL_SUFFIXES", "ENV_MODEL_DIR", "BUNDLED_DIR", "bundled_dir", "model_search_dirs",
           "available_models", "read_manifest", "default_model", "find_model", "models_in", "ModelEntry", "list_models"]

#: What save_model's files are called by default (format v2); v1 files are ``.pth``.
MODEL_SUFFIX = ".safetensors"
#: Suffixes of model files in a model folder, in the order a bare name is looked up.
MODEL_SUFFIXES = (".safetensors", ".pth")
ENV_MODEL_DIR = "STYLER_MODEL_DIR"


def bundled_dir() -> Path:
    """The package's model folder on disk (pip installs packages unzipped, so it is always a real folder).

    Found from this file's location, which is what :func:`importlib.resources.files` answers for an unzipped
    package (wheel, editable install or checkout alike), without importing it: :mod:`importlib.resources` and the
    ``tempfile``/``zipfile`` chain behind it cost ~5 ms of every ``styler apply``.
    """
    return Path(__file__).resolve().parent.parent / "models"


#: The bundled model zoo (models, ONNX graphs, MANIFEST.json with checksums and the default model's name).
BUNDLED_DIR = bundled_dir()


def model_search_dirs() -> list[Path]:
    """Folders searched for model names, in order: ``$STYLER_MODEL_DIR``, then the bundled zoo."""
    dirs = []
    if os.environ.get(ENV_MODEL_DIR):
        dirs.append(Path(os.environ[ENV_MODEL_DIR]))
    dirs.append(BUNDLED_DIR)
    return dirs


def models_in(folder: Path) -> dict[str, Path]:
    """Model name -> file in ``folder``; a name present as ``.safetensors`` and ``.pth`` is the ``.safetensors``."""
    found: dict[str, Path] = {}
    if folder.is_dir():
        for suffix in reversed(MODEL_SUFFIXES):
            found.update({p.stem: p for p in folder.glob(f"*{suffix}") if p.is_file()})
    return dict(sorted(found.items()))


def available_models() -> list[str]:
    """Names of every model file in the search folders."""
    return sorted({name for folder in model_search_dirs() for name in models_in(folder)})


def read_manifest(folder: Path | None = None) -> dict[str, Any]:
    """``folder/MANIFEST.json`` (default: the bundled zoo's) as a dict (empty when absent or unreadable)."""
    try:
        data = json.loads(((folder or BUNDLED_DIR) / "MANIFEST.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _named(folder: Path, name: str) -> Path | None:
    """The model file called ``name`` (with or without a model suffix) in ``folder``, if any."""
    if Path(name).suffix in MODEL_SUFFIXES:
        return folder / name if (folder / name).is_file() else None
    for suffix in MODEL_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    return None


def default_model() -> Path | None:
    """The default model named by ``MANIFEST.json`` (key ``"default"``) or ``default.txt`` in a model folder."""
    for folder in model_search_dirs():
        name = read_manifest(folder).get("default")
        if not name and (folder / "default.txt").is_file():
            name = (folder / "default.txt").read_text().strip() or None
        if name:
            candidate = _named(folder, str(name))
            if candidate is not None:
                return candidate
    return None


def find_model(name_or_path: str | os.PathLike | None) -> Path:
    """A model file path as given, a model name looked up in :func:`model_search_dirs`, or the default model."""
    if name_or_path is None or str(name_or_path) == "":
        found = default_model()
        if found is None:
            listed = available_models()
            raise ModelFileError(
                "no model given and no default model is installed; pass -m PATH (a model file written by "
                "`styler train`) or -m NAME (a model in $STYLER_MODEL_DIR or the bundled zoo)"
                + (f"; available: {', '.join(listed)}" if listed else ""))
        return found
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    if candidate.is_dir():
        raise ModelFileError(f"model path is a directory: {candidate}")
    for folder in model_search_dirs():
        found = _named(folder, candidate.name)
        if found is not None:
            return found
    listed = available_models()
    raise ModelFileError(f"model not found: {name_or_path}" + (f"; available: {', '.join(listed)}" if listed else
                                                                "; no models installed"))


@dataclass(frozen=True)
class ModelEntry:
    """One model file ``styler models`` lists."""

    name: str
    path: Path
    size_bytes: int
    default: bool

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "size_bytes": self.size_bytes, "default": self.default}


def list_models() -> list[ModelEntry]:
    """Every model file in the search folders, folder by folder (a name in two folders is listed twice)."""
    default = default_model()
    return [ModelEntry(name, path, path.stat().st_size, default is not None and path.resolve() == default.resolve())
            for folder in model_search_dirs() for name, path in models_in(folder).items()]
