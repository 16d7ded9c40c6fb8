"""The apply-only install, simulated in this environment: a subprocess in which torch, torchvision, matplotlib, onnx
(and openvino) cannot be imported. The real thing, a wheel in a fresh venv, is test_wheel.py (slow)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styler.io.zoo import BUNDLED_DIR, read_manifest

REPO = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "torchvision", "matplotlib", "onnx", "openvino")
PRELUDE = (f"import sys\nfor name in {BLOCKED!r}:\n    sys.modules[name] = None\n"
           "from styler.cli import main\nmain(sys.argv[1:])\n")
INSTALL = "pip install 'styler[train]'"


def styler(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "STYLER_CACHE_DIR": str(cwd / "cache")}
    env.pop("STYLER_MODEL_DIR", None)
    return subprocess.run([sys.executable, "-c", PRELUDE, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


@pytest.fixture()
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (30, 42, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("command", [["train", "-s", "x.jpg", "-d", "photos"], ["train", "--help"],
                                     ["compare", "-m", "a", "p.jpg"], ["independence", "-m", "a", "-t", "p.jpg"],
                                     ["report", "-m", "a", "p.jpg", "-o", "out"]])
def test_training_and_evidence_commands_say_what_to_install(tmp_path: Path, command: list[str]) -> None:
    result = styler(command, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: `styler {command[0]}` needs PyTorch (missing: torch, torchvision, matplotlib), which this install of "
        f"styler does not have; install it with: {INSTALL}"]


def test_help_models_and_info_work(tmp_path: Path) -> None:
    assert styler(["--help"], tmp_path).returncode == 0
    listed = styler(["models"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {entry["name"] for entry in read_manifest(BUNDLED_DIR)["models"]}
    assert all(name in listed.stdout for name in names) and "* starry_night_in" in listed.stdout
    info = styler(["info", "starry_night_in"], tmp_path)
    assert info.returncode == 0, info.stderr
    assert "sha256:" in info.stdout and "424,899 parameters" in info.stdout and "instance" in info.stdout


def test_apply_with_the_default_model_runs_on_its_shipped_graph(tmp_path: Path, photo: Path) -> None:
    result = styler(["apply", str(photo), "--json", "-q"], tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "photo_starry_night_in.png"
    assert Image.open(out).size == (42, 30) and np.asarray(Image.open(out)).std() > 5
    assert '"backend": "onnx"' in result.stdout
    assert not (tmp_path / "cache").exists()  # the shipped graph: nothing exported, nothing cached


def test_what_needs_torch_says_so(tmp_path: Path, photo: Path) -> None:
    import json

    import torch

    from styler.io.modelfile import save_model
    from styler.nn.network import ArchSpec, TransformerNet

    net = TransformerNet(ArchSpec(width=8, residual_blocks=1))
    save_model(tmp_path / "mine.safetensors", net, {"name": "mine"})
    torch.save({"format": "styler-model", "format_version": 1, "arch": json.dumps(net.arch.to_dict()),
                "metadata": "{}", "state_dict": net.state_dict()}, tmp_path / "old.pth")  # a v1 file
    for args, fragment in (
            (["apply", str(photo), "-m", str(tmp_path / "mine.safetensors")], "ships no ONNX graph"),
            (["apply", str(photo), "--backend", "torch"], "the torch backend"),
            (["apply", str(photo), "--device", "cuda"], "--device cuda"),
            (["info", str(tmp_path / "old.pth")], "v1 model file")):
        result = styler(args, tmp_path)
        assert result.returncode == 1, (args, result.stderr)
        assert fragment in result.stderr and INSTALL in result.stderr and "Traceback" not in result.stderr, args
    info = styler(["info", str(tmp_path / "mine.safetensors")], tmp_path)  # a v2 file needs no torch to explain
    assert info.returncode == 0 and "width 8" in info.stdout
