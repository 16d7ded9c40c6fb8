"""The bundled model zoo and `make demo`: every shipped model is intact, loads and stylizes; the demo writes files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from styler.io.files import sha256_file
from styler.io.modelfile import load_model
from styler.io.zoo import BUNDLED_DIR, default_model, read_manifest

REPO = Path(__file__).resolve().parents[2]
MANIFEST = read_manifest(BUNDLED_DIR)
ENTRIES = MANIFEST.get("models", [])


def test_manifest_lists_every_bundled_model_and_a_default():
    files = sorted(p.name for p in BUNDLED_DIR.glob("*.pth"))
    assert files, "weights/ ships no model"
    assert sorted(e["file"] for e in ENTRIES) == files
    assert default_model() == BUNDLED_DIR / f"{MANIFEST['default']}.pth"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["name"] for e in ENTRIES])
def test_bundled_model_matches_manifest_and_stylizes(entry):
    path = BUNDLED_DIR / entry["file"]
    assert sha256_file(path) == entry["sha256"]
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


@pytest.mark.slow
def test_demo_writes_stylized_photos(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "demo.py"), "--out", str(out),
                             "--max-size", "128"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"], summary
    for item in summary["outputs"]:
        from PIL import Image

        img = np.asarray(Image.open(out / item["file"]).convert("RGB"), dtype=np.float32)
        assert img.std() > 5
    if sum(1 for e in ENTRIES if e.get("set") == "ablation") >= 2:
        assert (out / "norm_comparison.png").is_file()
