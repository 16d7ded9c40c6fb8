"""scripts/add_style_curve.py: held-out loss of an added style against steps, evaluated inside the run.

The evaluation must not change the run: the model it writes is bit for bit the one a plain add-style run writes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from script_helpers import load_script

from helpers import base_config
from styler.errors import StylerError
from styler.evidence.heldout import HeldOutScorer, style_target
from styler.evidence.photos import load_photos
from styler.io.modelfile import load_model, save_model
from styler.loss.lossnet import resolve_lossnet_spec
from styler.train.trainer import train

curve_script = load_script("add_style_curve")

EVAL_SIZE = 32


@pytest.fixture(scope="module")
def second_style(shared) -> Path:
    return shared / "data" / "style" / "the_scream.jpg"


@pytest.fixture(scope="module")
def eval_photos(photos):
    return load_photos(sorted(photos.rglob("*.jpg"))[:2], size=EVAL_SIZE)


@pytest.fixture(scope="module")
def models(tmp_path_factory, photos, style, second_style, vgg_weights):
    """A single-style base (Starry Night) and a from-scratch model of the style to add (The Scream)."""
    folder = tmp_path_factory.mktemp("curve")
    base = base_config(folder / "base", photos, style, vgg_weights, iterations=3)
    train(base)
    reference = base_config(folder / "ref", photos, second_style, vgg_weights, iterations=4)
    train(reference)
    return Path(base.output), Path(reference.output)


def _sorted_state(path: Path) -> dict[str, torch.Tensor]:
    return load_model(path).net.state_dict()


@pytest.mark.slow
def test_curve_scores_the_live_run_and_leaves_it_exact(tmp_path, models, photos, second_style, vgg_weights,
                                                       eval_photos) -> None:
    base, reference = models
    config = base_config(tmp_path / "curve", photos, second_style, vgg_weights, base_model=str(base), iterations=4)
    summary = curve_script.run_curve(config, eval_photos, every=2, size=EVAL_SIZE, reference=str(reference),
                                     json_path=str(tmp_path / "curve.json"), plot_path=str(tmp_path / "curve.png"))
    assert json.loads((tmp_path / "curve.json").read_text()) == json.loads(json.dumps(summary))
    assert (tmp_path / "curve.png").stat().st_size > 0
    assert [p["step"] for p in summary["points"]] == [0, 2, 4]
    assert summary["criterion"]["style_name"] == "the_scream" and summary["criterion"]["style_index"] == 1
    assert set(summary["first_step_within"]) == {"0%", "5%", "10%"}
    losses = [p["loss"] for p in summary["points"]]
    assert losses[0] != losses[-1]  # the evaluation sees the network being trained, not a frozen copy

    # the run is exactly a plain `styler train --add-style` run: evaluating between steps changed nothing
    plain = base_config(tmp_path / "plain", photos, second_style, vgg_weights, base_model=str(base), iterations=4)
    train(plain)
    ours, theirs = _sorted_state(Path(config.output)), _sorted_state(Path(plain.output))
    for key, value in theirs.items():
        assert torch.equal(ours[key], value), key

    # the last point and the reference are what eval_models' scoring gives for the files on disk
    lossnet = resolve_lossnet_spec("file", str(vgg_weights))
    scorer = HeldOutScorer(lossnet, eval_photos)
    final = load_model(config.output)
    target = style_target(final.metadata, final.arch, "the_scream")
    assert target.weights == curve_script.added_style_target(config, "caffe").weights
    assert scorer.score(final.net, target, second_style)["loss"] == pytest.approx(losses[-1], rel=1e-5)
    ref = load_model(reference)
    assert scorer.score(ref.net, style_target(ref.metadata, ref.arch), second_style)["loss"] == \
        pytest.approx(summary["reference"]["loss"], rel=1e-5)
    assert summary["reference"]["steps"] == 4


@pytest.mark.slow
def test_stop_within_ends_the_run_at_the_matching_step(tmp_path, models, photos, second_style, vgg_weights,
                                                       eval_photos) -> None:
    base, reference = models
    config = base_config(tmp_path / "stop", photos, second_style, vgg_weights, base_model=str(base), iterations=6)
    summary = curve_script.run_curve(config, eval_photos, every=2, size=EVAL_SIZE, reference=str(reference),
                                     stop_within=1e9)  # any loss is "within": stop at the first evaluation
    assert [p["step"] for p in summary["points"]] == [0, 2]
    assert load_model(config.output).metadata["training"]["steps"] == 2


@pytest.mark.slow
def test_a_reference_with_other_loss_settings_is_refused_before_training(tmp_path, models, photos, style,
                                                                         second_style, vgg_weights,
                                                                         eval_photos) -> None:
    base, reference = models
    loaded = load_model(reference)
    metadata = {**loaded.metadata, "loss_weights": {**loaded.metadata["loss_weights"], "style": 2.0}}
    other = save_model(tmp_path / "other.safetensors", loaded.net, metadata)
    config = base_config(tmp_path / "refused", photos, second_style, vgg_weights, base_model=str(base),
                         iterations=2)
    with pytest.raises(StylerError, match=r"not comparable: style_weight 2\.0 \(the added style trains with 5\.0\)"):
        curve_script.run_curve(config, eval_photos, every=1, reference=str(other))
    assert not config.run_path.exists()  # refused before the trainer started
    # a from-scratch model of another painting is refused too (negative control of the image check)
    with pytest.raises(StylerError, match="its style image is another one"):
        curve_script.run_curve(config, eval_photos, every=1, reference=str(base))


def test_command_line_builds_the_add_style_config(tmp_path) -> None:
    image = tmp_path / "new.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(image)
    args = curve_script.parse_args(["--add-style", f"{image}:2", "--from", "base.safetensors", "-d", "photos",
                                    "-o", "out.safetensors", "--vgg-weights", "vgg.pth", "--photos", "eval",
                                    "--preset", "zoo", "--iterations", "700", "--threads", "2", "--no-amp"])
    config, explicit = curve_script.build_config(args)
    assert (config.style, config.base_model, config.style_weights) == (str(image), "base.safetensors", (2.0,))
    assert (config.iterations, config.image_size, config.batch_size, config.style_size) == (700, 160, 4, 256)
    assert (config.threads, config.amp, config.vgg_source) == (2, False, "file")
    assert {"iterations", "base_model", "style"} <= explicit
    with pytest.raises(StylerError, match="style image not found"):
        curve_script.build_config(argparse.Namespace(**{**vars(args), "add_style": str(tmp_path / "none.png")}))
