"""styler.infer.apply as a library: one record per input, the output policy, usage errors, batch failures; and the
tile planning of styler.infer.sizing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styler.infer.apply import ApplyOptions, ApplyRecord, ApplyUsageError, OutputPolicy, apply_files
from styler.infer.options import StylizeOptions
from styler.infer.sizing import GIB, TilePlan, tile_plan
from styler.infer.stylizer import Stylizer
from styler.io.images import InputItem
from styler.io.modelfile import save_model
from styler.nn.network import ArchSpec, TransformerNet


@pytest.fixture()
def stylizer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Stylizer:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    model = save_model(tmp_path / "tiny.pth", TransformerNet(ArchSpec(width=8, residual_blocks=1)), {"name": "tiny"})
    return Stylizer(model, backend="torch", device="cpu")


@pytest.fixture()
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / "a.png")
    Image.fromarray(rng.integers(0, 255, (21, 19, 3), dtype=np.uint8)).save(folder / "sub" / "b.jpg")
    (folder / "c.png").write_bytes(b"not a png")
    return folder


def test_one_record_per_input_as_each_finishes(stylizer: Stylizer, photos: Path, tmp_path: Path) -> None:
    totals: list[int] = []
    seen: list[ApplyRecord] = []
    out_dir = tmp_path / "out"
    records = apply_files([str(photos)], stylizer, ApplyOptions(out_dir=str(out_dir), batch_size=2),
                          on_start=totals.append, on_record=seen.append)
    assert totals == [3] and seen == records
    # c.png fails on reading, before the batch that a.png waits in is full
    assert [(Path(r.input).name, r.status) for r in records] == [("c.png", "error"), ("a.png", "ok"),
                                                                 ("b.jpg", "ok")]
    ok = records[1]
    assert ok.output == str(out_dir / "a_tiny.png") and ok.size == (24, 20) and ok.backend == "torch"
    assert not ok.tiled and ok.seconds is not None and ok.warnings == []
    assert records[2].output == str(out_dir / "sub" / "b_tiny.jpg")
    assert list(ok.to_json()) == ["input", "output", "status", "width", "height", "seconds", "tiled", "backend",
                                  "warnings"]
    failed = records[0]
    assert "not an image" in (failed.error or "") and failed.output == str(out_dir / "c_tiny.png")
    assert list(failed.to_json()) == ["input", "output", "status", "error"]
    again = apply_files([str(photos)], stylizer, ApplyOptions(out_dir=str(out_dir)))
    assert all("exists (use --force to overwrite)" in (r.error or "") for r in again if "c.png" not in r.input)
    forced = apply_files([str(photos)], stylizer, ApplyOptions(out_dir=str(out_dir), force=True))
    assert [r.status for r in forced] == ["ok", "error", "ok"]  # batch size 1: every input in turn


def test_output_policy_names_and_refusals(tmp_path: Path) -> None:
    photo = tmp_path / "p.gif"
    photo.write_bytes(b"")
    item = InputItem(str(photo))
    assert OutputPolicy(ApplyOptions(), "tiny").path_for(item) == str(tmp_path / "p_tiny.png")
    assert OutputPolicy(ApplyOptions(fmt="jpeg", suffix="-x"), "tiny").path_for(item) == str(tmp_path / "p-x.jpg")
    assert OutputPolicy(ApplyOptions(), "tiny").path_for(InputItem("-")) == "-"
    nested = InputItem(str(tmp_path / "a" / "b.png"), root=tmp_path)
    assert OutputPolicy(ApplyOptions(out_dir="o"), "m").path_for(nested) == str(Path("o") / "a" / "b_m.png")
    assert OutputPolicy(ApplyOptions(), "tiny").is_earlier_output(Path("x_tiny.jpg"))
    own = OutputPolicy(ApplyOptions(output=str(photo), force=True), "tiny")
    own.protect([item])
    assert "would overwrite an input" in (own.claim(item)[1] or "")
    twice = OutputPolicy(ApplyOptions(output=str(tmp_path / "one.png")), "tiny")
    assert twice.claim(item) == (str(tmp_path / "one.png"), None)
    assert "already written by another input" in (twice.claim(item)[1] or "")
    (tmp_path / "p_tiny.png").write_bytes(b"")
    assert "exists (use --force" in (OutputPolicy(ApplyOptions(), "tiny").claim(item)[1] or "")
    assert OutputPolicy(ApplyOptions(force=True), "tiny").claim(item)[1] is None


def test_usage_errors(stylizer: Stylizer, photos: Path) -> None:
    with pytest.raises(ApplyUsageError, match="either -o/--output or --out-dir"):
        ApplyOptions(output="x.png", out_dir="out")
    with pytest.raises(ApplyUsageError, match="expands to 3 files"):
        apply_files([str(photos)], stylizer, ApplyOptions(output="x.png"))
    with pytest.raises(ApplyUsageError, match="stdin"):
        apply_files(["-", str(photos / "a.png")], stylizer)


def test_a_failing_batch_fails_each_of_its_inputs(stylizer: Stylizer, photos: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(stylizer, "stylize_many", out_of_memory)
    records = apply_files([str(photos / "a.png"), str(photos / "sub" / "b.jpg")], stylizer,
                          ApplyOptions(out_dir=str(tmp_path / "o"), batch_size=2))
    assert [r.error for r in records] == [f"{photos / 'a.png'}: RuntimeError: out of memory",
                                          f"{photos / 'sub' / 'b.jpg'}: RuntimeError: out of memory"]
    assert not (tmp_path / "o").exists()


def test_tile_plan() -> None:
    small = dict(untiled_bytes=GIB, net_width=32)
    assert tile_plan(90, 70, StylizeOptions(tile_size=0), **small) is None
    assert tile_plan(90, 70, StylizeOptions(tile_size=32, stats_max_pixels=10), **small) == TilePlan(32, 10)
    assert tile_plan(30, 20, StylizeOptions(tile_size=32), **small) is None
    assert tile_plan(4000, 4000, StylizeOptions(), **small) is None  # the estimate fits the budget
    plan = tile_plan(4000, 4000, StylizeOptions(memory_budget=0.5), untiled_bytes=GIB, net_width=32)
    assert plan is not None and plan.tile % 4 == 0 and plan.tile >= 64
    assert plan.stats_max_pixels == int(0.5 * GIB / 2 / (30 * 32))
