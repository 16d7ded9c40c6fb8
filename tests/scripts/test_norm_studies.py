"""scripts/norm_studies.py: the run plan, the contrast normalization of its photos, and how it writes its results
beside the report's (merged keys, one replaced section)."""

from __future__ import annotations

import argparse
import json

import numpy as np
from script_helpers import load_script

from styler.evidence.report import STUDIES_MARKER

studies = load_script("norm_studies")


def test_every_run_sees_the_same_images_and_the_studies_share_runs() -> None:
    runs = studies.plan(1200)
    names = [r.name for r in runs]
    assert len(names) == len(set(names))
    batch_runs = [r for r in runs if r.name[:2] in ("bn", "in") and r.dataset == "photos" and not r.extra]
    assert sorted({r.batch for r in batch_runs}) == [1, 2, 4, 8]
    assert {1200 // r.batch * r.batch for r in batch_runs} == {1200}  # same images seen at every batch size
    assert {r.dataset for r in runs} == {"photos", "contrast", "style"}
    assert [r.extra for r in runs if r.name.startswith("gn")] == [("--group-size", "2"), ("--group-size", "4"),
                                                                   ("--group-size", "8")]


def test_contrast_normalization_fixes_each_channels_mean_and_spread() -> None:
    rng = np.random.default_rng(0)
    dim = rng.random((40, 50, 3)).astype(np.float32) * 0.3 + 0.1  # a dark, low-contrast photo
    bright = dim * 2.0 + 0.1  # the same photo, brighter and with twice the contrast (no clipping)
    a, b = studies.contrast_normalize(dim), studies.contrast_normalize(bright)
    for out in (a, b):
        assert np.allclose(out.reshape(-1, 3).mean(0), 0.5, atol=0.02)
        assert np.allclose(out.reshape(-1, 3).std(0), 0.2, atol=0.02)
    assert np.abs(a - b).max() < 1e-4  # the photo's own brightness and contrast are gone ...
    assert np.abs(dim - bright).max() > 0.3  # ... which they were not before (the control)


def test_outputs_merge_into_measurements_and_replace_the_section(tmp_path, monkeypatch) -> None:
    out = tmp_path / "ablation"
    out.mkdir()
    (out / "measurements.json").write_text(json.dumps({"independence": [1, 2], "group_sweep": "old"}))
    (out / "report.md").write_text(f"# Normalization ablation\n\nbody\n\n{STUDIES_MARKER}\n\nold section\n")
    ctx = studies.Context(args=argparse.Namespace(threads=2, heldout_photos=20, findings=None),
                          runs_dir=tmp_path, images=1200)
    summary = {"group_sweep": {"1 (IN)": {}}, "_curves": {"IN": []}}
    monkeypatch.setattr(studies, "report_section", lambda *a: f"{STUDIES_MARKER}\n\nnew section\n")  # not the tables
    studies.write_outputs(ctx, summary, {}, out)
    data = json.loads((out / "measurements.json").read_text())
    assert data["independence"] == [1, 2] and data["group_sweep"] == {"1 (IN)": {}} and "_curves" not in data
    assert data["norm_studies_settings"]["images_seen"] == 1200
    text = (out / "report.md").read_text()
    assert "body" in text and "new section" in text and "old section" not in text
    assert text.count(STUDIES_MARKER) == 1
