"""scripts/multistyle_report.py: the per-style quality table against the bar, and its own section of report.md."""

from __future__ import annotations

import argparse
import json

from script_helpers import load_script

from styler.evidence.report import MULTISTYLE_MARKER, STUDIES_MARKER

report = load_script("multistyle_report")


def _score(style: str, loss: float, weight: float = 5.0) -> dict:
    return {"loss": loss, "content": loss * 0.7, "style": loss * 0.3, "tv": 1.0, "style_name": style,
            "style_weight": weight, "photos": 20, "size": 256}


SCORES = {"wave_in": _score("wave", 100.0, 2.0), "cin.safetensors@wave": _score("wave", 108.0, 2.0),
          "scream_in": _score("scream", 100.0), "cin.safetensors@scream": _score("scream", 125.0)}


def test_each_multi_style_score_meets_its_own_single_style_model() -> None:
    rows = {r["style"]: r for r in report.per_style_rows(SCORES)}
    assert rows["wave"]["single_model"] == "wave_in" and abs(rows["wave"]["ratio"] - 1.08) < 1e-9
    assert rows["wave"]["within_bar"]
    assert not rows["scream"]["within_bar"]  # the control: 1.25 misses the 10 % bar and the table says so
    table = "\n".join(report.loss_table(list(rows.values())))
    assert "| wave | 2 | wave_in | 100 | 108 | 1.080 |" in table and "| **no** |" in table


def test_the_section_replaces_only_its_own(tmp_path) -> None:
    scores = tmp_path / "eval.json"
    scores.write_text(json.dumps(SCORES))
    curve = tmp_path / "curve.json"
    curve.write_text(json.dumps({
        "style": "kiss", "style_image": "art/kiss.jpg", "base_model": "m/cin.safetensors", "eval_every": 50,
        "photos": 20, "training": {"batch_size": 4, "image_size": 160, "lr": 0.001},
        "reference": {"loss": 100.0, "content": 70.0, "style": 30.0, "steps": 2000},
        "points": [{"step": 300, "loss": 104.0, "content": 73.0, "style": 31.0},
                   {"step": 150, "loss": 109.0, "content": 76.0, "style": 33.0}]}))
    target = tmp_path / "report.md"
    target.write_text(f"# Normalization ablation\n\nbody\n\n{STUDIES_MARKER}\n\n## Norm studies\n\nkept\n\n"
                      f"{MULTISTYLE_MARKER}\n\nold multi-style text\n")
    args = ["--eval", str(scores), "--add-style", str(curve), "--report", str(target)]
    report.main(args)
    text = target.read_text()
    assert "old multi-style text" not in text and "kept" in text and "body" in text
    assert text.index(STUDIES_MARKER) < text.index(MULTISTYLE_MARKER)
    assert "| within 10% of it | 150 | 600 | 0.07 |" in text and "| within 5% of it | 300 | 1,200 | 0.15 |" in text
    assert "| at or below the from-scratch loss | not within 300 steps |" in text  # the control: never reached
    assert "(300) the added style's loss is 104 (content 73, style 31), 1.040× the reference" in text
    report.main(args)  # rewriting is idempotent: one section, same text
    assert target.read_text() == text and text.count(MULTISTYLE_MARKER) == 1
    empty = report.section(argparse.Namespace(report=str(target), eval=None, showcase=None, add_style=None,
                                              findings=None, model=None, plot=None))
    assert empty.startswith("## One network, many styles") and "|" not in empty  # nothing measured: no tables
