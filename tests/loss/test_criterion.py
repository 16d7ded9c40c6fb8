"""build_criterion: weights over the convention's defaults, the truncated loss network, the style image, bf16."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from styler.io.files import sha256_file
from styler.loss.criterion import build_criterion, cast_lossnet_to_bf16, resolve_loss_weights
from styler.loss.losses import LossWeights, PerceptualLoss
from styler.loss.lossnet import LossNetSpec, VGG16Features, _build_layers
from styler.loss.taps import TAP_INDICES

pytestmark = pytest.mark.usefixtures("single_thread")

SHALLOW = dict(content_layer="relu1_2", style_layers=("relu1_1", "relu1_2"))


@pytest.fixture(scope="module")
def random_vgg_file(tmp_path_factory: pytest.TempPathFactory) -> LossNetSpec:
    """Random VGG16 features in the torchvision convention (which has no published probe values to check)."""
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("vgg") / "random-vgg16.pth"
    torch.save(_build_layers(30).state_dict(), path)
    return LossNetSpec(source="file", convention="torchvision", path=str(path))


def test_weights_default_to_the_convention_and_given_values_win() -> None:
    assert resolve_loss_weights("caffe") == LossWeights() == LossWeights.for_lossnet("caffe")
    assert resolve_loss_weights("torchvision") == LossWeights.for_lossnet("torchvision")
    weights = resolve_loss_weights("torchvision", style=3.0, tv=0.0, style_layers=["relu2_2"])
    assert (weights.content, weights.style, weights.tv) == (1e5, 3.0, 0.0)
    assert weights.style_layers == ("relu2_2",) and weights.content_layer == "relu3_3"


def test_criterion_equals_the_hand_built_loss(random_vgg_file: LossNetSpec) -> None:
    style = torch.rand(1, 3, 24, 20)
    criterion = build_criterion(random_vgg_file, style, style_weight=7.0, **SHALLOW)
    assert criterion.weights == resolve_loss_weights("torchvision", style=7.0, **SHALLOW)
    assert criterion.lossnet.sha256 == sha256_file(random_vgg_file.path)
    assert criterion.style_image is style and not criterion.bf16
    assert len(criterion.loss.lossnet.layers) == TAP_INDICES["relu1_2"] + 1  # truncated after the deepest tap

    network, _ = VGG16Features.load(random_vgg_file, ("relu1_2", "relu1_1", "relu1_2"))
    reference = PerceptualLoss(network, style, criterion.weights)
    output, content = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        got, expected = criterion.loss(output, content).as_floats(), reference(output, content).as_floats()
    assert got == pytest.approx(expected, rel=1e-6)


def test_style_file_is_resized_to_style_size(random_vgg_file: LossNetSpec, tmp_path: Path) -> None:
    path = tmp_path / "style.png"
    Image.new("RGB", (40, 20), (200, 30, 30)).save(path)
    criterion = build_criterion(random_vgg_file, path, style_size=16, **SHALLOW)
    assert tuple(criterion.style_image.shape) == (1, 3, 8, 16)


def test_bf16_casts_the_conv_stack_after_the_fp32_style_grams(random_vgg_file: LossNetSpec) -> None:
    style = torch.rand(1, 3, 16, 16)
    fp32 = build_criterion(random_vgg_file, style, **SHALLOW)
    bf16 = build_criterion(random_vgg_file, style, bf16=True, **SHALLOW)
    assert bf16.bf16 and bf16.loss.lossnet.dtype == torch.bfloat16 and fp32.loss.lossnet.dtype == torch.float32
    for name, gram in bf16.loss.style_grams().items():
        assert gram.dtype == torch.float32
        torch.testing.assert_close(gram, fp32.loss.style_grams()[name], rtol=0, atol=0)
    assert cast_lossnet_to_bf16(fp32.loss) is fp32.loss and fp32.loss.lossnet.dtype == torch.bfloat16


def test_with_style_shares_the_loss_network(random_vgg_file: LossNetSpec) -> None:
    criterion = build_criterion(random_vgg_file, torch.rand(1, 3, 16, 16), **SHALLOW)
    other_style = torch.rand(1, 3, 16, 16)
    other = criterion.with_style(other_style)
    assert other.loss.lossnet is criterion.loss.lossnet and other.weights == criterion.weights
    fresh = build_criterion(random_vgg_file, other_style, **SHALLOW)
    for name, gram in other.loss.style_grams().items():
        torch.testing.assert_close(gram, fresh.loss.style_grams()[name], rtol=0, atol=0)
    with pytest.raises(ValueError, match="fp32 criterion"):
        build_criterion(random_vgg_file, other_style, bf16=True, **SHALLOW).with_style(other_style)
