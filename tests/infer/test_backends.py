"""The backend protocol and factory: what each backend declares, the ``auto`` rule and its notes, a new runtime as
one registry entry, and tiling handed to eager torch by backends that cannot tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from styler.errors import ModelFileError, StylerError
from styler.infer.backends import RUNTIMES, BackendError, ModelHandle, open_backend
from styler.infer.stylizer import StylizeOptions, Stylizer
from styler.io.images import RGBImage
from styler.io.modelfile import save_model
from styler.nn.network import ArchSpec, TransformerNet


@pytest.fixture()
def tiny_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    return save_model(tmp_path / "tiny.pth", TransformerNet(ArchSpec(width=8, residual_blocks=1)), {"name": "tiny"})


class EchoBackend:
    """A stand-in runtime (the identity network) registered by a test, as a new runtime would be."""

    name = "echo"
    precision = "fp32"
    tiles = False
    activation_cost = 1

    def __init__(self, model: ModelHandle, *, device: str, threads: int | None = None,
                 precision: str = "auto") -> None:
        self.model, self.device, self.notes = model, device, []
        model.meta = {"name": "echoed", "arch": {"width": 8, "residual_blocks": 1}}

    def run(self, batch: np.ndarray) -> np.ndarray:
        assert batch.shape[2] % 4 == 0 and batch.shape[3] % 4 == 0 and batch.dtype == np.float32
        return batch.copy()


@pytest.mark.parametrize("name", ["torch", "onnx", "compiled"])
def test_every_backend_declares_the_protocol(tiny_model: Path, name: str) -> None:
    backend = open_backend(name, tiny_model, device="cpu", precision="fp32")
    assert (backend.name, backend.device, backend.precision, backend.notes) == (name, "cpu", "fp32", [])
    assert backend.tiles == (name != "onnx") and backend.activation_cost > 0
    if name != "compiled":  # compiling takes tens of seconds; test_stylizer covers the compiled network
        out = backend.run(np.random.default_rng(0).random((2, 3, 24, 32), dtype=np.float32))
        assert out.shape == (2, 3, 24, 32) and out.dtype == np.float32
    assert backend.model.meta["name"] == "tiny"


def test_auto_prefers_a_torch_free_cpu_runtime(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenVINO where it is installed, else ONNX Runtime; neither loads the torch model."""
    from styler.infer.backends import openvino

    backend = open_backend("auto", tiny_model, device="cpu")
    expected = "openvino" if openvino.openvino_available() else "onnx"
    assert backend.name == expected and backend.notes == [] and backend.model.loaded is None
    monkeypatch.setattr(openvino, "openvino_available", lambda: False)
    backend = open_backend("auto", tiny_model, device="cpu")
    assert backend.name == "onnx" and backend.notes == [] and backend.model.loaded is None


def test_auto_falls_back_to_torch_with_a_note(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import styler.infer.backends.ort as ort
    from styler.infer.backends import openvino

    monkeypatch.setattr(openvino, "openvino_available", lambda: False)
    monkeypatch.setattr(ort, "onnxruntime_available", lambda: False)
    backend = open_backend("auto", tiny_model, device="cpu")
    assert backend.name == "torch"
    assert backend.notes == ["ONNX Runtime backend unavailable (onnxruntime is not installed); using torch"]
    with pytest.raises(BackendError, match="onnxruntime is not installed"):
        open_backend("onnx", tiny_model, device="cpu")


def test_auto_raises_for_a_broken_model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"garbage")
    with pytest.raises(ModelFileError):
        open_backend("auto", broken, device="cpu")


def test_names_are_checked_before_the_model_is_looked_up() -> None:
    with pytest.raises(StylerError, match="unknown backend 'tpu'; choose from auto, torch, onnx, compiled"):
        open_backend("tpu", "no-such-model")
    with pytest.raises(StylerError, match="unknown precision"):
        open_backend("torch", "no-such-model", precision="fp16")
    with pytest.raises(StylerError, match="torch or compiled backend"):
        open_backend("auto", "no-such-model", precision="bf16")
    with pytest.raises(ModelFileError, match="not found"):
        open_backend("torch", "no-such-model")


def test_a_new_runtime_is_one_registry_entry(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RUNTIMES, "echo", f"{__name__}:EchoBackend")
    stylizer = Stylizer(tiny_model, backend="echo", device="cpu")
    assert (stylizer.backend, stylizer.name) == ("echo", "echoed")
    photo = RGBImage(rgb=np.random.default_rng(1).random((37, 53, 3), dtype=np.float32))
    result = stylizer.stylize(photo, StylizeOptions(tile_size=0))
    assert result.backend == "echo" and not result.tiled
    assert np.array_equal(result.image.rgb, photo.rgb)  # odd size: padded for the backend, cropped back


def test_backends_that_cannot_tile_hand_tiles_to_eager_torch(tiny_model: Path) -> None:
    photo = RGBImage(rgb=np.random.default_rng(2).random((90, 70, 3), dtype=np.float32))
    options = StylizeOptions(tile_size=32, stats_max_pixels=10**9)
    onnx = Stylizer(tiny_model, backend="onnx", device="cpu")
    tiled = onnx.stylize(photo, options)
    assert tiled.tiled and tiled.backend == "torch" and onnx.backend == "onnx"
    reference = Stylizer(tiny_model, backend="torch", device="cpu").stylize(photo, StylizeOptions(tile_size=0))
    assert np.abs(tiled.image.rgb - reference.image.rgb).max() < 1e-5
    assert onnx.stylize(photo, StylizeOptions(tile_size=0)).backend == "onnx"
