"""The OpenVINO backend: the per-CPU precision rule on faked capability tables, exact CPU-kernel rewrites, the int8
quality gate (it rejects a network built to break under int8), cache invalidation when a model file changes, the
``auto`` order of CPU runtimes, and a torch-free ``styler apply`` on the new path. Tiny networks throughout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from styler.devices import CPU_CAPS_ENV, cpu_capabilities, native_cpu_precisions
from styler.errors import StylerError
from styler.infer.backends import BackendError, open_backend
from styler.infer.stylizer import StylizeOptions, Stylizer
from styler.io.images import RGBImage
from styler.io.modelfile import save_model
from styler.nn.network import ArchSpec, TransformerNet

pytest.importorskip("openvino")
needs_nncf = pytest.mark.skipif(not __import__("styler.infer.quantize", fromlist=["x"]).nncf_available(),
                                reason="nncf is not installed")
REPO = Path(__file__).resolve().parents[2]

#: Flag lines as /proc/cpuinfo prints them (abridged), and what each CPU should run: fastest native first.
CPUS = {
    "Sapphire Rapids (AMX)": ("avx2 avx512f avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8", ("int8", "bf16")),
    "Zen 4 (AVX512-BF16, VNNI)": ("avx2 avx512f avx512_vnni avx512_bf16", ("int8", "bf16")),
    "Ice Lake server (VNNI only)": ("avx2 avx512f avx512_vnni", ("int8",)),
    "Alder Lake (AVX-VNNI)": ("avx2 avx_vnni", ("int8",)),
    "Zen 3 / Skylake (neither)": ("avx2 avx512f", ()),
    "Graviton 2 (Arm dot product)": ("fp asimd asimddp", ("int8",)),
    "Raspberry Pi 3 (plain Arm)": ("fp asimd", ()),
}


def _cpuinfo(tmp_path: Path, name: str, flags: str) -> str:
    key = "Features" if "asimd" in flags else "flags"
    path = tmp_path / f"cpuinfo-{abs(hash(name))}"
    path.write_text(f"processor\t: 0\n{key}\t\t: {flags}\n\nprocessor\t: 1\n{key}\t\t: {flags}\n")
    return str(path)


def _net(width: int = 8, seed: int = 0) -> TransformerNet:
    """A random tiny network with an output of some contrast (mean 0.5, spread ~0.04): at initialization the output
    is nearly flat (spread 0.001), which int8 reproduces to 80 dB and so tests nothing. (Much more contrast, ×150,
    and a random network fails the gate itself: 39 dB; a trained one passes at 49 dB.)"""
    torch.manual_seed(seed)
    net = TransformerNet(ArchSpec(width=width, residual_blocks=1)).eval()
    with torch.no_grad():
        last = net.decoder[2].conv
        last.weight *= 30.0
        last.bias.mul_(30.0).add_(127.5)
    return net


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2)), 1e-20)))


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def tiny_model(tmp_path: Path, cache: Path) -> Path:
    return save_model(tmp_path / "tiny.pth", _net(), {"name": "tiny"})


def _photo(seed: int = 0, h: int = 44, w: int = 60) -> np.ndarray:
    return np.random.default_rng(seed).random((1, 3, h, w), dtype=np.float32)


@pytest.mark.parametrize("cpu", list(CPUS))
def test_precision_rule_on_a_faked_cpu_table(tmp_path: Path, cpu: str) -> None:
    flags, expected = CPUS[cpu]
    caps = cpu_capabilities(_cpuinfo(tmp_path, cpu, flags))
    assert native_cpu_precisions(caps) == (*expected, "fp32")


@needs_nncf
@pytest.mark.parametrize(("caps", "precision", "hint"), [("", "fp32", "f32"), ("avx512_bf16", "bf16", "bf16"),
                                                          ("avx512_vnni", "int8", "f32")])
def test_auto_runs_the_fastest_native_precision(tiny_model: Path, monkeypatch: pytest.MonkeyPatch, caps: str,
                                                precision: str, hint: str) -> None:
    monkeypatch.setenv(CPU_CAPS_ENV, caps)
    stylizer = Stylizer(tiny_model, device="cpu")  # backend auto
    engine = stylizer.engine
    assert (stylizer.backend, stylizer.precision, engine.selection["inference_precision"]) == \
        ("openvino", precision, hint)
    assert engine.model.loaded is None  # the torch model is never loaded into the handle
    x = _photo()
    with torch.inference_mode():
        expected = _net()(torch.from_numpy(x)).numpy()
    out = stylizer.run_batch(x)
    assert float(np.std(expected)) > 0.02  # some contrast, not a flat field
    if precision == "fp32":
        assert np.abs(out - expected).max() < 1e-4
    else:
        assert _psnr(out, expected) > 35
    if precision == "int8":
        gate = engine.selection["int8_gate"]
        assert gate["passed"] and gate["psnr_db"] >= 40 and gate["inference_precision"] == "f32"


def test_rewrites_are_exact_and_shaped_for_the_kernels(tiny_model: Path) -> None:
    from styler.infer import ovgraph
    from styler.infer.onnx_export import ensure_onnx

    model, notes, rewrites = ovgraph.optimize_for_cpu(ensure_onnx(tiny_model).data)
    assert notes == [] and len(rewrites) == 3
    assert sum("sub-pixel" in r for r in rewrites) == 2 and any("space-to-depth 9×9 8→3" in r for r in rewrites)
    backend = open_backend("openvino", tiny_model, device="cpu", precision="fp32")
    x = _photo(1, 68, 92)
    with torch.inference_mode():
        expected = _net()(torch.from_numpy(x)).numpy()
    assert np.abs(backend.run(x) - expected).max() < 1e-5


def test_space_to_depth_weights_match_a_direct_convolution() -> None:
    from styler.infer.ovgraph import space_to_depth_weights, subpixel_weights

    rng = np.random.default_rng(3)
    weights = rng.standard_normal((3, 5, 9, 9))
    x = torch.from_numpy(rng.standard_normal((1, 5, 16, 20)))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    direct = torch.nn.functional.conv2d(padded, torch.from_numpy(weights))
    blocks = torch.nn.functional.pixel_unshuffle(padded, 4)  # channel c·16 + phase: reorder to blocks_first
    blocks = blocks.reshape(1, 5, 16, *blocks.shape[2:]).transpose(1, 2).reshape(1, 80, *blocks.shape[2:])
    inner = torch.nn.functional.conv2d(blocks, torch.from_numpy(space_to_depth_weights(weights, 4)))
    inner = inner.reshape(1, 16, 3, *inner.shape[2:]).transpose(1, 2).reshape(1, 48, *inner.shape[2:])
    assert torch.allclose(torch.nn.functional.pixel_shuffle(inner, 4), direct, atol=1e-9)
    small = rng.standard_normal((4, 5, 3, 3))
    low = torch.from_numpy(rng.standard_normal((1, 5, 7, 9)))
    up = torch.nn.functional.pad(torch.nn.functional.interpolate(low, scale_factor=2, mode="nearest"), (1,) * 4,
                                 mode="reflect")
    direct = torch.nn.functional.conv2d(up, torch.from_numpy(small))
    phases = torch.nn.functional.conv2d(torch.nn.functional.pad(low, (1,) * 4, mode="replicate"),
                                        torch.from_numpy(subpixel_weights(small)))
    phases = phases.reshape(1, 4, 4, 7, 9).transpose(1, 2).reshape(1, 16, 7, 9)
    assert torch.allclose(torch.nn.functional.pixel_shuffle(phases, 2), direct, atol=1e-9)


def _outlier_net() -> TransformerNet:
    """A network that computes what :func:`_net` computes, but with one activation channel 10⁴× larger than the
    others: one instance norm's scale and shift ×10⁴ for channel 0, the next convolution's weights on that channel
    ×10⁻⁴ (ReLU commutes with positive scaling, so fp32 gives the same picture). A per-tensor int8 range for that
    activation then spends its 256 levels on channel 0 and rounds every other channel to zero."""
    net = _net()
    with torch.no_grad():
        block = net.residuals[0].block
        block[0].norm.weight[0] *= 1e4
        block[0].norm.bias[0] *= 1e4
        block[1].conv.weight[:, 0] *= 1e-4
    return net


@needs_nncf
def test_the_gate_rejects_a_model_made_to_break_under_int8(tmp_path: Path, cache: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_CAPS_ENV, "avx512_vnni,avx512_bf16")
    path = save_model(tmp_path / "outlier.pth", _outlier_net(), {"name": "outlier"})
    x = _photo(2)
    with torch.inference_mode():
        assert np.abs(_outlier_net()(torch.from_numpy(x)).numpy() - _net()(torch.from_numpy(x)).numpy()).max() < 1e-3
    auto = open_backend("auto", path, device="cpu")
    assert auto.name == "openvino" and auto.precision == "bf16", auto.selection
    assert "int8 kept off" in auto.selection["reason"] and "fails the quality gate" in auto.selection["reason"]
    assert len(auto.notes) == 1 and "fails the quality gate" in auto.notes[0] and "keeps bf16" in auto.notes[0]
    again = open_backend("auto", path, device="cpu")  # the verdict is cached: no second calibration, no note
    assert (again.precision, again.notes) == ("bf16", []) and "int8 kept off" in again.selection["reason"]
    from styler.infer.backends.openvino import describe

    described = describe(path)  # what `styler info` can say from the caches alone
    assert described["runs"] == "openvino bf16" and described["int8_gate"]["passed"] is False
    forced = open_backend("openvino", path, device="cpu", precision="int8")
    gate = forced.selection["int8_gate"]
    assert forced.precision == "int8" and not gate["passed"] and gate["psnr_db"] < 40 and gate["level"] == 2
    assert "running it because --precision int8 asks" in forced.notes[0]
    good = open_backend("auto", save_model(tmp_path / "good.pth", _net(), {"name": "good"}), device="cpu")
    assert good.precision == "int8" and good.selection["int8_gate"]["level"] == 1  # the same net, no outliers


def _entries(cache: Path, suffix: str) -> set[str]:
    return {p.name for p in (cache / "openvino").glob(f"*{suffix}")}


@needs_nncf
def test_a_changed_model_file_invalidates_every_cached_graph(tmp_path: Path, cache: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_CAPS_ENV, "avx512_vnni")
    path = save_model(tmp_path / "m.pth", _net(seed=0), {"name": "m"})
    x = _photo(4)
    first = open_backend("openvino", path, device="cpu", precision="int8")
    out_first = first.run(x)
    before = _entries(cache, ".xml")
    assert len(before) == 2  # the rewritten fp32 graph and the int8 graph for this CPU
    save_model(path, _net(seed=1), {"name": "m"})  # same path, new weights
    second = open_backend("openvino", path, device="cpu", precision="int8")
    assert len(_entries(cache, ".xml") - before) == 2  # both rebuilt under the new sha256
    with torch.inference_mode():
        expected = _net(seed=1)(torch.from_numpy(x)).numpy()
    assert _psnr(second.run(x), expected) > 35 > _psnr(out_first, expected)
    fp32 = open_backend("openvino", path, device="cpu", precision="fp32")
    assert np.abs(fp32.run(x) - expected).max() < 1e-4
    # A corrupted entry is never run: it is rebuilt (same name, new bytes that hash to its record).
    entry = next(p for p in (cache / "openvino").glob("m-*-ov*-r*.bin") if "avx" not in p.name
                 and p.name.replace(".bin", ".xml") not in before)
    entry.write_bytes(b"\0" * entry.stat().st_size)
    rebuilt = open_backend("openvino", path, device="cpu", precision="fp32")
    assert np.abs(rebuilt.run(x) - expected).max() < 1e-4 and entry.read_bytes().strip(b"\0")


def test_auto_order_of_cpu_runtimes(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import styler.infer.backends.openvino as ov_backend

    monkeypatch.setenv(CPU_CAPS_ENV, "")  # fp32: no calibration needed for this test
    assert open_backend("auto", tiny_model, device="cpu").name == "openvino"
    monkeypatch.setattr(ov_backend, "openvino_available", lambda: False)  # not installed: ONNX Runtime, no note
    plain = open_backend("auto", tiny_model, device="cpu")
    assert (plain.name, plain.notes) == ("onnx", [])
    monkeypatch.undo()
    monkeypatch.setenv(CPU_CAPS_ENV, "")

    def broken(*args: object, **kwargs: object) -> None:
        raise BackendError("simulated failure")

    monkeypatch.setattr(ov_backend.OpenVinoBackend, "__init__", broken)
    fallback = open_backend("auto", tiny_model, device="cpu")
    assert fallback.name == "onnx"
    assert fallback.notes == ["OpenVINO backend unavailable (simulated failure); using ONNX Runtime"]


def test_forced_precisions_are_checked(tiny_model: Path) -> None:
    with pytest.raises(StylerError, match="int8 runs on the openvino backend"):
        open_backend("torch", tiny_model, device="cpu", precision="int8")
    with pytest.raises(StylerError, match="int8 runs on the openvino backend"):
        open_backend("auto", tiny_model, device="cpu", precision="int8")
    with pytest.raises(StylerError, match="add --backend openvino"):
        open_backend("onnx", tiny_model, device="cpu", precision="bf16")
    from styler.infer.backends import ModelHandle
    from styler.infer.backends.openvino import OpenVinoBackend

    with pytest.raises(BackendError, match="CPU only"):
        OpenVinoBackend(ModelHandle(tiny_model), device="cuda")


def test_tiles_go_to_eager_torch_from_openvino(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_CAPS_ENV, "")
    photo = RGBImage(rgb=np.random.default_rng(5).random((90, 70, 3), dtype=np.float32))
    stylizer = Stylizer(tiny_model, backend="openvino", device="cpu")
    tiled = stylizer.stylize(photo, StylizeOptions(tile_size=32, stats_max_pixels=10**9))
    assert tiled.tiled and tiled.backend == "torch" and stylizer.backend == "openvino"
    untiled = stylizer.stylize(photo, StylizeOptions(tile_size=0))
    assert untiled.backend == "openvino" and np.abs(tiled.image.rgb - untiled.image.rgb).max() < 1e-4


@needs_nncf
@pytest.mark.slow
def test_apply_through_openvino_never_imports_torch(tmp_path: Path, cache: Path) -> None:
    model = save_model(tmp_path / "tiny.pth", _net(), {"name": "tiny"})
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 255, (40, 52, 3), dtype=np.uint8)).save(photo)
    env = {**os.environ, "PYTHONPATH": str(REPO), "STYLER_CACHE_DIR": str(cache), CPU_CAPS_ENV: "avx512_vnni"}
    # 'lazy': what a one-shot apply should not import either (tqdm: no bar for one photo), counted only when the
    # interpreter had not imported it before styler did
    probe = ("import json, sys\nbefore = set(sys.modules)\nfrom styler.cli import main\ntry:\n    main(sys.argv[1:])\n"
             "except SystemExit as e:\n    code = e.code\nprint(json.dumps({'torch': 'torch' in sys.modules, 'nncf': "
             "'nncf' in sys.modules, 'lazy': sorted({'tqdm'} & (set(sys.modules) - before)), "
             "'code': code}), file=sys.stderr)\n")
    args = ["apply", str(photo), "-m", str(model), "-o", str(tmp_path / "out.png"), "-f", "--json", "-q"]
    runs = [subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env,
                           timeout=300) for _ in range(2)]  # the first exports and calibrates, the second must not
    for run in runs:
        assert json.loads(run.stderr.strip().splitlines()[-1])["code"] == 0, run.stderr
        assert (json.loads(run.stdout)["backend"], json.loads(run.stdout)["precision"]) == ("openvino", "int8")
    assert json.loads(runs[1].stderr.strip().splitlines()[-1]) == {"torch": False, "nncf": False, "lazy": [],
                                                                   "code": 0}
    assert Image.open(tmp_path / "out.png").size == (52, 40)
