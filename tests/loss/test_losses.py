"""Perceptual loss terms against hand computations on tiny tensors, with a tiny random-weight VGG16 head."""

from __future__ import annotations

import pytest
import torch

from styler.loss.losses import LossTerms, LossWeights, PerceptualLoss, evaluate_terms, gram_matrix, total_variation
from styler.loss.lossnet import VGG16Features, _build_layers

pytestmark = pytest.mark.usefixtures("single_thread")

TAPS = ("relu1_1", "relu1_2")
TINY_WEIGHTS = LossWeights(content=1.0, style=1.0, tv=1.0, content_layer="relu1_2", style_layers=TAPS)


@pytest.fixture(scope="module")
def tiny_lossnet() -> VGG16Features:
    """VGG16 truncated after relu1_2 (two convs), random weights scaled down to keep values moderate."""
    torch.manual_seed(3)
    state = {k: v.detach().clone() * 0.1 for k, v in _build_layers(3).state_dict().items()}
    return VGG16Features(state, "caffe", TAPS)


def hand_gram(f: torch.Tensor) -> torch.Tensor:
    n, c, h, w = f.shape
    out = torch.zeros(n, c, c, dtype=torch.float64)
    f = f.double()
    for b in range(n):
        for i in range(c):
            for j in range(c):
                out[b, i, j] = (f[b, i] * f[b, j]).sum() / (c * h * w)
    return out


def test_gram_matrix_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4  # F Fᵀ / (C·H·W)
    torch.testing.assert_close(gram_matrix(f), expected)
    batch = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(gram_matrix(batch).double(), hand_gram(batch), atol=1e-6, rtol=1e-6)
    # Per image: the second image does not affect the first one's Gram.
    torch.testing.assert_close(gram_matrix(batch[:1]), gram_matrix(batch)[:1])
    # Half-precision features are accumulated in fp32.
    assert gram_matrix(batch.half()).dtype == torch.float32


def test_total_variation_by_hand():
    x = torch.zeros(2, 1, 2, 3)
    x[0, 0] = torch.tensor([[0.0, 1.0, 1.0], [2.0, 1.0, 0.0]]) / 255
    # vertical: (2−0)² + (1−1)² + (0−1)² = 5; horizontal: 1 + 0 + 1 + 1 = 3  → 8 for image 0, 0 for image 1
    assert total_variation(x).item() == pytest.approx(4.0, rel=1e-5)
    assert total_variation(x[:1]).item() == pytest.approx(8.0, rel=1e-5)
    assert total_variation(torch.full((1, 3, 8, 8), 0.7)).item() == 0.0


def expected_terms(lossnet, weights, style, output, content) -> dict[str, float]:
    with torch.no_grad():
        f_out = lossnet(output)
        f_content = lossnet(content)
        f_style = lossnet(style)
    content_loss = ((f_out[weights.content_layer].double() - f_content[weights.content_layer].double()) ** 2).mean()
    style_loss = 0.0
    for name in weights.style_layers:
        g_out, g_style = hand_gram(f_out[name]), hand_gram(f_style[name])
        style_loss += ((g_out - g_style.expand_as(g_out)) ** 2).mean()
    x = output.double() * 255
    tv = (((x[:, :, 1:] - x[:, :, :-1]) ** 2).sum((1, 2, 3)) + ((x[..., 1:] - x[..., :-1]) ** 2).sum((1, 2, 3))).mean()
    return {"content": weights.content * float(content_loss), "style": weights.style * float(style_loss),
            "tv": weights.tv * float(tv)}


def test_each_term_against_hand_computation(tiny_lossnet):
    torch.manual_seed(11)
    style, output, content = torch.rand(1, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss = PerceptualLoss(tiny_lossnet, style, TINY_WEIGHTS)
    terms = loss(output, content)
    assert isinstance(terms, LossTerms)
    expected = expected_terms(tiny_lossnet, TINY_WEIGHTS, style, output, content)
    for key in ("content", "style", "tv"):
        assert getattr(terms, key).item() == pytest.approx(expected[key], rel=1e-4), key
        assert expected[key] > 0
    assert terms.total.item() == pytest.approx(sum(expected.values()), rel=1e-4)
    floats = terms.as_floats()
    assert set(floats) == {"loss", "content", "style", "tv"}
    assert floats["loss"] == pytest.approx(terms.total.item())


def test_weights_scale_each_term(tiny_lossnet):
    torch.manual_seed(12)
    style, output, content = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    unit = PerceptualLoss(tiny_lossnet, style, TINY_WEIGHTS)(output, content)
    weights = LossWeights(content=2.0, style=30.0, tv=1e-3, content_layer="relu1_2", style_layers=TAPS)
    scaled = PerceptualLoss(tiny_lossnet, style, weights)(output, content)
    assert scaled.content.item() == pytest.approx(2.0 * unit.content.item(), rel=1e-6)
    assert scaled.style.item() == pytest.approx(30.0 * unit.style.item(), rel=1e-6)
    assert scaled.tv.item() == pytest.approx(1e-3 * unit.tv.item(), rel=1e-6)
    assert scaled.total.item() == pytest.approx(scaled.content.item() + scaled.style.item() + scaled.tv.item(),
                                                rel=1e-6)


def test_zero_terms_when_output_matches_targets(tiny_lossnet):
    torch.manual_seed(13)
    style, content = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    loss = PerceptualLoss(tiny_lossnet, style, TINY_WEIGHTS)
    assert loss(content, content).content.item() == 0.0
    assert loss(style, content).style.item() == pytest.approx(0.0, abs=1e-9)
    assert loss(style, content).content.item() > 0


def test_gradients_flow_to_the_output_only(tiny_lossnet):
    torch.manual_seed(14)
    style = torch.rand(1, 3, 8, 8, requires_grad=True)
    loss = PerceptualLoss(tiny_lossnet, style, TINY_WEIGHTS)
    output = torch.rand(2, 3, 8, 8, requires_grad=True)
    content = torch.rand(2, 3, 8, 8, requires_grad=True)
    terms = loss(output, content)
    terms.total.backward()
    assert output.grad is not None and output.grad.abs().sum() > 0
    assert content.grad is None
    assert style.grad is None
    assert all(p.grad is None and not p.requires_grad for p in tiny_lossnet.parameters())
    assert all(not b.requires_grad for b in loss.style_grams().values())
    for logged in (terms.content, terms.style, terms.tv):
        assert not logged.requires_grad
    # Each term alone also reaches the output.
    for weights in (LossWeights(1, 0, 0, "relu1_2", TAPS), LossWeights(0, 1, 0, "relu1_2", TAPS),
                    LossWeights(0, 0, 1, "relu1_2", TAPS)):
        out = output.detach().clone().requires_grad_(True)
        PerceptualLoss(tiny_lossnet, style.detach(), weights)(out, content.detach()).total.backward()
        assert out.grad.abs().sum() > 0


def test_missing_taps_and_defaults(tiny_lossnet):
    with pytest.raises(ValueError, match="relu3_3"):
        PerceptualLoss(tiny_lossnet, torch.rand(1, 3, 8, 8), LossWeights())
    caffe, tv = LossWeights.for_lossnet("caffe"), LossWeights.for_lossnet("torchvision")
    assert (caffe.content, caffe.style, caffe.tv) == (1.0, 5.0, 1e-6)
    assert tv.content > 1e3 * caffe.content and tv.style > 1e3 * caffe.style
    assert caffe.style_layers == ("relu1_2", "relu2_2", "relu3_3", "relu4_3") and caffe.content_layer == "relu3_3"


def test_evaluate_terms_averages(tiny_lossnet):
    torch.manual_seed(15)
    loss = PerceptualLoss(tiny_lossnet, torch.rand(1, 3, 8, 8), TINY_WEIGHTS)
    pairs = [(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)) for _ in range(3)]
    mean = evaluate_terms(loss, [p[0] for p in pairs], [p[1] for p in pairs])
    single = [loss(o, c).as_floats() for o, c in pairs]
    for key in ("loss", "content", "style", "tv"):
        assert mean[key] == pytest.approx(sum(s[key] for s in single) / 3, rel=1e-6)


def test_gram_matrix_stays_fp32_under_bf16_autocast():
    """Training under bf16 autocast must not round the Gram matrices (the style loss is their small difference)."""
    torch.manual_seed(0)
    feats = torch.randn(2, 8, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = gram_matrix(feats)
    assert inside.dtype == torch.float32
    torch.testing.assert_close(inside, gram_matrix(feats), rtol=1e-6, atol=1e-7)
    # bf16 features (a loss network cast to bf16) still give an fp32 Gram
    assert gram_matrix(feats.to(torch.bfloat16)).dtype == torch.float32


def test_bf16_loss_network_accepts_fp32_images(tiny_lossnet):
    """Training casts the frozen conv stack to bf16 once; the fp32 image is converted (in fp32) then cast."""
    import copy

    net = copy.deepcopy(tiny_lossnet)
    net.layers.to(torch.bfloat16)
    assert net.dtype == torch.bfloat16 and net.scale.dtype == torch.float32
    x = torch.rand(1, 3, 32, 32)
    feats = net(x)
    reference = tiny_lossnet(x)
    for name, value in feats.items():
        assert value.dtype == torch.bfloat16
        scale = reference[name].abs().max().item()
        torch.testing.assert_close(value.float(), reference[name], rtol=0.05, atol=0.05 * scale)
