"""Parsing style choices and blends for multi-style models (torch-free)."""

from __future__ import annotations

import numpy as np
import pytest

from styler.errors import StylerError
from styler.infer.styles import describe_mix, model_style_names, parse_style_mix

NAMES = ["starry_night", "great_wave", "the_scream"]


def test_names_come_from_the_styles_list_or_the_single_style() -> None:
    assert model_style_names({"styles": [{"name": n} for n in NAMES], "style": {"name": "x"}}) == NAMES
    assert model_style_names({"style": {"name": "starry_night"}}) == ["starry_night"]
    assert model_style_names({}) == []


def test_one_style_and_blends_are_normalized() -> None:
    np.testing.assert_allclose(parse_style_mix("great_wave", NAMES), [0, 1, 0])
    np.testing.assert_allclose(parse_style_mix("great_wave:0.6,starry_night:0.4", NAMES), [0.4, 0.6, 0])
    np.testing.assert_allclose(parse_style_mix("0:3,2:1", NAMES), [0.75, 0, 0.25])
    assert parse_style_mix(None, NAMES) is None
    assert describe_mix(parse_style_mix("great_wave:0.6,starry_night:0.4", NAMES), NAMES) == \
        "starry_night 40% + great_wave 60%"


@pytest.mark.parametrize("spec, message", [
    ("monet", "unknown style 'monet'; this model has: starry_night, great_wave, the_scream"),
    ("great_wave:-1", "must be a finite number"), ("great_wave:nan", "must be a finite number"),
    ("great_wave:x", "bad style weight"), ("great_wave:0,the_scream:0", "add up to 0"),
    ("great_wave,great_wave:2", "named twice"), ("great_wave,", "empty style")])
def test_bad_choices_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(StylerError, match=message.replace("(", r"\(")):
        parse_style_mix(spec, NAMES)
