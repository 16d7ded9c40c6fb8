"""Norm ablation on tiny random-weight models: batch independence (with BN as the negative control), contrast
sensitivity, train/eval gap, the measurement suite, comparison grid geometry, and the `compare` / `independence`
commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import SIZE, make_tiny_model, smooth_photo
from styler.cli import main
from styler.evidence.compare import compare_grid, compare_outputs
from styler.evidence.contrast import DEFAULT_TRANSFORMS, contrast_sensitivity
from styler.evidence.figures import label_font
from styler.evidence.gap import train_eval_gap
from styler.evidence.independence import independence_figure, measure_independence
from styler.evidence.models import as_loaded, model_label
from styler.evidence.photos import Photo, load_photo, load_photos
from styler.evidence.suite import format_suite, measure_suite
from styler.evidence.tables import format_table
from styler.io.modelfile import load_model

REPO = Path(__file__).resolve().parents[2]
PER_INSTANCE = ["in", "gn", "ln", "sn"]


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {n: make_tiny_model(folder / f"tiny_{n.replace('+', '_')}.pth", n)
            for n in ["in", "bn", "gn", "ln", "sn", "sn+bn"]}


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i in range(3):
        path = folder / f"photo{i}.png"
        Image.fromarray((smooth_photo(i) * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def photos(photo_files: list[Path]) -> list[Photo]:
    return load_photos(photo_files, SIZE, square=True)


def _mates(photos: list[Photo]) -> dict[str, torch.Tensor]:
    return {p.name: p.tensor for p in photos[1:]}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_per_instance_norms_are_batch_independent(models, photos, dtype) -> None:
    for norm in PER_INSTANCE:
        rows = measure_independence(models[norm], photos[0], _mates(photos), dtype=dtype)
        assert {r.mode for r in rows} == {"eval", "train"}
        assert {r.batch for r in rows} == {"A", "B", "C"}
        assert {r.position for r in rows} >= {0, 1, 2}  # the target at different positions
        atol = 1e-4 if dtype == torch.float32 else 1e-10  # norms.md §6.5
        for row in rows:
            assert row.independent, row
            assert row.max_abs <= atol * (1 + row.output_max), row
            assert row.output_max > 0.05  # a real signal, not a dead net
            assert row.psnr_db > 80


def test_batch_norm_in_train_mode_is_the_negative_control(models, photos) -> None:
    before = {k: v.clone() for k, v in load_model(models["bn"]).net.state_dict().items()}
    loaded = load_model(models["bn"])
    for dtype in (torch.float32, torch.float64):
        rows = measure_independence(loaded, photos[0], _mates(photos), dtype=dtype)
        train = [r for r in rows if r.mode.startswith("train")]
        evals = [r for r in rows if r.mode == "eval"]
        assert train and evals
        assert all(not r.independent and r.max_abs > 0.1 for r in train)
        assert all(r.independent for r in evals)
        assert all("BN equals IN" in r.note for r in train)
    # every train-mode forward ran on a deep copy: the running statistics did not move
    after = loaded.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    sn_rows = measure_independence(models["sn+bn"], photos[0], _mates(photos), modes=("train",))
    assert all(not r.independent and r.max_abs > 0.1 for r in sn_rows)


def test_contrast_sensitivity_instance_norm_is_invariant(models, photos) -> None:
    rows = contrast_sensitivity(models["in"], photos[0], dtype=torch.float64)
    assert len(rows) == len(DEFAULT_TRANSFORMS)
    for row in rows:
        assert row.relative_max < 1e-2, row  # norms.md T18
        if row.a == 1.0:
            assert row.relative_max < 1e-10, row  # brightness: exact (T17)
    for norm in ("ln", "bn"):
        shifted = [r for r in contrast_sensitivity(models[norm], photos[0]) if r.a == 1.0]
        assert max(r.relative_max for r in shifted) > 0.05


def test_train_eval_gap(models, photos) -> None:
    bn = train_eval_gap(models["bn"], photos)
    assert [g.reference for g in bn] == ["batch of 3", "alone (batch of 1)"]
    assert all(g.max_abs > 0.1 for g in bn)
    assert all(g.max_abs < 1e-4 for g in train_eval_gap(models["in"], photos))


def test_compare_grid_has_one_cell_per_model_and_photo(models, photo_files) -> None:
    cell, pad = 48, 6
    photos = load_photos(photo_files[:2], 40)
    chosen = [models["in"], models["bn"], models["gn"]]
    grid = compare_grid(chosen, photos, cell=cell)
    font = label_font(max(11, cell // 16))
    line = font.size + 6
    label_width = max(cell // 2, 110)
    assert grid.size == (label_width + 2 * (cell + pad) + pad,
                         2 * (line + pad) + (len(chosen) + 1) * (cell + pad) + pad)
    # batch statistics need one size: square crops give it; mixed sizes are refused
    square = load_photos(photo_files[:2], 40, square=True)
    batch_grid = compare_grid(chosen, square, cell=cell, stats="batch")
    assert batch_grid.size == grid.size
    rows = compare_outputs([models["bn"]], square, stats="batch")
    alone = compare_outputs([models["bn"]], square, stats="single")
    assert np.abs(np.asarray(rows[0][0], float) - np.asarray(alone[0][0], float)).max() > 10


def test_independence_figure_and_table(models, photos) -> None:
    rows = []
    for norm in ("in", "bn"):
        rows += measure_independence(models[norm], photos[0], _mates(photos), keep_outputs=True)
    fig = independence_figure(rows, cell=48)
    # rows: IN train, BN eval, BN train; columns: alone, batch A, batch B, heat map
    assert fig.size == (150 + 4 * 54 + 6, 2 * (label_font(11).size + 12) + 3 * 54 + 6)
    text = format_table(["norm", "max"], [[r.norm, r.max_abs] for r in rows], markdown=True)
    assert text.count("\n") == len(rows) + 1


def test_cli_independence_and_compare(models, photo_files, tmp_path, capsys) -> None:
    fig, data = tmp_path / "ind.png", tmp_path / "ind.json"
    args = ["independence", "-m", str(models["in"]), "-m", str(models["bn"]), "-t", str(photo_files[0]),
            "-c", str(photo_files[1]), "-c", str(photo_files[2]), "--size", str(SIZE), "--fp64",
            "-o", str(fig), "--json", str(data), "--contrast-figure", str(tmp_path / "contrast.png")]
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr().out
    assert exc.value.code == 0, out
    assert "train/eval gap" in out and "contrast/brightness" in out and "BN equals IN" in out
    assert fig.stat().st_size > 1000 and (tmp_path / "contrast.png").stat().st_size > 1000
    measured = json.loads(data.read_text())
    ind = measured["independence"]
    assert {r["dtype"] for r in ind} == {"float32", "float64"}
    assert all(r["independent"] for r in ind if r["norm"] == "IN")
    assert not any(r["independent"] for r in ind if r["norm"] == "BN" and r["mode"].startswith("train"))
    assert measured["train_eval_gap"] and measured["contrast"]

    grid_path = tmp_path / "grid.png"
    with pytest.raises(SystemExit) as exc:
        main(["compare", "-m", str(models["in"]), "-m", str(models["sn+bn"]), *map(str, photo_files),
              "--size", "40", "--cell", "64", "-o", str(grid_path), "--save-images", str(tmp_path / "cells"),
              "--stats", "batch"])
    assert exc.value.code == 0, capsys.readouterr()
    assert Image.open(grid_path).size[0] == 110 + 3 * 70 + 6
    assert len(list((tmp_path / "cells").glob("*.png"))) == 2 * 3


def test_cli_compare_real_photos(shared, models, tmp_path, capsys) -> None:
    eval_dir = shared / "data" / "content" / "eval"
    photos = [eval_dir / "kodak_kodim01.png", eval_dir / "skimage_chelsea.png"]
    out = tmp_path / "real.png"
    with pytest.raises(SystemExit) as exc:
        main(["compare", "-m", str(models["in"]), *map(str, photos), "--size", "48", "--cell", "48", "-o", str(out)])
    assert exc.value.code == 0, capsys.readouterr()
    assert Image.open(out).size[0] == 110 + 2 * 54 + 6


def test_cli_module_does_not_import_torch() -> None:
    code = "import sys, styler.cli.ablation; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_row_label_names_norm_width_style_and_steps(tmp_path):
    from helpers import make_tiny_model

    label = model_label(as_loaded(make_tiny_model(tmp_path / "m.pth", "gn")), multiline=False)
    assert label.startswith("GN(8) · width 8 · ") and label.endswith("7 steps"), label


def test_measure_suite_measures_the_gap_only_with_running_statistics(models, photos) -> None:
    """SN without its BN branch has no running statistics (its gap is zero up to rounding), so only BN and SN+BN
    get train/eval gap rows; the target passed among its companions is not its own batch-mate."""
    chosen = [models[n] for n in ("in", "sn", "sn+bn", "bn")]
    result = measure_suite(chosen, photos[0], photos, modes=("train",))
    assert [g.norm for g in result.gaps] == ["SN+BN", "SN+BN", "BN", "BN"]
    assert {g.reference for g in result.gaps} == {"batch of 3", "alone (batch of 1)"}
    assert {r.mode for r in result.independence} == {"train", "train (batch statistics)"}
    assert {r.dtype for r in result.independence} == {"float32"}
    assert all(r.alone is not None for r in result.independence)
    assert len(result.contrast_by_model) == 4 and all(rows[0].is_identity for rows in result.contrast_by_model)
    assert len(result.contrast) == 4 * len(DEFAULT_TRANSFORMS) and not any(r.is_identity for r in result.contrast)
    assert set(result.to_dict()) == {"independence", "contrast", "train_eval_gap"}
    text = format_suite(result, SIZE)
    assert text.startswith(f"target {photos[0].name} at {SIZE}×{SIZE};")
    assert "train/eval gap" in text and "contrast/brightness" in text and "SN's BN branch" in text

    quiet = measure_suite([models["in"]], load_photo(photos[0].pil, SIZE, name="t"), fp64=True, contrast=False)
    assert {r.dtype for r in quiet.independence} == {"float32", "float64"}
    assert not quiet.contrast and not quiet.contrast_by_model and not quiet.gaps
    assert "contrast/brightness" not in format_suite(quiet, SIZE) and "train/eval gap" not in format_suite(quiet, SIZE)


def test_old_import_path_still_works() -> None:
    """scripts/eval_models.py imports from styler.evidence.ablation: the façade keeps re-exporting the public names."""
    from styler.evidence import ablation

    assert ablation.load_photos is load_photos and ablation.measure_independence is measure_independence
    assert all(hasattr(ablation, name) for name in ablation.__all__)
