"""`styler apply` / `info` / `models` end to end: input kinds, naming, exit codes, messages, stdin/stdout, imports."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styler.cli import main
from styler.devices import CPU_CAPS_ENV
from styler.io.modelfile import save_model
from styler.nn.network import ArchSpec, TransformerNet
from styler.nn.spec import NormSpec

REPO = Path(__file__).resolve().parents[2]
HAS_OPENVINO = importlib.util.find_spec("openvino") is not None
HAS_NNCF = importlib.util.find_spec("nncf") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="openvino is not installed")


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STYLER_MODEL_DIR", str(tmp_path / "models"))
    model = save_model(tmp_path / "models" / "tiny.pth", TransformerNet(ArchSpec(width=8, residual_blocks=1)),
                       {"name": "tiny", "style": "random"})
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (33, 47, 3), dtype=np.uint8)).save(photos / "odd.jpg")
    Image.fromarray(rng.integers(0, 255, (20, 24, 4), dtype=np.uint8), "RGBA").save(photos / "sub" / "alpha.png")
    Image.fromarray(rng.integers(0, 255, (21, 19), dtype=np.uint8), "L").convert("P").save(photos / "pal.gif")
    return {"model": model, "photos": photos, "tmp": tmp_path}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_directory_recursive_naming_and_json(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["apply", str(env["photos"]), "-m", "tiny", "--json", "-q"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] == 3 and summary["failed"] == 0
    photos = env["photos"]
    assert Image.open(photos / "odd_tiny.jpg").size == (47, 33)  # input size kept, odd sizes fine
    alpha = Image.open(photos / "sub" / "alpha_tiny.png")
    assert alpha.mode == "RGBA" and np.array_equal(np.asarray(alpha)[..., 3],
                                                   np.asarray(Image.open(photos / "sub" / "alpha.png"))[..., 3])
    assert (photos / "pal_tiny.png").exists()
    # a second run refuses to overwrite, and does not stylize its own outputs
    code, out, err = run(["apply", str(photos), "-m", "tiny", "--json", "-q"], capsys)
    summary = json.loads(out)
    assert code == 1 and summary["failed"] == 3 and all("--force" in r["error"] for r in summary["results"])
    code, out, err = run(["apply", str(photos), "-m", "tiny", "--force", "-q"], capsys)
    assert code == 0 and not list(photos.rglob("*_tiny_tiny*"))


def test_bad_inputs_do_not_stop_the_batch(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tmp = env["tmp"]
    (tmp / "corrupt.jpg").write_bytes(b"not a jpeg")
    (tmp / "empty_dir").mkdir()
    Image.new("L", (300, 300)).save(tmp / "bomb.png")
    args = ["apply", str(tmp / "corrupt.jpg"), str(tmp / "missing.png"), str(tmp / "empty_dir"), str(tmp / "bomb.png"),
            str(env["photos"] / "odd.jpg"), "-m", str(env["model"]), "--out-dir", str(tmp / "out"),
            "--max-pixels", "50000", "--json"]
    code, out, err = run(args, capsys)
    assert code == 1
    summary = json.loads(out)
    assert summary["ok"] == 1 and summary["failed"] == 4
    assert "not an image" in err and "no such file" in err and "no images" in err and "--max-pixels" in err
    assert (tmp / "out" / "odd_tiny.jpg").exists()


def test_options_and_usage_errors(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    src = env["photos"] / "odd.jpg"
    out_file = env["tmp"] / "o.png"
    code, _, err = run(["apply", str(src), "-m", "tiny", "-o", str(out_file), "--strength", "0"], capsys)
    assert code == 0
    same = np.asarray(Image.open(out_file).convert("RGB"), dtype=int)
    assert np.abs(same - np.asarray(Image.open(src).convert("RGB"), dtype=int)).max() == 0
    code, _, _ = run(["apply", str(src), "-m", "tiny", "-o", str(env["tmp"] / "s.png"), "--max-size", "20",
                      "--preserve-color", "--color-space", "lab", "--batch-size", "2", "--device", "cpu",
                      "--backend", "torch", "--tile-size", "16"], capsys)
    assert code == 0 and Image.open(env["tmp"] / "s.png").size == (20, 14)
    code, _, err = run(["apply", str(src), "-m", "tiny", "-o", str(src), "--force"], capsys)
    assert code == 1 and "overwrite an input" in err
    assert run(["apply", str(src), "--strength", "2", "-m", "tiny"], capsys)[0] == 2
    assert run(["apply", str(src), str(src), "-o", "x.png", "-m", "tiny"], capsys)[0] == 2
    assert run(["apply"], capsys)[0] == 2
    code, _, err = run(["apply", str(src), "-m", "nonexistent"], capsys)
    assert code == 1 and "model not found" in err
    wrong = env["tmp"] / "wrong.pth"
    wrong.write_bytes(b"garbage")
    code, _, err = run(["apply", str(src), "-m", str(wrong)], capsys)
    assert code == 1 and "error:" in err


@pytest.mark.slow
def test_compiled_bf16_backend_end_to_end(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    src = env["photos"] / "odd.jpg"
    code, out, err = run(["apply", str(src), "-m", "tiny", "-o", str(env["tmp"] / "c.png"), "--backend", "compiled",
                          "--precision", "bf16", "--json", "-q"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["backend"], summary["precision"], summary["ok"]) == ("compiled", "bf16", 1)
    assert Image.open(env["tmp"] / "c.png").size == (47, 33)
    reference = env["tmp"] / "r.png"
    assert run(["apply", str(src), "-m", "tiny", "-o", str(reference), "--backend", "torch", "-q"], capsys)[0] == 0
    compiled_pixels = np.asarray(Image.open(env["tmp"] / "c.png"), dtype=int)
    diff = np.abs(compiled_pixels - np.asarray(Image.open(reference), dtype=int))
    assert diff.max() <= 8  # bf16 rounding: a few levels of 255 at most
    code, _, err = run(["apply", str(src), "-m", "tiny", "--precision", "bf16"], capsys)
    assert code == 2 and "--backend openvino, compiled or torch" in err


def test_info_and_models(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["info", "tiny"], capsys)
    assert code == 0 and "sha256" in out and "instance" in out and "style:" in out
    code, out, _ = run(["info", str(env["model"]), "--json"], capsys)
    assert json.loads(out)["arch"]["width"] == 8
    code, out, _ = run(["models"], capsys)
    assert "tiny" in out


def _runtime_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("cpu runtime:"))


def test_info_says_which_cpu_runtime_runs(env: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_CAPS_ENV, "avx512_vnni")  # int8-native: the first apply measures the int8 gate
    code, out, _ = run(["info", "tiny"], capsys)
    assert code == 0
    if HAS_OPENVINO:
        assert _runtime_line(out) == ("cpu runtime: not known yet (the first apply measures the int8 quality gate) "
                                      "(CPU avx512_vnni)")
    else:
        assert _runtime_line(out) == "cpu runtime: onnx fp32 (CPU avx512_vnni)"
    monkeypatch.setenv(CPU_CAPS_ENV, "")  # neither bf16 nor int8: fp32, known without any measurement
    code, out, _ = run(["info", str(env["model"]), "--json"], capsys)
    runtime = json.loads(out)["cpu_runtime"]
    assert code == 0 and runtime["runs"] == ("openvino fp32" if HAS_OPENVINO else "onnx fp32")
    assert runtime["native_precisions"] == ["fp32"] and runtime["int8_gate"] is None
    assert not (env["tmp"] / "cache").exists()  # read from the caches only: nothing exported, calibrated, compiled
    # negative control: a multi-style model on the same int8-native CPU has no int8 graph to wait for: it is
    # known at once to run in OpenVINO's float path (fp32 here, bf16 where that is native)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1, norm=NormSpec.parse("cin:2")))
    save_model(env["tmp"] / "models" / "two.safetensors", net,
               {"name": "two", "style": {"name": "a"}, "styles": [{"name": "a"}, {"name": "b"}]})
    monkeypatch.setenv(CPU_CAPS_ENV, "avx512_vnni")
    code, out, _ = run(["info", "two"], capsys)
    assert code == 0 and _runtime_line(out) == (f"cpu runtime: {'openvino' if HAS_OPENVINO else 'onnx'} fp32 "
                                                "(CPU avx512_vnni)")
    monkeypatch.setenv(CPU_CAPS_ENV, "avx512_bf16,avx512_vnni")
    code, out, _ = run(["info", "two"], capsys)
    assert code == 0 and _runtime_line(out).startswith(
        f"cpu runtime: {'openvino bf16' if HAS_OPENVINO else 'onnx fp32'} (CPU ")


@needs_openvino
@pytest.mark.skipif(not HAS_NNCF, reason="nncf is not installed")
@pytest.mark.slow
def test_info_reads_the_int8_verdict_the_first_apply_measured(env: dict[str, Path],
                                                               capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_CAPS_ENV, "avx512_vnni")
    code, out, _ = run(["info", "tiny"], capsys)
    assert "not known yet" in _runtime_line(out) and not (env["tmp"] / "cache").exists()
    code, out, err = run(["apply", str(env["photos"] / "odd.jpg"), "-m", "tiny", "-o", str(env["tmp"] / "i.png"),
                          "--json", "-q"], capsys)
    assert code == 0, err
    gate = json.loads(out)["selection"]["int8_gate"]
    assert (env["tmp"] / "cache").is_dir() and isinstance(gate, dict)  # the apply did build and cache
    code, out, _ = run(["info", "tiny"], capsys)
    verdict = "passed" if gate["passed"] else "failed"
    assert code == 0 and f"int8 gate: {gate['psnr_db']:.1f} dB PSNR against fp32, {verdict}" in _runtime_line(out)
    assert _runtime_line(out).startswith("cpu runtime: openvino int8" if gate["passed"] else "cpu runtime: openvino")


def test_info_is_torch_free(env: dict[str, Path]) -> None:
    probe = ("import sys; from styler.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
             "    print('MODS', 'torch' in sys.modules, e.code, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, "info", "tiny"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert "MODS False 0" in done.stderr, done.stderr
    assert "cpu runtime:" in done.stdout and not (env["tmp"] / "cache").exists()


@needs_openvino
def test_json_selection_says_what_openvino_chose(env: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_CAPS_ENV, "")  # a CPU without native bf16 or int8: fp32, nothing to calibrate
    src = env["photos"] / "odd.jpg"
    code, out, err = run(["apply", str(src), "-m", "tiny", "-o", str(env["tmp"] / "ov.png"), "--backend",
                          "openvino", "--json", "-q"], capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert list(summary)[:6] == ["model", "model_path", "backend", "precision", "device", "selection"]
    assert summary["backend"] == "openvino"
    assert summary["selection"] == {"precision": "fp32", "inference_precision": "f32",
                                    "reason": "fp32: no native bf16 or int8 on this CPU", "int8_gate": None,
                                    "cpu_capabilities": "none"}
    # negative control: ONNX Runtime selects nothing, and says so with null (the key is always there)
    code, out, err = run(["apply", str(src), "-m", "tiny", "-o", str(env["tmp"] / "ort.png"), "--backend", "onnx",
                          "--json", "-q"], capsys)
    assert code == 0, err
    assert json.loads(out)["backend"] == "onnx" and json.loads(out)["selection"] is None


def test_int8_needs_the_openvino_backend(env: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    src = env["photos"] / "odd.jpg"
    for backend in ([], ["--backend", "auto"], ["--backend", "onnx"], ["--backend", "torch"],
                    ["--backend", "compiled"]):
        code, _, err = run(["apply", str(src), "-m", "tiny", "--precision", "int8", *backend], capsys)
        assert code == 2 and "--precision int8 needs --backend openvino" in err, (backend, err)
    assert not (env["photos"] / "odd_tiny.jpg").exists() and not (env["tmp"] / "cache").exists()  # nothing ran
    # negative control: with --backend openvino the option passes (the run then stops at the missing model)
    code, _, err = run(["apply", str(src), "-m", "nonexistent", "--precision", "int8", "--backend", "openvino"],
                       capsys)
    assert code == 1 and "model not found" in err and "needs --backend" not in err


def test_default_model_message(env: dict[str, Path], capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import styler.io.zoo

    # No default anywhere (independent of whether the repository's weights/ ships one), so this always asserts.
    monkeypatch.setenv("STYLER_MODEL_DIR", str(env["tmp"] / "nowhere"))
    monkeypatch.setattr(styler.io.zoo, "BUNDLED_DIR", env["tmp"] / "no_bundled_models")
    code, _, err = run(["apply", str(env["photos"] / "odd.jpg")], capsys)
    assert code == 1 and "no default model" in err and "-m" in err


def _cli(args: list[str], env: dict[str, Path], **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "styler", *args], capture_output=True, cwd=env["tmp"],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120, **kw)


@pytest.mark.slow
def test_stdin_stdout_and_real_photo(env: dict[str, Path], shared: Path) -> None:
    photo = sorted((shared / "data" / "content" / "eval").glob("*.jpg"))[0]
    data = photo.read_bytes()
    result = _cli(["apply", "-", "-m", "tiny", "--max-size", "96"], env, input=data)
    assert result.returncode == 0, result.stderr.decode()
    import io

    out = Image.open(io.BytesIO(result.stdout))
    assert out.format == "PNG" and max(out.size) == 96


@pytest.mark.slow
def test_imports_stay_light(env: dict[str, Path]) -> None:
    probe = ("import sys; from styler.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
             "print('MODS', 'torch' in sys.modules, 'torchvision' in sys.modules, code, file=sys.stderr)")
    helped = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert "MODS False False 0" in helped.stderr
    usage = subprocess.run([sys.executable, "-c", probe, "apply", "--strength", "7", "x.jpg"], capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert "MODS False False 2" in usage.stderr
    photo = env["photos"] / "odd.jpg"
    first = subprocess.run([sys.executable, "-c", probe, "apply", str(photo), "-m", "tiny", "-f"],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert "torchvision' in" not in first.stderr and " False 0" in first.stderr  # first run exports (torch)
    second = subprocess.run([sys.executable, "-c", probe, "apply", str(photo), "-m", "tiny", "-f"],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert "MODS False False 0" in second.stderr, second.stderr  # cached ONNX: no torch at all
