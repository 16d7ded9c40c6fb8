"""The bundled model zoo and `make demo`: every shipped model is intact, loads and stylizes, its shipped ONNX graph is
the export of exactly that file; the demo writes files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from styler.infer.onnx_export import shipped_paths
from styler.infer.onnx_records import load_trusted
from styler.io.files import sha256_file
from styler.io.modelfile import load_model, read_model_info
from styler.io.zoo import BUNDLED_DIR, default_model, read_manifest

REPO = Path(__file__).resolve().parents[2]
MANIFEST = read_manifest(BUNDLED_DIR)
ENTRIES = MANIFEST.get("models", [])


def test_manifest_lists_every_bundled_model_and_a_default():
    files = sorted(p.name for p in BUNDLED_DIR.glob("*.safetensors"))
    assert files, "styler/models/ ships no model"
    assert sorted(e["file"] for e in ENTRIES) == files
    assert default_model() == BUNDLED_DIR / f"{MANIFEST['default']}.safetensors"
    assert not list(BUNDLED_DIR.glob("*.pth")), "one copy of each model: the v2 file"
    assert REPO / "styler" / "models" == BUNDLED_DIR  # package data, found in the checkout


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_bundled_model_matches_manifest_and_stylizes(entry):
    path = BUNDLED_DIR / entry["file"]
    assert sha256_file(path) == entry["sha256"] and path.stat().st_size == entry["bytes"]
    assert read_model_info(path)["format_version"] == 2
    model = load_model(path)
    assert model.arch.norm.kind == entry["norm"] and model.arch.width == entry["width"]
    assert model.metadata["training"]["steps"] == entry["steps"]
    assert model.metadata["loss_weights"] == entry["loss_weights"]  # e.g. a lowered style weight is visible
    # the zoo's floor: at least 8,000 training images seen at >= 160 px
    assert entry["images_seen"] >= 8000 and entry["image_size"] >= 160
    photo = torch.rand(1, 3, 67, 45, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model.net(photo)
    assert out.shape == photo.shape
    assert torch.isfinite(out).all()
    assert out.std() > 0.02, "output is (nearly) constant"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_shipped_graph_is_the_export_of_its_model(entry):
    """Each shipped graph's record names the model's recorded sha256, and the graph computes what torch computes."""
    from styler.infer.backends.ort import open_session, run_session

    model_path = BUNDLED_DIR / entry["file"]
    graph, record_file = shipped_paths(model_path)
    record = json.loads(record_file.read_text())
    assert record["model_sha256"] == entry["sha256"] and record["model_file"] == entry["file"]
    found = load_trusted(graph, entry["sha256"])
    assert found.record is not None, found.reason
    assert found.record.meta["arch"] == read_model_info(model_path)["arch"]
    net = load_model(model_path).net
    photo = torch.rand(2, 3, 72, 52, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = net(photo).numpy()
    got = run_session(open_session(found.data, threads=1), photo.numpy())
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.slow
def test_demo_writes_stylized_photos(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--out", str(out),
                             "--max-size", "128"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"], summary
    from PIL import Image

    for item in summary["outputs"]:
        img = np.asarray(Image.open(out / item["file"]).convert("RGB"), dtype=np.float32)
        assert img.std() > 5
    if sum(1 for e in ENTRIES if e.get("set") == "ablation") >= 2:
        assert (out / "norm_comparison.png").is_file()
    for entry in (e for e in ENTRIES if e.get("set") == "multi-style"):
        painted = {item.get("style") for item in summary["outputs"] if item["model"] == entry["name"]}
        names = [s["name"] for s in entry["styles"]]
        assert painted == {*names, f"{names[0]}:0.5,{names[1]}:0.5"}  # every style, and the blend
        photo = Path(summary["photos"][0]).stem
        a, b = (np.asarray(Image.open(out / f"{photo}_{entry['name']}_{n}.png"), dtype=np.float32) for n in names[:2])
        assert np.abs(a - b).mean() > 5  # the same photo in two styles: two paintings, not one written twice
