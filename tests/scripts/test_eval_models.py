"""scripts/eval_models.py on multi-style models: style k is scored with style k's image and weight, on the same
photos and loss settings as a single-style model of that style."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from script_helpers import load_script, save_cin_model

from helpers import smooth_photo
from styler.evidence.heldout import split_model_style, style_target
from styler.evidence.photos import load_photos
from styler.io.files import sha256_file
from styler.io.modelfile import load_model, save_model
from styler.loss.criterion import build_criterion
from styler.loss.losses import evaluate_terms
from styler.loss.lossnet import resolve_lossnet_spec
from styler.nn.network import TransformerNet
from styler.nn.spec import ArchSpec, NormSpec

eval_models = load_script("eval_models")

LAYERS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
LOSS_WEIGHTS = {"content": 1.0, "style": 5.0, "tv": 1e-6, "content_layer": "relu3_3", "style_layers": LAYERS}
STYLE_SIZE = 40


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    """Two style images, two photos, a two-style model (weights 5 and 2) and a single-style model of style 2."""
    folder = tmp_path_factory.mktemp("eval")
    styles = folder / "styles"
    styles.mkdir()
    grid = np.indices((48, 48)).sum(0)
    Image.fromarray(np.stack([(grid // 4 % 2) * 255] * 3, -1).astype(np.uint8)).save(styles / "stripes.png")
    Image.fromarray((np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)).save(styles / "dots.png")
    photos = folder / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray((smooth_photo(i, 32) * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    records = [{"name": n, "file": f"{n}.png", "sha256": sha256_file(styles / f"{n}.png"), "size": [48, 48],
                "style_weight": w} for n, w in (("stripes", 5.0), ("dots", 2.0))]
    training = {"style_size": STYLE_SIZE, "steps": 9}
    cin = save_cin_model(folder / "two.safetensors", records, loss_weights=LOSS_WEIGHTS, training=training)
    single = save_model(folder / "dots_in.safetensors", TransformerNet(ArchSpec(width=8, residual_blocks=1)),
                        {"name": "dots_in", "style": {k: v for k, v in records[1].items() if k != "style_weight"},
                         "loss_weights": {**LOSS_WEIGHTS, "style": 2.0}, "training": training})
    return {"styles": styles, "photos": photos, "cin": cin, "single": single, "folder": folder}


def _args(material, vgg_weights, *models: str, extra: tuple[str, ...] = ()) -> list[str]:
    out = [arg for m in models for arg in ("-m", m)]
    return out + ["--style-dir", str(material["styles"]), "--photos", str(material["photos"]), "--vgg-weights",
                  str(vgg_weights), "--size", "32", *extra]


def _direct(material, vgg_weights, style: str, weight: float, mix: list[float]) -> dict[str, float]:
    """The held-out terms computed by hand: style image, weight and style size given explicitly."""
    criterion = build_criterion(resolve_lossnet_spec("file", str(vgg_weights)), material["styles"] / f"{style}.png",
                                style_size=STYLE_SIZE, style_weight=weight, content_weight=1.0, tv_weight=1e-6,
                                content_layer="relu3_3", style_layers=LAYERS)
    net = load_model(material["cin"]).net
    contents = [p.tensor for p in load_photos([material["photos"]], size=32)]
    with torch.no_grad():
        outputs = [net(x, style=torch.tensor(mix)) for x in contents]
    return evaluate_terms(criterion.loss, outputs, contents)


@pytest.mark.slow
def test_style_k_is_scored_with_its_own_image_and_weight(material, vgg_weights, tmp_path) -> None:
    cin, single = str(material["cin"]), str(material["single"])
    results = eval_models.main(_args(material, vgg_weights, single, f"{cin}@dots", f"{cin}@stripes",
                                     extra=("--json", str(tmp_path / "r.json"))))
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(results))
    dots, stripes, alone = results[f"{cin}@dots"], results[f"{cin}@stripes"], results[single]
    assert (dots["style_name"], dots["style_index"], Path(dots["style_image"]).name, dots["style_weight"]) == \
        ("dots", 1, "dots.png", 2.0)
    assert (stripes["style_name"], stripes["style_index"], Path(stripes["style_image"]).name,
            stripes["style_weight"]) == ("stripes", 0, "stripes.png", 5.0)
    assert dots["style_size"] == stripes["style_size"] == STYLE_SIZE
    # apples to apples with the single-style model of the same painting: same image, weights, photos and size
    assert alone["style_image"] == dots["style_image"]
    assert all(alone[k] == dots[k] for k in eval_models.CRITERION_KEYS + ("photos", "size"))
    assert alone["vs_first_of_style"] == 1.0 and dots["vs_first_of_style"] == dots["loss"] / alone["loss"]
    assert "criterion_differs" not in dots
    expected = _direct(material, vgg_weights, "dots", 2.0, [0.0, 1.0])
    for key, value in expected.items():
        assert dots[key] == pytest.approx(value, rel=1e-5), key
    # negative controls: another weight, or the other style's image, gives other numbers
    assert dots["style"] != pytest.approx(_direct(material, vgg_weights, "dots", 5.0, [0.0, 1.0])["style"], rel=1e-3)
    assert stripes["style"] == pytest.approx(_direct(material, vgg_weights, "stripes", 5.0, [1.0, 0.0])["style"],
                                             rel=1e-5)
    assert dots["style"] != pytest.approx(stripes["style"], rel=1e-2)


def test_unknown_style_and_wrong_image_are_clear_errors(material, vgg_weights, tmp_path) -> None:
    cin = str(material["cin"])
    with pytest.raises(SystemExit, match=r"unknown style 'monet'; this model has: stripes, dots"):
        eval_models.main(_args(material, vgg_weights, f"{cin}@monet"))
    impostor = tmp_path / "styles"
    impostor.mkdir()
    Image.new("RGB", (48, 48), "red").save(impostor / "dots.png")
    args = _args(material, vgg_weights, f"{cin}@dots")
    args[args.index("--style-dir") + 1] = str(impostor)
    with pytest.raises(SystemExit, match="is not the image style 'dots' was trained on"):
        eval_models.main(args)


def test_style_references_and_unrecorded_weights() -> None:
    assert split_model_style("m.safetensors@great_wave") == ("m.safetensors", "great_wave")
    assert split_model_style("m.safetensors") == ("m.safetensors", None)
    assert split_model_style("a@b/m.safetensors@2") == ("a@b/m.safetensors", "2")
    arch = ArchSpec(width=8, residual_blocks=1, norm=NormSpec(kind="conditional", num_styles=2))
    # a style added to a single-style base: the base's record carries no weight, loss_weights is the new style's
    metadata = {"styles": [{"name": "old"}, {"name": "new", "style_weight": 2.0}], "loss_weights": {"style": 2.0}}
    with pytest.raises(Exception, match="does not record the style weight of 'old'.*--style-weight"):
        style_target(metadata, arch, "old")
    assert style_target(metadata, arch, "old", style_weight=7.0).weights.style == 7.0
    assert style_target(metadata, arch, "1").weights.style == 2.0
    with pytest.raises(Exception, match="does not record the style weight of 'old'"):
        style_target(metadata, arch, None)  # the default style is the first one: the same refusal
