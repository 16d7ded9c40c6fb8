"""Stylizing with a multi-style (conditional norm) model: every backend applies the chosen style or blend, tiles
keep it, and a single-style model refuses styles it does not have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from styler.errors import StylerError
from styler.infer.options import StylizeOptions
from styler.infer.stylizer import Stylizer
from styler.io.images import RGBImage
from styler.io.modelfile import save_model
from styler.nn.kinds.conditional import ConditionalInstanceNorm2d
from styler.nn.network import TransformerNet
from styler.nn.spec import ArchSpec, NormSpec

NAMES = ("starry", "wave", "scream")


@pytest.fixture(scope="module")
def cin_model(tmp_path_factory) -> tuple[Path, TransformerNet]:
    torch.manual_seed(0)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1, norm=NormSpec.parse("cin:3"))).eval()
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, ConditionalInstanceNorm2d):
                layer.weight.uniform_(0.2, 3.0)
                layer.bias.uniform_(-1.0, 1.0)
        net.decoder[2].conv.weight.mul_(50)  # outputs of O(1), so styles differ visibly
    path = tmp_path_factory.mktemp("cin") / "three.safetensors"
    save_model(path, net, {"name": "three", "style": {"name": NAMES[0]}, "styles": [{"name": n} for n in NAMES]})
    return path, net


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_every_backend_applies_the_blend(cin_model, backend, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path))
    path, net = cin_model
    x = np.random.default_rng(0).random((1, 3, 36, 44), dtype=np.float32)
    stylizer = Stylizer(path, backend=backend, style="wave:0.25,scream:0.75")
    assert stylizer.style_names == list(NAMES)
    with torch.no_grad():
        expected = net(torch.from_numpy(x), style=torch.tensor([0.0, 0.25, 0.75])).numpy()
        first = net(torch.from_numpy(x), style=torch.tensor([1.0, 0.0, 0.0])).numpy()
    np.testing.assert_allclose(stylizer.run_batch(x), expected, atol=1e-5)
    assert np.abs(expected - first).max() > 1e-2  # negative control: the blend is not the default style
    stylizer.set_style(None)
    np.testing.assert_allclose(stylizer.run_batch(x), first, atol=1e-5)


def test_openvino_runs_the_blend_in_fp32_and_bf16_and_refuses_int8(cin_model, tmp_path, monkeypatch) -> None:
    """The style mix is the graph's second input in OpenVINO too: fp32 matches torch, bf16 stays close (and still
    tells the styles apart), int8 is refused with the reason, and auto says why it skipped int8."""
    pytest.importorskip("openvino")
    from styler.devices import cpu_capabilities, native_cpu_precisions

    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path))
    path, net = cin_model
    x = np.random.default_rng(0).random((1, 3, 36, 44), dtype=np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x), style=torch.tensor([0.0, 0.25, 0.75])).numpy()
        first = net(torch.from_numpy(x), style=torch.tensor([1.0, 0.0, 0.0])).numpy()
    fp32 = Stylizer(path, backend="openvino", precision="fp32", style="wave:0.25,scream:0.75")
    np.testing.assert_allclose(fp32.run_batch(x), expected, atol=1e-4)
    fp32.set_style(None)
    np.testing.assert_allclose(fp32.run_batch(x), first, atol=1e-4)
    assert np.abs(expected - first).max() > 1e-2  # negative control: the two mixes differ
    auto = Stylizer(path, backend="openvino", style="wave:0.25,scream:0.75")
    if "bf16" in native_cpu_precisions(cpu_capabilities()):
        assert auto.engine.precision == "bf16"
        error = np.abs(auto.run_batch(x) - expected).max()
        assert error < 0.1 * np.abs(expected - first).max(), error
    if "int8" in native_cpu_precisions(cpu_capabilities()):
        assert "int8 skipped: int8 is not calibrated for multi-style models" in auto.engine.selection["reason"]
    with pytest.raises(StylerError, match="int8 is not calibrated for multi-style models"):
        Stylizer(path, backend="openvino", precision="int8")


def test_openvino_folds_a_reused_mix_into_its_graph(cin_model, tmp_path, monkeypatch) -> None:
    """A mix used a second time runs on a graph with the mix folded in; every run, folded or not, is the torch
    output of the mix it was given, and a new mix starts on the general graph again."""
    pytest.importorskip("openvino")
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path))
    path, net = cin_model
    x = np.random.default_rng(4).random((1, 3, 36, 44), dtype=np.float32)
    mixes = {"wave:0.25,scream:0.75": [0.0, 0.25, 0.75], "starry": [1.0, 0.0, 0.0]}
    with torch.no_grad():
        expected = {k: net(torch.from_numpy(x), style=torch.tensor(v)).numpy() for k, v in mixes.items()}
    stylizer = Stylizer(path, backend="openvino", precision="fp32", style="wave:0.25,scream:0.75")
    engine = stylizer.engine
    for run in range(3):
        np.testing.assert_allclose(stylizer.run_batch(x), expected["wave:0.25,scream:0.75"], atol=1e-4)
        assert len(engine._specialized) == (0 if run == 0 else 1)  # folded from the second use on
    stylizer.set_style("starry")
    np.testing.assert_allclose(stylizer.run_batch(x), expected["starry"], atol=1e-4)  # the general graph
    assert len(engine._specialized) == 1
    np.testing.assert_allclose(stylizer.run_batch(x), expected["starry"], atol=1e-4)  # now folded too
    assert len(engine._specialized) == 2
    # negative control: the two mixes' outputs differ, so a stale folded graph would have failed above
    assert np.abs(expected["starry"] - expected["wave:0.25,scream:0.75"]).max() > 1e-2


def test_tiles_keep_the_blend(cin_model) -> None:
    path, _ = cin_model
    stylizer = Stylizer(path, backend="torch", style="scream")
    image = RGBImage(rgb=np.random.default_rng(1).random((90, 70, 3), dtype=np.float32))
    whole = stylizer.stylize(image, StylizeOptions(tile_size=0)).image.rgb
    tiled = stylizer.stylize(image, StylizeOptions(tile_size=32))
    assert tiled.tiled
    np.testing.assert_allclose(tiled.image.rgb, whole, atol=1e-5)


def test_style_errors(cin_model, tmp_path) -> None:
    path, _ = cin_model
    with pytest.raises(StylerError, match="unknown style 'monet'; this model has: starry, wave, scream"):
        Stylizer(path, backend="torch", style="monet")
    single = save_model(tmp_path / "one.safetensors", TransformerNet(ArchSpec(width=8, residual_blocks=1)),
                        {"name": "one", "style": {"name": "starry"}})
    Stylizer(single, backend="torch", style="starry")  # its own style: accepted, nothing to choose
    with pytest.raises(StylerError, match="unknown style 'wave'"):
        Stylizer(single, backend="torch", style="wave")


def test_cli_apply_style_and_info_list_the_styles(cin_model, tmp_path) -> None:
    """The real CLI: `styler info` lists the styles, `apply --style` paints the one asked for, a bad name is exit 1."""
    import subprocess
    import sys

    from PIL import Image

    path, _ = cin_model
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(2).random((40, 48, 3)) * 255).astype(np.uint8)).save(photo)
    env_cmd = [sys.executable, "-m", "styler"]
    info = subprocess.run([*env_cmd, "info", str(path)], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0 and "styles:      3: starry, wave, scream" in info.stdout, info.stdout
    outputs = {}
    for style in ("wave", "scream"):
        out = tmp_path / f"{style}.png"
        run = subprocess.run([*env_cmd, "apply", str(photo), "-m", str(path), "--style", style, "-o", str(out),
                              "--backend", "torch", "-q"], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        outputs[style] = np.asarray(Image.open(out), dtype=np.int16)
    assert np.abs(outputs["wave"] - outputs["scream"]).max() > 10
    bad = subprocess.run([*env_cmd, "apply", str(photo), "-m", str(path), "--style", "monet", "-o",
                          str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "unknown style 'monet'" in bad.stderr
