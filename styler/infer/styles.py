"""Choosing and blending the styles of a multi-style (conditional instance norm) model.

Why a mix vector: a conditional-instance-norm network holds one (γ, β) per style, and any convex combination of
them is a valid style — the blend. A user names styles (``--style great_wave`` or
``--style great_wave:0.6,starry_night:0.4``); this module turns that into the weight vector every backend feeds the
network, torch-free, with clear errors for unknown names and bad weights. Weights are normalized to sum to 1, so
``a:3,b:1`` means 75 % / 25 %.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from styler.errors import StylerError

__all__ = ["model_style_names", "parse_style_mix", "describe_mix"]


def model_style_names(metadata: Mapping[str, Any]) -> list[str]:
    """The style names of a model, in (γ, β)-row order: its ``styles`` list, or its single ``style``."""
    styles = metadata.get("styles")
    if isinstance(styles, list) and styles:
        return [str(s.get("name", f"style_{i}")) if isinstance(s, Mapping) else str(s) for i, s in enumerate(styles)]
    style = metadata.get("style")
    if isinstance(style, Mapping):
        return [str(style.get("name") or style.get("file") or "style")]
    return [str(style)] if style else []


def _parse_terms(spec: str) -> list[tuple[str, float]]:
    terms = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise StylerError(f"empty style in {spec!r}; write NAME or NAME:WEIGHT,NAME:WEIGHT")
        name, sep, weight_text = part.rpartition(":")
        if not sep:
            name, weight_text = part, "1"
        try:
            weight = float(weight_text)
        except ValueError:
            raise StylerError(f"bad style weight {weight_text!r} in {spec!r}; weights are numbers, e.g. "
                              "great_wave:0.6,starry_night:0.4") from None
        if not math.isfinite(weight) or weight < 0:
            raise StylerError(f"style weight {weight_text!r} in {spec!r} must be a finite number ≥ 0")
        terms.append((name.strip(), weight))
    return terms


def parse_style_mix(spec: str | None, names: Sequence[str]) -> np.ndarray | None:
    """The normalized weight vector (one entry per style of the model) that ``spec`` asks for.

    ``spec`` None means the model's own default (style 0 for a multi-style model) and returns None. A style may be
    named by its name or its index (``0``, ``1``...). A single-style model accepts only its own style.
    """
    if spec is None or not str(spec).strip():
        return None
    if not names:
        raise StylerError("this model records no style names, so --style cannot choose among them")
    terms = _parse_terms(str(spec))
    index = {name: i for i, name in enumerate(names)}
    mix = np.zeros(len(names), dtype=np.float32)
    seen: set[int] = set()
    for name, weight in terms:
        position = index.get(name)
        if position is None and name.isdigit() and int(name) < len(names):
            position = int(name)
        if position is None:
            raise StylerError(f"unknown style {name!r}; this model has: {', '.join(names)}")
        if position in seen:
            raise StylerError(f"style {names[position]!r} is named twice in {spec!r}")
        seen.add(position)
        mix[position] = weight
    total = float(mix.sum())
    if total <= 0:
        raise StylerError(f"the style weights in {spec!r} add up to 0; give at least one positive weight")
    return mix / np.float32(total)


def describe_mix(mix: np.ndarray | None, names: Sequence[str]) -> str:
    """``great_wave 60 % + starry_night 40 %`` (or the first style's name for the default)."""
    if mix is None:
        return names[0] if names else "default"
    parts = [(names[i], float(w)) for i, w in enumerate(mix) if w > 0]
    if len(parts) == 1:
        return parts[0][0]
    return " + ".join(f"{name} {weight:.0%}" for name, weight in parts)
