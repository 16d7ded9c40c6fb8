"""Library behaviour of styler.infer.stylizer: sizes, colour preservation, strength, backends, batching, tiling
choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from styler.errors import ModelFileError, StylerError
from styler.infer.color import lab_to_rgb, preserve_color, rgb_to_lab, rgb_to_ycbcr
from styler.infer.sizing import processing_size
from styler.infer.stylizer import StylizeOptions, Stylizer, stylize_image, stylize_tensor
from styler.io.images import RGBImage
from styler.io.modelfile import save_model
from styler.io.zoo import find_model
from styler.nn.network import ArchSpec, TransformerNet


@pytest.fixture()
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    return save_model(tmp_path / "tiny.pth", TransformerNet(ArchSpec(width=8, residual_blocks=1)), {"name": "tiny"})


def _photo(h: int = 37, w: int = 53) -> RGBImage:
    rng = np.random.default_rng(0)
    return RGBImage(rgb=rng.random((h, w, 3), dtype=np.float32))


def test_processing_size() -> None:
    assert processing_size((1000, 500)) == (1000, 500)
    assert processing_size((1000, 500), max_size=400) == (400, 200)
    assert processing_size((1000, 500), scale=0.5) == (500, 250)
    assert processing_size((1000, 500), scale=2, max_size=1000) == (1000, 500)


def test_colour_conversions_roundtrip() -> None:
    rgb = np.random.default_rng(1).random((8, 8, 3)).astype(np.float32)
    assert np.abs(lab_to_rgb(rgb_to_lab(rgb)) - rgb).max() < 1e-4


@pytest.mark.parametrize("space", ["ycbcr", "lab"])
def test_preserve_color_keeps_chroma(space: str) -> None:
    rng = np.random.default_rng(2)
    photo = (0.25 + 0.5 * rng.random((16, 16, 3))).astype(np.float32)  # away from the gamut edges
    styled = (0.3 + 0.4 * rng.random((16, 16, 3))).astype(np.float32)
    out = preserve_color(photo, styled, space)
    if space == "ycbcr":
        assert np.abs(rgb_to_ycbcr(out)[..., 1:] - rgb_to_ycbcr(photo)[..., 1:]).max() < 0.02
        assert np.abs(rgb_to_ycbcr(out)[..., 0] - rgb_to_ycbcr(styled)[..., 0]).max() < 0.02
    else:
        assert np.abs(rgb_to_lab(out)[..., 0] - rgb_to_lab(styled)[..., 0]).max() < 1.0


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_strength_zero_returns_input_and_odd_sizes(tiny_model: Path, backend: str) -> None:
    stylizer = Stylizer(tiny_model, backend=backend, device="cpu")
    photo = _photo()
    out = stylizer.stylize(photo, StylizeOptions(strength=0.0)).image
    assert np.array_equal(out.rgb, photo.rgb)
    full = stylizer.stylize(photo).image
    assert full.rgb.shape == photo.rgb.shape


def test_onnx_matches_torch(tiny_model: Path) -> None:
    a = Stylizer(tiny_model, backend="torch", device="cpu")
    b = Stylizer(tiny_model, backend="onnx", device="cpu")
    assert b.backend == "onnx"
    batch = np.random.default_rng(3).random((2, 3, 45, 31), dtype=np.float32)
    assert np.abs(a.run_batch(batch) - b.run_batch(batch)).max() < 1e-4
    again = Stylizer(tiny_model, backend="onnx", device="cpu")  # served from the cache
    assert again.backend == "onnx" and again.name == "tiny"


def test_batching_equals_one_by_one(tiny_model: Path) -> None:
    stylizer = Stylizer(tiny_model, backend="torch", device="cpu")
    images = [_photo(), _photo(20, 24), _photo()]
    together = stylizer.stylize_many(images, batch_size=4)
    alone = [stylizer.stylize(img) for img in images]
    for x, y in zip(together, alone):
        assert np.abs(x.image.rgb - y.image.rgb).max() < 1e-5


def test_automatic_tiling_matches(tiny_model: Path) -> None:
    stylizer = Stylizer(tiny_model, backend="torch", device="cpu")
    photo = _photo(90, 70)
    whole = stylizer.stylize(photo, StylizeOptions(tile_size=0))
    tiled = stylizer.stylize(photo, StylizeOptions(tile_size=32, stats_max_pixels=10**9))
    assert tiled.tiled and not whole.tiled
    assert np.abs(whole.image.rgb - tiled.image.rgb).max() < 1e-5
    tiny_budget = stylizer.stylize(photo, StylizeOptions(memory_budget=1e-4))
    assert tiny_budget.tiled


def test_stylize_tensor_and_image(tiny_model: Path) -> None:
    from PIL import Image

    model = Stylizer(tiny_model, backend="torch", device="cpu")
    x = torch.rand(1, 3, 40, 44)
    assert stylize_tensor(model.model.load(), x).shape == x.shape
    img = Image.new("RGBA", (30, 20), (10, 200, 30, 128))
    out = stylize_image(model, img, preserve_color="ycbcr", strength=0.5)
    assert out.size == (30, 20) and out.mode == "RGBA"


def test_model_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path) -> None:
    monkeypatch.setenv("STYLER_MODEL_DIR", str(tmp_path))
    assert find_model("tiny") == tmp_path / "tiny.pth"
    with pytest.raises(ModelFileError, match="not found"):
        find_model("nope")
    (tmp_path / "default.txt").write_text("tiny\n")
    assert find_model(None) == tmp_path / "tiny.pth"


def test_bf16_precision_is_close_to_fp32(tiny_model: Path) -> None:
    reference = Stylizer(tiny_model, backend="torch", device="cpu")
    bf16 = Stylizer(tiny_model, backend="torch", device="cpu", precision="bf16")
    assert (reference.precision, bf16.precision) == ("fp32", "bf16")
    batch = np.random.default_rng(4).random((1, 3, 40, 36), dtype=np.float32)
    ref = reference.run_batch(batch)
    out = bf16.run_batch(batch)
    assert out.dtype == np.float32 and out.shape == ref.shape
    spread = float(ref.max() - ref.min())
    assert 0 < np.abs(out - ref).max() < 0.03 * spread  # rounded, but the same picture
    with pytest.raises(StylerError, match="torch or compiled backend"):
        Stylizer(tiny_model, backend="onnx", device="cpu", precision="bf16")


@pytest.mark.slow
def test_compiled_backend_matches_eager(tiny_model: Path) -> None:
    """torch.compile'd network (forced fp32 so the comparison is tight) equals the eager reference."""
    eager = Stylizer(tiny_model, backend="torch", device="cpu")
    compiled = Stylizer(tiny_model, backend="compiled", device="cpu", precision="fp32")
    assert (compiled.backend, compiled.precision) == ("compiled", "fp32")
    batch = np.random.default_rng(5).random((1, 3, 33, 29), dtype=np.float32)  # odd size: padded, cropped back
    out = compiled.run_batch(batch)
    if compiled.notes:  # no working C++ compiler here: the fallback is tested below
        pytest.skip(compiled.notes[0])
    np.testing.assert_allclose(out, eager.run_batch(batch), atol=1e-4, rtol=1e-4)
    # precision "auto" picks bf16 exactly where the hardware has native bf16
    from styler.devices import bf16_is_fast

    auto = Stylizer(tiny_model, backend="compiled", device="cpu")
    assert auto.precision == ("bf16" if bf16_is_fast("cpu") else "fp32")


def test_compile_failure_falls_back_to_eager(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a working compiler still stylizes: eager, with a note saying why."""

    def broken_compile(module, **kwargs):
        def run(x):
            raise RuntimeError("InductorError: no C++ compiler found")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    stylizer = Stylizer(tiny_model, backend="compiled", device="cpu", precision="fp32")
    batch = np.random.default_rng(6).random((1, 3, 24, 24), dtype=np.float32)
    out = stylizer.run_batch(batch)
    assert any("torch.compile failed" in note and "no C++ compiler" in note for note in stylizer.notes)
    reference = Stylizer(tiny_model, backend="torch", device="cpu").run_batch(batch)
    np.testing.assert_allclose(out, reference, atol=1e-5)
    stylizer.run_batch(batch)  # later batches go straight to the eager copy
    assert len(stylizer.notes) == 1
