"""Which models a client may name, and the loaded stylizers behind them (a small least-recently-used cache).

Why a registry instead of passing names on: ``find_model`` also accepts paths (the CLI's ``-m PATH``), and a web
client must never make the server open a file of its choosing. A client's ``model`` is looked up among the names
:func:`styler.io.zoo.available_models` lists, and the file it resolves to must lie inside one of the zoo's search
folders; anything else is "unknown model" (404). Styles are checked against the model's own list with
:func:`styler.infer.styles.parse_style_mix`, the parser ``--style`` uses.

Why a cache with a lock per entry: loading a model (and exporting it to ONNX the first time) takes seconds, so
each model is opened once and shared by every worker; two requests for a model that is not loaded yet wait for
one load instead of doing two. The cache is small (default 8, the bundled zoo) because every entry holds a
network and a runtime session.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from styler.errors import StylerError
from styler.web.config import ServeConfig
from styler.web.errors import ClientError

if TYPE_CHECKING:  # pragma: no cover
    from styler.infer.stylizer import Stylizer
    from styler.io.modelfile import LoadedModel

__all__ = ["ModelInfo", "Selection", "ModelRegistry", "StylizerCache"]

log = logging.getLogger("styler.web")


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /api/models`` says about one model file."""

    name: str
    path: Path
    style: str
    styles: tuple[str, ...]
    norm: str  # the norm kind as model files record it: instance, batch, group, layer, switchable, ...
    norm_short: str  # IN, BN, GN, LN, SN, ...
    width: int
    default: bool
    multi_style: bool

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "style": self.style, "norm": self.norm,
                                "norm_short": self.norm_short, "width": self.width, "default": self.default,
                                "thumbnail": f"/api/models/{self.name}/thumbnail"}
        if self.multi_style:
            data["styles"] = list(self.styles)
        return data


@dataclass(frozen=True)
class Selection:
    """A resolved request: the model, and the style mix to apply (None: the model's own single style)."""

    info: ModelInfo
    mix: tuple[float, ...] | None = None
    style: str = ""

    @property
    def key(self) -> tuple[str, tuple[float, ...] | None]:
        return str(self.info.path), self.mix


def _describe(path: Path, default: Path | None) -> ModelInfo:
    """A model's entry from its header (torch-free for safetensors files)."""
    from styler.infer.styles import model_style_names
    from styler.io.modelfile import read_model_info
    from styler.nn.spec import NormSpec

    data = read_model_info(path)
    meta = data.get("metadata") or {}
    arch = data.get("arch") or {}
    names = tuple(model_style_names(meta)) or ("?",)
    norm = NormSpec.from_dict(dict(arch.get("norm") or {"kind": "instance"}))
    multi = isinstance(meta.get("styles"), list) and len(meta["styles"]) > 0
    return ModelInfo(name=path.stem, path=path, style=names[0], styles=names, norm=norm.kind,
                     norm_short=norm.short_name, width=int(arch.get("width", 32)),
                     default=default is not None and path.resolve() == default.resolve(), multi_style=multi)


class ModelRegistry:
    """The models of the zoo's search folders, described once per file version (path, size, mtime)."""

    def __init__(self) -> None:
        self._described: dict[tuple[str, int, int, bool], ModelInfo] = {}
        self._lock = threading.Lock()

    def _path_of(self, name: str) -> Path | None:
        """The file of a listed model name, only if it lies in one of the zoo's folders."""
        from styler.io.zoo import available_models, find_model, model_search_dirs

        if name not in available_models():
            return None
        try:
            path = find_model(name).resolve()
        except StylerError:
            return None
        folders = [folder.resolve() for folder in model_search_dirs()]
        return path if any(path.parent == folder for folder in folders) else None

    def info(self, name: str) -> ModelInfo | None:
        """The entry of ``name``, or None when it is not a usable model of the registry."""
        from styler.io.zoo import default_model

        path = self._path_of(name)
        if path is None:
            return None
        default = default_model()
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (str(path), stat.st_size, stat.st_mtime_ns, default is not None and default.resolve() == path)
        with self._lock:
            cached = self._described.get(key)
        if cached is not None:
            return cached
        try:
            described = _describe(path, default)
        except (StylerError, OSError, ValueError) as exc:  # a damaged file in a model folder: leave it out
            log.warning("model %s left out: %s", name, exc)
            return None
        with self._lock:
            self._described[key] = described
        return described

    def models(self) -> list[ModelInfo]:
        """Every usable model, by name."""
        from styler.io.zoo import available_models

        return [info for info in (self.info(name) for name in available_models()) if info is not None]

    def resolve(self, model: str | None, style: str | None) -> Selection:
        """The selection a request names; :class:`ClientError` 404 for an unknown model, 422 for a bad style.

        Without ``model``, ``style`` picks a model that has it (an instance-norm one first); without either, the
        zoo's default model.
        """
        model = (model or "").strip() or None
        style = (style or "").strip() or None
        if model is None:
            return self._with_style(self._model_for_style(style) if style else self._default(), style)
        info = self.info(model)
        if info is None:
            raise ClientError(404, f"unknown model {model!r}; GET /api/models lists the models")
        return self._with_style(info, style)

    def _default(self) -> ModelInfo:
        from styler.io.zoo import default_model

        default = default_model()
        info = self.info(default.stem) if default is not None else None
        if info is None:
            models = self.models()
            if not models:
                raise ClientError(404, "no models are installed")
            info = models[0]
        return info

    def _model_for_style(self, style: str) -> ModelInfo:
        candidates = [m for m in self.models() if style in m.styles]
        if not candidates:
            raise ClientError(422, f"no model has the style {style!r}; GET /api/models lists the styles")
        return sorted(candidates, key=lambda m: (m.multi_style, m.norm != "instance", not m.default, m.name))[0]

    @staticmethod
    def _with_style(info: ModelInfo, style: str | None) -> Selection:
        from styler.infer.styles import describe_mix, parse_style_mix

        try:
            mix = parse_style_mix(style, list(info.styles))
        except StylerError as exc:
            raise ClientError(422, str(exc)) from exc
        if mix is None or not info.multi_style:  # a single-style model accepts only its own style: no mix
            return Selection(info, None, info.style)
        return Selection(info, tuple(float(w) for w in mix), describe_mix(mix, list(info.styles)))


class _Entry:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stylizer: Stylizer | None = None


class StylizerCache:
    """Loaded stylizers by selection, least recently used dropped first (a request using one keeps it alive)."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self._entries: OrderedDict[tuple[str, tuple[float, ...] | None], _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, selection: Selection) -> _Entry:
        with self._lock:
            entry = self._entries.get(selection.key)
            if entry is None:
                entry = self._entries[selection.key] = _Entry()
            self._entries.move_to_end(selection.key)
            while len(self._entries) > self.config.cache_models:
                self._entries.popitem(last=False)
        return entry

    def get(self, selection: Selection) -> Stylizer:
        """The stylizer of ``selection``, opened on first use (in the calling worker thread)."""
        entry = self._entry(selection)
        with entry.lock:
            if entry.stylizer is None:
                entry.stylizer = self._open(selection)
            return entry.stylizer

    def loaded(self, selection: Selection) -> LoadedModel:
        """The torch model behind a selection (the evidence functions measure torch networks), loaded once."""
        entry = self._entry(selection)
        with entry.lock:
            if entry.stylizer is None:
                entry.stylizer = self._open(selection)
            return entry.stylizer.model.load()

    def _open(self, selection: Selection) -> Stylizer:
        from styler.infer.stylizer import Stylizer

        cfg = self.config
        stylizer = Stylizer(str(selection.info.path), device=cfg.device, backend=cfg.backend,
                            threads=cfg.worker_threads)
        if selection.mix is not None:  # a style or blend of a multi-style model: every backend applies the mix
            import numpy as np

            stylizer.model.style_mix = np.asarray(selection.mix, dtype=np.float32)
        return stylizer

    def names(self) -> list[str]:
        """Loaded selections, least recently used first (``/api/health`` shows them)."""
        with self._lock:
            return [f"{Path(path).stem}{'' if mix is None else ' (blend)'}" for path, mix in self._entries]


def ablation_selections(registry: ModelRegistry, names: Sequence[str]) -> list[Selection]:
    """The Norms view's models that are installed, in the configured order."""
    found = [registry.info(name) for name in names]
    return [Selection(info, None, info.style) for info in found if info is not None]
