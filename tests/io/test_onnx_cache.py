"""ONNX graph trust (issue #19 items 2 and 3): a graph runs only when its record says it is this model's export;
replaced, corrupt or stale entries are rebuilt; entries are written atomically, once, under concurrent processes; an
unusable cache folder never stops apply."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import styler.infer.onnx_export as onnx_export
from styler.cli import main
from styler.infer.backends import BackendError, open_backend
from styler.infer.backends.ort import open_session, run_session
from styler.infer.onnx_export import cache_dir, ensure_onnx, export_entry, shipped_paths
from styler.infer.onnx_records import record_path
from styler.io.files import sha256_file
from styler.io.modelfile import load_model, save_model
from styler.nn.network import ArchSpec, TransformerNet

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("single_thread")


def _model(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1))
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return save_model(path, net, {"name": path.stem})


@pytest.fixture()
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    return {"a": _model(tmp_path / "a.safetensors", 1), "b": _model(tmp_path / "b.safetensors", 2)}


def _runs_as_torch(graph_data: bytes, model: Path) -> bool:
    """Whether the graph computes this model's network (and not some other model's)."""
    photo = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = load_model(model).net(photo).numpy()
    return bool(np.abs(run_session(open_session(graph_data, threads=1), photo.numpy()) - expected).max() < 1e-4)


def test_first_use_exports_then_the_cache_is_used(models: dict[str, Path]) -> None:
    first = ensure_onnx(models["a"])
    assert first.source == "exported" and first.path.parent == cache_dir() and first.notes == []
    record = json.loads(record_path(first.path).read_text())
    assert record["model_sha256"] == sha256_file(models["a"]) and record["onnx_sha256"] == sha256_file(first.path)
    assert record["versions"]["torch"] and record["versions"]["onnxruntime"] and record["opset"] == 17
    again = ensure_onnx(models["a"])
    assert again.source == "cache" and again.data == first.data and again.meta["name"] == "a"
    assert not [p for p in cache_dir().iterdir() if p.name.endswith(".tmp")]


def test_another_models_graph_copied_over_is_never_run(models: dict[str, Path]) -> None:
    a, b = ensure_onnx(models["a"]), ensure_onnx(models["b"])
    shutil.copyfile(b.path, a.path)  # the attack/accident of issue #19: apply would paint b's style
    rebuilt = ensure_onnx(models["a"])
    assert rebuilt.source == "exported" and _runs_as_torch(rebuilt.data, models["a"])
    shutil.copyfile(b.path, a.path)
    shutil.copyfile(record_path(b.path), record_path(a.path))  # graph and record both b's: the record names b
    rebuilt = ensure_onnx(models["a"])
    assert rebuilt.source == "exported" and _runs_as_torch(rebuilt.data, models["a"])
    assert not _runs_as_torch(b.data, models["a"])  # the two models really differ


@pytest.mark.parametrize("damage", ["truncate", "flip", "record", "stale", "recipe"])
def test_corrupt_or_stale_entries_are_rebuilt(models: dict[str, Path], damage: str) -> None:
    entry = ensure_onnx(models["a"])
    data = bytearray(entry.data)
    record = json.loads(record_path(entry.path).read_text())
    if damage == "truncate":
        entry.path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":
        data[len(data) // 2] ^= 0xFF
        entry.path.write_bytes(bytes(data))
    elif damage == "record":
        record_path(entry.path).write_text("{not json")
    else:
        if damage == "stale":
            record["versions"]["torch"] = "1.0.0"
        else:
            record["export_version"] = 0
        record_path(entry.path).write_text(json.dumps(record))
    rebuilt = ensure_onnx(models["a"])
    assert rebuilt.source == "exported" and rebuilt.data == entry.data
    assert ensure_onnx(models["a"]).source == "cache"


def test_without_torch_a_refused_entry_is_a_clear_error(models: dict[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    entry = ensure_onnx(models["a"])
    entry.path.write_bytes(entry.data[:100])
    monkeypatch.setattr(onnx_export, "has_torch", lambda: False)
    with pytest.raises(BackendError) as info:
        ensure_onnx(models["a"])
    message = str(info.value)
    assert "pip install 'styler[train]'" in message and "recorded size" in message and "a.safetensors" in message
    with pytest.raises(BackendError, match=r"ships no ONNX graph.*pip install 'styler\[train\]'"):
        ensure_onnx(models["b"])  # never exported, no graph beside it


def test_a_stale_entry_is_still_used_when_torch_cannot_rebuild_it(models: dict[str, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    entry = ensure_onnx(models["a"])
    record = json.loads(record_path(entry.path).read_text())
    record["versions"]["onnxruntime"] = "0.1"
    record_path(entry.path).write_text(json.dumps(record))
    monkeypatch.setattr(onnx_export, "has_torch", lambda: False)
    assert ensure_onnx(models["a"]).source == "cache"


def test_a_graph_shipped_beside_the_model_comes_first(models: dict[str, Path]) -> None:
    graph, record = shipped_paths(models["a"])
    export_entry(models["a"], sha256_file(models["a"]), None, graph)
    found = ensure_onnx(models["a"])
    assert found.source == "shipped" and found.path == graph and not cache_dir().exists()
    shutil.copyfile(ensure_onnx(models["b"]).path, graph)  # a wrong graph beside the model is skipped
    found = ensure_onnx(models["a"])
    assert found.source == "exported" and _runs_as_torch(found.data, models["a"])


def _blocked_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    if how == "STYLER_CACHE_DIR under a file":
        monkeypatch.setenv("STYLER_CACHE_DIR", str(blocker / "cache"))
        return
    monkeypatch.delenv("STYLER_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    if how == "HOME under a file":
        monkeypatch.setenv("HOME", str(blocker / "home"))
    else:  # a read-only HOME (root ignores permissions, so this variant needs an ordinary user)
        if os.geteuid() == 0:
            pytest.skip("running as root: a read-only folder is still writable")
        home = tmp_path / "home"
        home.mkdir()
        home.chmod(0o500)
        monkeypatch.setenv("HOME", str(home))


@pytest.mark.parametrize("how", ["STYLER_CACHE_DIR under a file", "HOME under a file", "read-only HOME"])
def test_an_unusable_cache_never_stops_apply(models: dict[str, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             how: str) -> None:
    _blocked_cache(tmp_path, monkeypatch, how)
    graph = ensure_onnx(models["a"])
    assert graph.source == "temporary" and graph.path.is_file() and _runs_as_torch(graph.data, models["a"])
    assert "not writable" in graph.notes[0] and "temporary folder" in graph.notes[0]
    folder = graph.path.parent
    del graph
    assert not folder.exists()  # the temporary export goes with the graph that holds it
    backend = open_backend("onnx", models["a"], device="cpu")
    assert backend.name == "onnx" and "not writable" in backend.notes[0]
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(photo)
    with pytest.raises(SystemExit) as exc:
        main(["apply", str(photo), "-m", str(models["a"]), "-o", str(tmp_path / "out.png"), "--backend", "onnx"])
    err = capsys.readouterr().err
    assert exc.value.code == 0 and "warning: ONNX cache" in err and "Traceback" not in err
    assert Image.open(tmp_path / "out.png").size == (24, 20)


_WORKER = """
import sys
from styler.infer.onnx_export import ensure_onnx
print(ensure_onnx(sys.argv[1]).source)
"""


@pytest.mark.slow
def test_concurrent_processes_export_once_and_atomically(models: dict[str, Path]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(models["a"])], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    results = [worker.communicate(timeout=300) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), [err for _, err in results]
    sources = sorted(out.strip() for out, _ in results)
    assert sources.count("exported") == 1 and sources.count("cache") == 2, sources
    assert ensure_onnx(models["a"]).source == "cache"
    assert not [p for p in cache_dir().iterdir() if p.name.endswith(".tmp")]
