"""Held-out quality of one style of a model: its outputs on photos it never saw, scored with the loss it trained on.

Why a module of its own: comparing a multi-style (conditional norm) model with single-style models only means
something when each style is scored exactly as it was trained — its own style image, its own style weight (Great
Wave and Composition VII train at 2, the others at 5), the same style size, content and TV weights and VGG layers —
on the same photos at the same size. ``scripts/eval_models.py`` (a table of models) and
``scripts/add_style_curve.py`` (held-out loss against steps while a style is added) both need that, so the rules
live here once:

* :func:`split_model_style` reads ``MODEL@STYLE`` (``six_styles.safetensors@great_wave``);
* :func:`style_target` turns a model's metadata and a style name into what that style was trained against
  (a :class:`StyleTarget`), refusing unknown names and styles whose weight the file does not record;
* :func:`find_style_image` finds the style image that target names, checked by its recorded sha256;
* :class:`HeldOutScorer` loads VGG16 once and scores any number of (network, target) pairs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from styler.errors import StylerError
from styler.evidence.photos import Photo
from styler.infer.styles import model_style_names
from styler.io.files import sha256_file
from styler.loss.criterion import Criterion, build_criterion, resolve_loss_weights
from styler.loss.losses import LossWeights, evaluate_terms
from styler.loss.lossnet import LossNetSpec
from styler.nn.spec import ArchSpec

__all__ = ["StyleTarget", "HeldOutScorer", "split_model_style", "style_target", "find_style_image",
           "STYLE_SUFFIXES"]

#: Suffixes tried when a style is looked up by name rather than by its recorded file name.
STYLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def split_model_style(text: str) -> tuple[str, str | None]:
    """``MODEL@STYLE`` → ``(MODEL, STYLE)``; ``MODEL`` → ``(MODEL, None)``.

    A path that exists as given is never split (a file may have ``@`` in its name); otherwise the last ``@``
    separates the style (a name, or a row index such as ``3``).
    """
    if "@" not in text or Path(text).exists():
        return text, None
    model, _, style = text.rpartition("@")
    if not model or not style.strip():
        raise StylerError(f"bad model reference {text!r}: write MODEL or MODEL@STYLE")
    return model, style.strip()


@dataclass(frozen=True)
class StyleTarget:
    """What one style of a model was trained against, as its file records it.

    Attributes:
        name: the style's name; ``index`` its (γ, β) row; ``num_styles`` the rows of a conditional-norm network
            (0 for a network without one, which has exactly one style and takes no style mix).
        file, sha256: the style image's recorded file name and checksum (None when the file does not say).
        weights: the resolved loss weights of that style (its own style weight).
        style_size: long side the style image was resized to in training (None: as it is).
    """

    name: str
    index: int
    num_styles: int
    file: str | None
    sha256: str | None
    weights: LossWeights
    style_size: int | None

    @property
    def mix(self) -> torch.Tensor | None:
        """The one-hot style mix that selects this style (None for a network without conditional norm)."""
        if not self.num_styles:
            return None
        from styler.nn.kinds.conditional import one_hot_mix

        return one_hot_mix(self.index, self.num_styles)

    def criterion_key(self) -> tuple[Any, ...]:
        w = self.weights
        return (w.content, w.style, w.tv, w.content_layer, tuple(w.style_layers), self.style_size)

    def describe(self) -> dict[str, Any]:
        """Plain data for reports: which style, and every setting of the loss it is scored with."""
        return {"style_name": self.name, "style_index": self.index, "style_weight": self.weights.style,
                "content_weight": self.weights.content, "tv_weight": self.weights.tv,
                "content_layer": self.weights.content_layer, "style_layers": list(self.weights.style_layers),
                "style_size": self.style_size}


def _style_records(metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
    styles = metadata.get("styles")
    if isinstance(styles, list) and styles:
        return [dict(s) if isinstance(s, Mapping) else {"name": str(s)} for s in styles]
    style = metadata.get("style")
    if isinstance(style, Mapping):
        return [dict(style)]
    return [{"name": str(style)}] if style else [{}]


def style_target(metadata: Mapping[str, Any], arch: ArchSpec, style: str | None = None, *,
                 convention: str = "caffe", where: str = "model", style_weight: float | None = None) -> StyleTarget:
    """The :class:`StyleTarget` of ``style`` (a name or row index; None: the model's first style).

    The style weight is the style's own (``styles[i].style_weight``, written by multi-style training); a
    single-style model's is its ``loss_weights.style``. A multi-style file that does not record a style's weight
    (a style added to a single-style base keeps no weight for the base's style) is refused unless ``style_weight``
    is given: falling back to ``loss_weights.style`` would silently score that style with another style's weight.
    The other weights, the layers and the style size are shared by every style of a run. Values a file does not
    record at all take the defaults of the loss network's ``convention``, as training did.

    Raises:
        StylerError: unknown style (the message lists the model's styles), or no recorded style weight.
    """
    names = model_style_names(metadata) or ["style"]
    index = 0
    if style is not None:
        positions = {name: i for i, name in enumerate(names)}
        if style in positions:
            index = positions[style]
        elif style.isdigit() and int(style) < len(names):
            index = int(style)
        else:
            raise StylerError(f"{where}: unknown style {style!r}; this model has: {', '.join(names)}")
    conditional = arch.norm.kind == "conditional"
    records = _style_records(metadata)
    record = records[index] if index < len(records) else {}
    recorded = metadata.get("loss_weights")
    recorded = recorded if isinstance(recorded, Mapping) else {}
    weight = style_weight if style_weight is not None else record.get("style_weight")
    if weight is None:
        if conditional and arch.norm.num_styles > 1:
            raise StylerError(f"{where} does not record the style weight of {names[index]!r} (its loss_weights "
                              "belong to one style of the run, maybe another one); give it with --style-weight")
        weight = recorded.get("style")
    weights = resolve_loss_weights(convention, content=recorded.get("content"), style=weight,
                                   tv=recorded.get("tv"), content_layer=recorded.get("content_layer"),
                                   style_layers=recorded.get("style_layers"))
    training = metadata.get("training")
    style_size = training.get("style_size") if isinstance(training, Mapping) else None
    return StyleTarget(name=names[index], index=index, num_styles=arch.norm.num_styles if conditional else 0,
                       file=record.get("file"), sha256=record.get("sha256"), weights=weights,
                       style_size=int(style_size) if style_size else None)


def find_style_image(target: StyleTarget, *, style: str | os.PathLike[str] | None = None,
                     style_dir: str | os.PathLike[str] | None = None, where: str = "model") -> tuple[Path, list[str]]:
    """The style image to score ``target`` against, and warnings about it.

    ``style`` is used as given (a recorded sha256 that differs is a warning: scoring against another painting
    can be intended). ``style_dir`` is searched for the recorded file name, then for ``<name>.<image suffix>``;
    the image found must have the recorded sha256 (an error otherwise: a same-named file that is not the
    training image would make the comparison meaningless).
    """
    if style is not None:
        path = Path(style)
        if not path.is_file():
            raise StylerError(f"style image not found: {path}")
        warnings = []
        if target.sha256 and sha256_file(path) != target.sha256:
            warnings.append(f"{where}: {path} is not the image style {target.name!r} was trained on (sha256 differs "
                            f"from the recorded {target.file or 'file'}'s)")
        return path, warnings
    if style_dir is None:
        raise StylerError("give the style image (--style) or a folder to find each model's style in (--style-dir)")
    folder = Path(style_dir)
    if not folder.is_dir():
        raise StylerError(f"--style-dir: not a folder: {folder}")
    candidates = ([folder / Path(target.file).name] if target.file else []) + \
        [folder / f"{target.name}{suffix}" for suffix in STYLE_SUFFIXES]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise StylerError(f"{where}: no image for style {target.name!r} in {folder} (looked for "
                          f"{', '.join(c.name for c in candidates[:3])}, ...)")
    if target.sha256 and sha256_file(found) != target.sha256:
        raise StylerError(f"{where}: {found} is not the image style {target.name!r} was trained on (its sha256 "
                          f"differs from the recorded one)")
    return found, []


class HeldOutScorer:
    """Mean loss terms of networks on a fixed set of photos; VGG16 is loaded once for every target.

    Args:
        lossnet: the loss network (the weights file's convention decides the default weights).
        photos: the held-out photos, each 1×3×H×W in [0, 1] (:func:`styler.evidence.photos.load_photos`).
        device: where the loss network runs (the networks scored run where they are).
    """

    def __init__(self, lossnet: LossNetSpec, photos: Sequence[Photo], device: torch.device | str = "cpu") -> None:
        self.lossnet = lossnet
        self.device = torch.device(device)
        self.contents = [p.tensor.to(self.device) for p in photos]
        self._networks: dict[tuple[Any, ...], Criterion] = {}
        self._criteria: dict[tuple[Any, ...], Criterion] = {}

    def criterion(self, target: StyleTarget, image: str | os.PathLike[str]) -> Criterion:
        """The fp32 criterion ``target`` was trained with, against ``image`` (one VGG per set of layers)."""
        w = target.weights
        key = (*target.criterion_key(), str(Path(image).resolve()))
        if key in self._criteria:
            return self._criteria[key]
        layers = (w.content, w.tv, w.content_layer, tuple(w.style_layers))
        base = self._networks.get(layers)
        if base is None:
            criterion = build_criterion(self.lossnet, image, style_size=target.style_size, content_weight=w.content,
                                        style_weight=w.style, tv_weight=w.tv, content_layer=w.content_layer,
                                        style_layers=w.style_layers, device=self.device)
            self._networks[layers] = criterion
        else:
            criterion = base.with_style(image, target.style_size, style_weight=w.style)
        self._criteria[key] = criterion
        return criterion

    def outputs(self, net: torch.nn.Module, target: StyleTarget) -> list[torch.Tensor]:
        """``net``'s outputs (as fp32, on the scorer's device) for every photo with ``target``'s style selected; the
        photos are cast to the network's dtype (a bf16 copy computes in bf16).

        The network is put in eval mode for the call and given back in the mode it was in; the style is passed per
        call, so whatever style mix the network holds is left alone.
        """
        was_training = net.training
        parameter = next(net.parameters())
        mix = target.mix
        net.eval()
        try:
            with torch.no_grad():
                results = []
                for x in self.contents:
                    x = x.to(parameter.device, parameter.dtype)
                    out = net(x) if mix is None else net(x, style=mix.to(parameter.device))
                    results.append(out.float().to(self.device))
                return results
        finally:
            net.train(was_training)

    def score(self, net: torch.nn.Module, target: StyleTarget, image: str | os.PathLike[str],
              outputs: Sequence[torch.Tensor] | None = None) -> dict[str, float]:
        """Mean weighted loss terms (``loss``, ``content``, ``style``, ``tv``) of ``net`` painting ``target``."""
        criterion = self.criterion(target, image)
        if outputs is None:
            outputs = self.outputs(net, target)
        return evaluate_terms(criterion.loss, outputs, self.contents)
