"""The VGG16 loss network: Caffe file self-check, refusal of wrong files, truncation, taps and preprocessing.

Tests that need the 59 MB reference file use the ``vgg_weights`` fixture (skipped with a reason when ../shared is
absent); the rest use random weights with the right shapes.
"""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from styler.errors import WeightsError
from styler.loss.lossnet import (
    CAFFE_VGG16_SHA256,
    TAP_INDICES,
    LossNetSpec,
    VGG16Features,
    _build_layers,
    load_vgg16_state,
    resolve_lossnet_spec,
)

pytestmark = pytest.mark.usefixtures("single_thread")

JOHNSON_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")

# Probe values copied from weights/README.md §1.6 (not imported from styler, so the two can disagree).
README_PROBES = [
    ("0.weight", (0, 0, 0, 0), 0.42947057),
    ("0.bias", (0,), 0.73429835), ("0.bias", (1,), 0.093403675), ("0.bias", (2,), 0.06775674),
    ("0.bias", (3,), 0.8862966), ("0.bias", (25,), 0.7446502),
    ("2.weight", (63, 63, 2, 2), 0.016082443),
    ("5.bias", (1,), 0.06440781),
    ("24.weight", (269, 63, 1, 0), -0.011236359),
    ("26.bias", (510,), 0.23517226),
    ("28.weight", (400, 0, 0, 2), -0.008714244),
]
README_CONTENT_HASH = "163918e2abfd7e873bf34a89262901ff58a4e3a1123adaa8a5c95b75b65cfb29"
README_FILE_SHA256 = "927a3f71c53ade9eb7f6b1e9efde3fd62f764de089703baf4964c796d33bbed9"
CAFFE_MEAN_BGR = torch.tensor([103.939, 116.779, 123.68]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    """A full VGG16 ``features`` state dict with random weights (right keys and shapes)."""
    torch.manual_seed(5)
    layers = _build_layers(30)
    return {k: v.detach().clone() for k, v in layers.state_dict().items()}


@pytest.fixture(scope="module")
def caffe_state(vgg_weights) -> dict[str, torch.Tensor]:
    state, spec = load_vgg16_state(LossNetSpec(source="file", convention="caffe", path=str(vgg_weights)))
    assert spec.sha256 == README_FILE_SHA256
    return state


# --- the real file ---------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_caffe_file_loads_and_passes_probes(caffe_state):
    assert len(caffe_state) == 26
    assert sum(v.numel() for v in caffe_state.values()) == 14_714_688
    for key, index, expected in README_PROBES:
        assert abs(float(caffe_state[key][index]) - expected) <= 1e-6, (key, index)
    assert CAFFE_VGG16_SHA256 == README_FILE_SHA256


@pytest.mark.shared
def test_caffe_file_content_hash(vgg_weights):
    raw = torch.load(vgg_weights, map_location="cpu", weights_only=True)
    digest = hashlib.sha256()
    for key, value in raw.items():
        digest.update(key.encode("utf-8"))
        digest.update(value.contiguous().numpy().astype("<f4").tobytes(order="C"))
    assert digest.hexdigest() == README_CONTENT_HASH


@pytest.mark.shared
def test_load_builds_truncated_network_with_spec(vgg_weights):
    net, spec = VGG16Features.load(LossNetSpec(path=str(vgg_weights)), JOHNSON_TAPS)
    assert spec.sha256 == README_FILE_SHA256 and spec.name == "vgg16-caffe"
    assert spec.describe()["file"] == "vgg16-imagenet-caffe-features.pth"
    assert len(net.layers) == 23  # features[:23]
    assert sum(p.numel() for p in net.parameters()) == 7_635_264
    assert not any(p.requires_grad for p in net.parameters())
    out = net(torch.rand(1, 3, 32, 32))
    assert {k: v.shape[1] for k, v in out.items()} == {"relu1_2": 64, "relu2_2": 128, "relu3_3": 256, "relu4_3": 512}


@pytest.mark.shared
def test_corrupted_probe_is_refused(caffe_state, tmp_path):
    bad = {k: v.clone() for k, v in caffe_state.items()}
    bad["26.bias"][510] += 1e-3  # one probe value, far above the 1e-6 tolerance
    path = tmp_path / "vgg16-corrupted.pth"
    torch.save(bad, path)
    with pytest.raises(WeightsError, match=r"self-check failed.*26\.bias"):
        VGG16Features.load(LossNetSpec(path=str(path)), JOHNSON_TAPS)
    # The same file declared as torchvision convention skips the Caffe probes (the hint in the message).
    net, _ = VGG16Features.load(LossNetSpec(path=str(path), convention="torchvision"), ("relu1_2",))
    assert len(net.layers) == 4


@pytest.mark.shared
def test_squeezenet_file_is_not_vgg(shared):
    path = shared / "weights" / "squeezenet1_1-imagenet.pth"
    with pytest.raises(WeightsError, match="not a VGG16 features state_dict"):
        load_vgg16_state(LossNetSpec(path=str(path)))


# --- wrong files (no reference material needed) ---------------------------------------------------------------------


def test_wrong_shape_is_refused(random_state, tmp_path):
    bad = dict(random_state)
    bad["2.weight"] = torch.zeros(64, 64, 5, 5)
    path = tmp_path / "wrong-shape.pth"
    torch.save(bad, path)
    with pytest.raises(WeightsError, match=r"wrong shapes.*2\.weight"):
        load_vgg16_state(LossNetSpec(path=str(path)))


def test_random_vgg_file_fails_caffe_probes(random_state, tmp_path):
    path = tmp_path / "random-vgg.pth"
    torch.save(random_state, path)
    with pytest.raises(WeightsError, match="self-check failed"):
        load_vgg16_state(LossNetSpec(path=str(path), convention="caffe"))


@pytest.mark.parametrize("payload, pattern", [
    ({"conv.weight": torch.zeros(3, 3)}, "not a VGG16 features state_dict"),
    ([torch.zeros(3)], "expected a state_dict"),
    (None, "not a readable torch weights file"),
])
def test_non_vgg_files_are_refused(tmp_path, payload, pattern):
    path = tmp_path / "other.pth"
    if payload is None:
        path.write_bytes(b"definitely not a torch archive" * 10)
    else:
        torch.save(payload, path)
    with pytest.raises(WeightsError, match=pattern):
        load_vgg16_state(LossNetSpec(path=str(path)))


def test_missing_file_message_says_how_to_provide(tmp_path, monkeypatch):
    monkeypatch.delenv("STYLER_VGG_WEIGHTS", raising=False)
    with pytest.raises(WeightsError) as info:
        load_vgg16_state(LossNetSpec(path=str(tmp_path / "nope.pth")))
    message = str(info.value)
    assert "nope.pth" in message and "--vgg-weights" in message and "STYLER_VGG_WEIGHTS" in message
    with pytest.raises(WeightsError) as info:
        resolve_lossnet_spec(source="file")
    assert "--vgg-weights" in str(info.value) and "STYLER_VGG_WEIGHTS" in str(info.value)


def test_resolve_lossnet_spec_sources(monkeypatch, tmp_path):
    monkeypatch.delenv("STYLER_VGG_WEIGHTS", raising=False)
    monkeypatch.delenv("STYLER_VGG_CONVENTION", raising=False)
    assert resolve_lossnet_spec().source == "torchvision"
    assert resolve_lossnet_spec().convention == "torchvision"
    spec = resolve_lossnet_spec(weights="w.pth")
    assert (spec.source, spec.convention, spec.path) == ("file", "caffe", "w.pth")
    monkeypatch.setenv("STYLER_VGG_WEIGHTS", str(tmp_path / "env.pth"))
    monkeypatch.setenv("STYLER_VGG_CONVENTION", "torchvision")
    spec = resolve_lossnet_spec()
    assert (spec.source, spec.convention, spec.path) == ("file", "torchvision", str(tmp_path / "env.pth"))
    with pytest.raises(WeightsError):
        resolve_lossnet_spec(source="somewhere")
    with pytest.raises(WeightsError):
        LossNetSpec(convention="bgr")


# --- truncation, taps and preprocessing ------------------------------------------------------------------------------


@pytest.mark.parametrize("taps, layers", [(JOHNSON_TAPS, 23), (("relu2_2",), 9), (("relu1_1",), 2),
                                          (("relu3_3", "relu1_2"), 16), (("relu5_3",), 30)])
def test_truncated_at_deepest_tap(random_state, taps, layers):
    net = VGG16Features(random_state, "caffe", taps)
    assert len(net.layers) == layers
    assert isinstance(net.layers[-1], torch.nn.ReLU)


def test_unknown_or_empty_taps_raise(random_state):
    with pytest.raises(ValueError, match="unknown VGG16 taps"):
        VGG16Features(random_state, "caffe", ("relu9_9",))
    with pytest.raises(ValueError):
        VGG16Features(random_state, "caffe", ())


def test_shallower_tap_subset_matches_full_forward(random_state):
    net = VGG16Features(random_state, "caffe", JOHNSON_TAPS)
    x = torch.rand(2, 3, 32, 32)
    full = net(x)
    assert set(full) == set(JOHNSON_TAPS)
    shallow = net(x, taps=("relu1_2", "relu2_2"))
    assert set(shallow) == {"relu1_2", "relu2_2"}
    for key in shallow:
        torch.testing.assert_close(shallow[key], full[key], atol=0, rtol=0)


def test_taps_are_the_right_relu_outputs(random_state):
    """relu1_2 = features[3] and relu2_2 = features[8], recomputed with functional ops from the state dict."""
    net = VGG16Features(random_state, "caffe", ("relu2_2",))
    x = torch.rand(1, 3, 16, 16)
    out = net(x, taps=("relu1_2", "relu2_2"))
    s = random_state
    h = net.preprocess(x)
    h = F.relu(F.conv2d(h, s["0.weight"], s["0.bias"], padding=1))
    h = F.relu(F.conv2d(h, s["2.weight"], s["2.bias"], padding=1))
    torch.testing.assert_close(out["relu1_2"], h)
    h = F.max_pool2d(h, 2)
    h = F.relu(F.conv2d(h, s["5.weight"], s["5.bias"], padding=1))
    h = F.relu(F.conv2d(h, s["7.weight"], s["7.bias"], padding=1))
    torch.testing.assert_close(out["relu2_2"], h)
    assert TAP_INDICES["relu3_3"] == 15 and TAP_INDICES["relu4_3"] == 22


def test_caffe_preprocessing_formula(random_state):
    net = VGG16Features(random_state, "caffe", ("relu1_1",))
    x = torch.rand(2, 3, 5, 7)
    expected = 255 * x[:, [2, 1, 0]] - CAFFE_MEAN_BGR
    torch.testing.assert_close(net.preprocess(x), expected, atol=1e-4, rtol=0)
    # A red image becomes a large third (R) channel in BGR order.
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1
    assert net.preprocess(red)[0, :, 0, 0].tolist() == pytest.approx([-103.939, -116.779, 255 - 123.68], abs=1e-4)


def test_torchvision_preprocessing_formula(random_state):
    net = VGG16Features(random_state, "torchvision", ("relu1_1",))
    x = torch.rand(2, 3, 5, 7)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(net.preprocess(x), (x - mean) / std, atol=1e-5, rtol=0)


def test_lossnet_stays_frozen_and_in_eval(random_state):
    net = VGG16Features(random_state, "caffe", ("relu1_2",))
    net.train()
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    net(x)["relu1_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())
