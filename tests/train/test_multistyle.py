"""Training one network on several styles (conditional instance norm) and adding a style to a trained model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import base_config
from styler.io.modelfile import load_model
from styler.nn.kinds.conditional import ConditionalInstanceNorm2d, one_hot_mix, set_style_mix
from styler.train.data import StyleSchedule
from styler.train.signals import TrainingInterrupted
from styler.train.trainer import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def second_style(shared) -> Path:
    return shared / "data" / "style" / "the_scream.jpg"


def test_style_schedule_is_balanced_and_a_function_of_seed_and_step() -> None:
    schedule = StyleSchedule(3, seed=5)
    steps = [schedule.style(s) for s in range(30)]
    for cycle in range(10):
        assert sorted(steps[3 * cycle:3 * cycle + 3]) == [0, 1, 2]  # every cycle visits each style once
    assert [StyleSchedule(3, seed=5).style(s) for s in reversed(range(30))] == steps[::-1]  # no hidden state
    assert steps != [StyleSchedule(3, seed=6).style(s) for s in range(30)]


def test_multi_style_run_resumes_exactly_and_logs_per_style(tmp_path, photos, style, second_style, vgg_weights):
    styles = (str(style), str(second_style))
    options = dict(styles=styles, style_weights=(None, 2.0), iterations=6)
    straight = base_config(tmp_path / "a", photos, style, vgg_weights, **options)
    train(straight)
    interrupted = base_config(tmp_path / "b", photos, style, vgg_weights, **options)
    with pytest.raises(TrainingInterrupted) as info:
        train(interrupted, stop_after=3)
    train(interrupted, resume=info.value.checkpoint)
    a, b = load_model(straight.output), load_model(interrupted.output)
    for key, value in a.net.state_dict().items():
        torch.testing.assert_close(b.net.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)
    assert a.arch.norm.kind == "conditional" and a.arch.norm.num_styles == 2
    names = [s["name"] for s in a.metadata["styles"]]
    assert names == ["starry_night", "the_scream"]
    assert [s["style_weight"] for s in a.metadata["styles"]] == [5.0, 2.0]
    records = [json.loads(line) for line in Path(straight.log_path).read_text().splitlines()]
    assert all(set(r["styles"]) <= set(names) for r in records)
    assert {name for r in records for name in r["styles"]} == set(names)  # both styles were trained
    # the two styles' (γ, β) moved apart from their common start: the network paints two different styles
    layer = next(m for m in a.net.modules() if isinstance(m, ConditionalInstanceNorm2d))
    assert not torch.allclose(layer.weight[0], layer.weight[1])


def test_add_style_changes_only_the_new_styles_affine(tmp_path, photos, style, second_style, vgg_weights):
    base = base_config(tmp_path / "base", photos, style, vgg_weights, iterations=3)
    train(base)
    added = base_config(tmp_path / "added", photos, second_style, vgg_weights, base_model=base.output,
                        iterations=4)
    train(added)
    old, new = load_model(base.output), load_model(added.output)
    assert new.arch.norm.num_styles == 2 and new.arch.width == old.arch.width
    assert [s["name"] for s in new.metadata["styles"]] == ["starry_night", "the_scream"]
    # the base style keeps the weight it was trained with, though loss_weights now describe the new style
    assert new.metadata["styles"][0]["style_weight"] == old.metadata["loss_weights"]["style"]
    old_state, new_state = old.net.state_dict(), new.net.state_dict()
    changed_rows = 0
    for key, value in new_state.items():
        if value.dim() == 2:  # a conditional (γ, β): row 0 is the base style, row 1 the new one
            torch.testing.assert_close(value[0], old_state[key], rtol=0, atol=0, msg=key)
            changed_rows += int(not torch.equal(value[1], value[0]))
        else:
            torch.testing.assert_close(value, old_state[key], rtol=0, atol=0, msg=key)
    assert changed_rows > 0  # negative control: the new style did train
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        set_style_mix(new.net, one_hot_mix(0, 2))
        torch.testing.assert_close(new.net(x), old.net(x), rtol=0, atol=1e-5)  # the base style is untouched
