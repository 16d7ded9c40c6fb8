"""`styler report`: Markdown + PNGs and the single-file HTML, with loss curves from run logs and SN weight charts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import make_tiny_model, smooth_photo
from styler.cli import main
from styler.evidence.report import ReportOptions, build_report

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("report")
    models = [make_tiny_model(root / "m_in.pth", "in"), make_tiny_model(root / "m_bn.pth", "bn"),
              make_tiny_model(root / "m_sn.pth", "sn+bn")]
    # a training log next to two of the models, as `styler train` writes it
    for model, scale in ((models[0], 1.0), (models[2], 1.3)):
        run = model.with_suffix(".run")
        run.mkdir()
        records = [{"step": s, "loss": scale * 1e5 / s, "content": 5e4 / s, "style": 5e4 / s, "tv": 1.0}
                   for s in range(10, 60, 10)]
        (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + "{torn")
    photos = []
    for i in range(3):
        path = root / f"p{i}.png"
        Image.fromarray((smooth_photo(i, 40) * 255).astype(np.uint8)).save(path)
        photos.append(path)
    return {"models": models, "photos": photos, "root": root}


def test_markdown_report(setup, tmp_path: Path) -> None:
    result = build_report(setup["models"], setup["photos"], tmp_path / "md",
                          options=ReportOptions(size=32, cell=48, fp64=True))
    text = result.path.read_text()
    assert result.path.name == "report.md"
    for heading in ("## Side by side", "## Batch independence", "## Contrast and brightness",
                    "## Train/eval gap of BN and SN", "## Training", "## What each norm normalizes over"):
        assert heading in text
    assert {"compare", "independence", "contrast", "loss_curves", "sn_weights_m_sn"} <= set(result.figures)
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (result.folder / link).stat().st_size > 1000, link
    # the measured numbers are in the tables: IN independent, BN in train mode not
    assert any(r.norm == "IN" and r.independent for r in result.independence)
    assert all(r.independent for r in result.independence if r.norm == "IN")
    assert not any(r.independent for r in result.independence if r.norm == "BN" and r.mode.startswith("train"))
    assert "**NO**" in text and "H, W: one mean/variance per image *and* channel" in text
    assert {g.norm for g in result.gaps} == {"BN", "SN+BN"}
    data = json.loads((result.folder / "measurements.json").read_text())
    assert len(data["independence"]) == len(result.independence)
    # Markdown tables stay well formed: every row of a table has as many cells as its header
    for block in text.split("\n\n"):
        lines = [ln for ln in block.splitlines() if ln.startswith("|")]
        if lines:
            counts = {len(re.split(r"(?<!\\)\|", ln)) for ln in lines}
            assert len(counts) == 1, block


def test_rerunning_the_report_keeps_the_norm_studies(setup, tmp_path: Path) -> None:
    """The studies' keys in measurements.json and their section of report.md survive a new report; the report's
    own keys are replaced (a stale value of its own does not survive: the control)."""
    from styler.evidence.report import MULTISTYLE_MARKER, STUDIES_MARKER

    folder = tmp_path / "kept"
    folder.mkdir()
    (folder / "measurements.json").write_text(json.dumps({"group_sweep": {"1 (IN)": 1.5}, "independence": ["stale"]}))
    (folder / "report.md").write_text(f"# old report\n\nold body\n\n{STUDIES_MARKER}\n\n## Norm studies\n\nkept\n"
                                      f"\n{MULTISTYLE_MARKER}\n\n## Many styles\n\nalso kept\n")
    result = build_report(setup["models"][:1], setup["photos"][:2], folder, options=ReportOptions(size=32, cell=48))
    data = json.loads((folder / "measurements.json").read_text())
    assert data["group_sweep"] == {"1 (IN)": 1.5} and data["independence"] != ["stale"]
    text = result.path.read_text()
    assert text.endswith(f"{STUDIES_MARKER}\n\n## Norm studies\n\nkept\n\n{MULTISTYLE_MARKER}\n\n## Many styles\n\n"
                         "also kept\n") and "old body" not in text
    assert text.count(STUDIES_MARKER) == 1 and text.count(MULTISTYLE_MARKER) == 1


def test_each_appended_section_is_replaced_alone_and_in_order() -> None:
    from styler.evidence.report import MULTISTYLE_MARKER, STUDIES_MARKER, replace_section, split_sections

    text = replace_section("# report\n\nbody\n", MULTISTYLE_MARKER, "## Many styles\n\nv1\n")
    text = replace_section(text, STUDIES_MARKER, "## Norm studies\n\ns1\n")  # goes before the later one
    assert text.index(STUDIES_MARKER) < text.index(MULTISTYLE_MARKER) and text.startswith("# report\n\nbody\n")
    text = replace_section(text, MULTISTYLE_MARKER, "## Many styles\n\nv2\n")
    head, sections = split_sections(text)
    assert head.strip() == "# report\n\nbody" and "s1" in sections[STUDIES_MARKER]
    assert "v2" in sections[MULTISTYLE_MARKER] and "v1" not in text  # control: the old version is gone
    with pytest.raises(ValueError, match="unknown report section marker"):
        replace_section(text, "<!-- other -->", "x")


def test_html_report_is_self_contained(setup, tmp_path: Path) -> None:
    result = build_report(setup["models"][:1], setup["photos"][:2], tmp_path / "html",
                          options=ReportOptions(size=32, cell=48, html=True))
    page = result.path.read_text()
    assert result.path.name == "report.html"
    assert page.count("data:image/png;base64,") >= 4  # grid, independence, contrast, loss curves
    assert "src='compare.png'" not in page and "<table>" in page


def test_cli_report_with_real_photos(shared, setup, tmp_path: Path, capsys) -> None:
    eval_dir = shared / "data" / "content" / "eval"
    photos = [eval_dir / "kodak_kodim03.png", eval_dir / "skimage_chelsea.png"]
    out = tmp_path / "cli"
    with pytest.raises(SystemExit) as exc:
        main(["report", "-m", str(setup["models"][0]), "-m", str(setup["models"][1]), *map(str, photos),
              "-o", str(out), "--size", "32", "--cell", "48"])
    assert exc.value.code == 0, capsys.readouterr()
    assert (out / "report.md").stat().st_size > 1000
    assert (out / "compare.png").is_file() and (out / "independence.png").is_file()
