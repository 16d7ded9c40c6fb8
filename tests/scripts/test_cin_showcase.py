"""scripts/cin_showcase.py: blending grids of a multi-style model and the bytes one style costs."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageFont
from script_helpers import load_script, save_cin_model

from helpers import smooth_photo
from styler.io.modelfile import load_model, save_model
from styler.nn.kinds.conditional import ConditionalInstanceNorm2d
from styler.nn.network import TransformerNet, count_parameters
from styler.nn.spec import ArchSpec

showcase = load_script("cin_showcase")

NAMES = ["starry", "wave", "scream", "comp", "udnie"]
CELL = 64


@pytest.fixture(scope="module")
def cin_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("showcase")
    records = [{"name": n, "file": f"{n}.jpg", "sha256": "0" * 64, "size": [64, 64], "style_weight": 5.0}
               for n in NAMES]
    model = save_cin_model(folder / "five.safetensors", records)
    photo = folder / "photo.png"
    Image.fromarray((smooth_photo(3, 48)[:40] * 255).astype(np.uint8)).save(photo)  # 48×40: not square
    return model, photo


def test_cell_weights_sum_to_one_and_corners_are_pure() -> None:
    two = showcase.two_style_cells("a", "b")
    assert [(c["a"], c["b"]) for c in two] == [(1, 0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0, 1)]
    for k in (2, 3, 5):
        rows = showcase.bilinear_cells(["a", "b", "c", "d"], k)
        assert len(rows) == k and all(len(r) == k for r in rows)
        for row in rows:
            for cell in row:
                assert math.isclose(sum(cell.values()), 1.0, abs_tol=1e-12) and min(cell.values()) >= 0
        corners = {(0, 0): "a", (0, k - 1): "b", (k - 1, 0): "c", (k - 1, k - 1): "d"}
        for (r, c), name in corners.items():
            assert rows[r][c][name] == 1.0
    centre = showcase.bilinear_cells(["a", "b", "c", "d"], 3)[1][1]
    assert centre == {"a": 0.25, "b": 0.25, "c": 0.25, "d": 0.25}
    with pytest.raises(Exception, match="four different styles"):
        showcase.bilinear_cells(["a", "b", "a", "d"], 3)
    with pytest.raises(Exception, match="k >= 2"):
        showcase.bilinear_cells(["a", "b", "c", "d"], 1)


def _grid_size(cols: int, rows: int, cell: int = CELL, pad: int = 6) -> tuple[int, int]:
    """image_grid's documented canvas size with a title, no column labels and no label column."""
    from styler.evidence.figures import label_font

    font = label_font(max(11, cell // 16))
    line = int(font.size) + 6 if isinstance(font, ImageFont.FreeTypeFont) else 18
    return cols * (cell + pad) + pad, line + pad + rows * (cell + pad) + pad


def test_grids_and_json(cin_model, tmp_path) -> None:
    model, photo = cin_model
    out = tmp_path / "out"
    report = showcase.main([str(model), "--photo", str(photo), "--two", "wave", "scream", "--four", "starry", "wave",
                            "scream", "comp", "-k", "4", "--size", "40", "--cell", str(CELL), "--square",
                            "--out-two", str(out / "two.jpg"), "--out-four", str(out / "four.png"),
                            "--json", str(out / "showcase.json")])
    assert json.loads((out / "showcase.json").read_text()) == json.loads(json.dumps(report))
    assert Image.open(out / "two.jpg").size == _grid_size(6, 1) == tuple(report["two"]["image_size"])
    assert Image.open(out / "four.png").size == _grid_size(4, 4) == tuple(report["four"]["image_size"])
    # every cell's mix (what the Stylizer fed the network, in row order) sums to 1 and matches its weights
    for part, names in (("two", ["wave", "scream"]), ("four", ["starry", "wave", "scream", "comp"])):
        for cell in report[part]["cells"]:
            mix = np.array(cell["mix"])
            assert mix.shape == (len(NAMES),) and abs(mix.sum() - 1) < 1e-6
            expected = [cell["weights"].get(n, 0.0) for n in NAMES]
            np.testing.assert_allclose(mix, expected, atol=1e-6)
            assert set(np.flatnonzero(mix)) <= {NAMES.index(n) for n in names}
    assert len(report["two"]["cells"]) == 5 and len(report["four"]["cells"]) == 16
    assert report["four"]["cells"][0]["mix"][0] == 1.0 and report["four"]["cells"][-1]["mix"][3] == 1.0


def test_a_cell_is_the_network_on_that_mix(cin_model) -> None:
    model, photo = cin_model
    painter = showcase.Painter(model, photo, size=None)
    weights = {"wave": 0.25, "scream": 0.75}
    got = np.asarray(painter.paint(weights), dtype=np.float32) / 255
    net = load_model(model).net
    x = torch.from_numpy(np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        blend = net(x, style=torch.tensor([0, 0.25, 0.75, 0, 0])).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        pure = net(x, style=torch.tensor([0, 0, 1.0, 0, 0])).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    assert np.abs(got - blend).max() <= 1 / 255 + 1e-6  # uint8 rounding
    assert np.abs(got - pure).max() > 0.05  # negative control: the blend is not the pure style


def _affine_parameters_per_style(net: torch.nn.Module) -> int:
    return sum(2 * m.num_channels for m in net.modules() if isinstance(m, ConditionalInstanceNorm2d))


@pytest.mark.parametrize("half", [False, True])
def test_bytes_per_style_match_the_parameter_counts(tmp_path, half) -> None:
    records = [{"name": n, "style_weight": 5.0} for n in NAMES]
    model = save_cin_model(tmp_path / "five.safetensors", records, half=half)
    single = save_model(tmp_path / "single.safetensors", TransformerNet(ArchSpec(width=8, residual_blocks=1)),
                        {"name": "single", "style": {"name": "starry"}})
    report = showcase.style_bytes(model, [single])
    net = load_model(model).net
    per_style = _affine_parameters_per_style(net)
    itemsize = 2 if half else 4
    assert report["styles"] == 5 and report["conditional_layers"] == 7
    assert report["per_style"] == {"parameters": per_style, "tensor_bytes": per_style * itemsize}
    assert report["shared"]["parameters"] + 5 * per_style == count_parameters(net) == report["parameters"]
    assert report["shared"]["tensor_bytes"] == report["shared"]["parameters"] * itemsize
    # re-saved with fewer styles, the file shrinks by the style's tensors plus its small metadata record
    growth = report["file_growth"]
    assert report["file_growth"]["resaved_bytes"]["5"] == model.stat().st_size == report["file_bytes"]
    for measured in (growth["per_added_style_bytes"], growth["last_style_bytes"]):
        assert per_style * itemsize <= measured <= per_style * itemsize + 256
    # a single-style IN model of the same width is exactly the shared network plus one style
    assert report["compare"][0]["equals_shared_plus_one_style"] is True
    assert "per style" in showcase.format_bytes(report)


def test_unknown_styles_and_single_style_models_are_refused(cin_model, tmp_path, capsys) -> None:
    model, photo = cin_model
    with pytest.raises(SystemExit, match="unknown style 'monet'; this model has: starry, wave, scream, comp, udnie"):
        showcase.main([str(model), "--photo", str(photo), "--two", "wave", "monet", "--out-two",
                       str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()
    single = save_model(tmp_path / "single.safetensors", TransformerNet(ArchSpec(width=8, residual_blocks=1)),
                        {"name": "single", "style": {"name": "starry"}})
    with pytest.raises(SystemExit, match="not a conditional-norm"):
        showcase.main([str(single)])
