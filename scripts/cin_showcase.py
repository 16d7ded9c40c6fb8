#!/usr/bin/env python
"""What a conditional-instance-norm (multi-style) model offers: blends of its styles, and the bytes a style costs.

A CIN network shares every convolution between its styles; a style is only its (γ, β) rows, and any convex mix of
those rows is a valid style. This script shows both sides for one model:

* a two-style strip: the photo, then style A and style B mixed with weights 1/0, .75/.25, .5/.5, .25/.75, 0/1;
* a four-style square: a k×k grid whose corners are four pure styles (A top left, B top right, C bottom left,
  D bottom right) and whose cells mix them with bilinear weights (the weights of a cell sum to 1);
* bytes per added style, from the model file's tensors: the per-style (γ, β) parameters against the shared
  network, and the file growth measured by re-saving the same network with fewer styles.

Stylizing goes through the public API (:class:`styler.infer.stylizer.Stylizer` with a ``style=`` mix), on the torch
backend in fp32 by default, so the pictures are the reference computation.

    python scripts/cin_showcase.py six_styles_cin.safetensors --photo ../shared/data/content/eval/x.jpg \\
        --two starry_night great_wave --four starry_night great_wave the_scream composition_vii \\
        --out-two docs/cin/blend_two.jpg --out-four docs/cin/blend_four.jpg --json docs/cin/showcase.json \\
        --compare styler/models/starry_night_in.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from styler.errors import StylerError
from styler.evidence.figures import fit_into, image_grid, label_font
from styler.infer.options import StylizeOptions
from styler.infer.styles import model_style_names
from styler.infer.stylizer import Stylizer
from styler.io.images import RGBImage, read_image, to_uint8

#: The two-style strip's weights of style A (style B gets the rest), as issue #15 asks.
TWO_STYLE_WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)
#: Bytes per element of the safetensors dtypes a model file may hold.
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


# --- the weights of the cells ----------------------------------------------------------------------------------------

def two_style_cells(a: str, b: str, weights: Sequence[float] = TWO_STYLE_WEIGHTS) -> list[dict[str, float]]:
    """One weight dictionary per cell of the strip: ``{a: w, b: 1 - w}``."""
    return [{a: float(w), b: 1.0 - float(w)} for w in weights]


def bilinear_cells(names: Sequence[str], k: int) -> list[list[dict[str, float]]]:
    """``k×k`` rows of weight dictionaries over four styles (top left, top right, bottom left, bottom right).

    Cell (r, c) sits at u = c/(k-1) across and v = r/(k-1) down; its weights are (1-u)(1-v), u(1-v), (1-u)v and
    uv, so every cell sums to 1 and each corner is one pure style.
    """
    if len(names) != 4 or len(set(names)) != 4:
        raise StylerError(f"the four-style grid needs four different styles, got {list(names)}")
    if k < 2:
        raise StylerError(f"the four-style grid needs k >= 2 (the corners), got {k}")
    a, b, c, d = names
    rows = []
    for r in range(k):
        v = r / (k - 1)
        rows.append([{a: (1 - u) * (1 - v), b: u * (1 - v), c: (1 - u) * v, d: u * v}
                     for u in (col / (k - 1) for col in range(k))])
    return rows


def mix_spec(weights: dict[str, float]) -> str:
    """The ``--style`` text of a weight dictionary (``a:0.75,b:0.25``); ``repr`` keeps every float exactly."""
    return ",".join(f"{name}:{weight!r}" for name, weight in weights.items())


# --- pictures ----------------------------------------------------------------------------------------------------

def captioned(img: Image.Image, lines: Sequence[str], cell: int) -> Image.Image:
    """A ``cell``×``cell`` tile: ``img`` fitted above its caption lines (so image_grid pastes it unscaled)."""
    font = label_font(max(10, cell // 18))
    line = int(font.size) + 3 if isinstance(font, ImageFont.FreeTypeFont) else 14
    caption = line * len(lines) + 4
    tile = Image.new("RGB", (cell, cell), "white")
    room = max(1, cell - caption)
    picture = fit_into(img.convert("RGB"), cell)
    if picture.height > room:
        picture = picture.resize((max(1, round(picture.width * room / picture.height)), room),
                                 Image.Resampling.LANCZOS)
    tile.paste(picture, ((cell - picture.width) // 2, 0))
    draw = ImageDraw.Draw(tile)
    for i, text in enumerate(lines):
        width = draw.textlength(text, font=font)
        draw.text((max(0, (cell - width) / 2), picture.height + 2 + i * line), text, fill="black", font=font)
    return tile


def _share(weight: float) -> str:
    return f"{weight:.2f}".lstrip("0") if 0 < weight < 1 else f"{weight:.0f}"


class Painter:
    """Stylizes one photo with any mix of a model's styles (the public Stylizer API, one backend opened once)."""

    def __init__(self, model: str | os.PathLike[str], photo: str | os.PathLike[str], *, size: int | None,
                 backend: str = "torch", device: str = "cpu", threads: int | None = None,
                 square: bool = False) -> None:
        self.stylizer = Stylizer(model, backend=backend, device=device, threads=threads, precision="fp32")
        self.names = self.stylizer.style_names
        self.photo = read_image(photo)
        if square:  # the grids' cells are square: a centre crop fills them
            h, w = self.photo.rgb.shape[:2]
            side = min(h, w)
            top, left = (h - side) // 2, (w - side) // 2
            self.photo = RGBImage(rgb=np.ascontiguousarray(self.photo.rgb[top:top + side, left:left + side]),
                                  source=self.photo.source)
        self.options = StylizeOptions(max_size=size, tile_size=0)
        self.mixes: list[list[float]] = []  # the normalized mix each call applied, in (γ, β)-row order

    def check(self, names: Sequence[str]) -> None:
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise StylerError(f"unknown style {unknown[0]!r}; this model has: {', '.join(self.names)}")

    def paint(self, weights: dict[str, float]) -> Image.Image:
        self.stylizer.set_style(mix_spec(weights))
        mix = self.stylizer.model.style_mix
        self.mixes.append([float(w) for w in mix] if mix is not None else [])
        out = self.stylizer.stylize(self.photo, self.options).image
        return Image.fromarray(to_uint8(out.rgb), "RGB")

    def source(self) -> Image.Image:
        resized = self.stylizer.prepare(self.photo, self.options)
        return Image.fromarray(to_uint8(resized.rgb), "RGB")


def two_style_grid(painter: Painter, a: str, b: str, cell: int) -> tuple[Image.Image, list[dict[str, Any]]]:
    painter.check([a, b])
    cells = two_style_cells(a, b)
    tiles = [captioned(painter.source(), ["photo"], cell)]
    records = []
    for weights in cells:
        tiles.append(captioned(painter.paint(weights), [f"{n} {_share(w)}" for n, w in weights.items()], cell))
        records.append({"weights": weights, "mix": painter.mixes[-1]})
    grid = image_grid([tiles], cell=cell, title=f"{a} and {b} blended: each cell mixes their (γ, β) rows with the "
                                                "weights below it", label_width=0)
    return grid, records


def four_style_grid(painter: Painter, names: Sequence[str], k: int, cell: int
                    ) -> tuple[Image.Image, list[dict[str, Any]]]:
    painter.check(names)
    rows = bilinear_cells(names, k)
    letters = dict(zip(names, "ABCD"))
    corners = {(0, 0): names[0], (0, k - 1): names[1], (k - 1, 0): names[2], (k - 1, k - 1): names[3]}
    tiles, records = [], []
    for r, row in enumerate(rows):
        line = []
        for c, weights in enumerate(row):
            if (r, c) in corners:
                caption = [f"{letters[corners[r, c]]} = {corners[r, c]}"]
            else:
                caption = [" · ".join(f"{letters[n]} {_share(weights[n])}" for n in names[:2]),
                           " · ".join(f"{letters[n]} {_share(weights[n])}" for n in names[2:])]
            line.append(captioned(painter.paint(weights), caption, cell))
            records.append({"row": r, "col": c, "weights": weights, "mix": painter.mixes[-1]})
        tiles.append(line)
    title = "four styles mixed with bilinear weights: A top left, B top right, C bottom left, D bottom right"
    return image_grid(tiles, cell=cell, title=title, label_width=0), records


# --- bytes ---------------------------------------------------------------------------------------------------------

def _tensor_table(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return {key: (tuple(int(d) for d in handle.get_slice(key).get_shape()), handle.get_slice(key).get_dtype())
                for key in handle.keys()}  # noqa: SIM118 - a safe_open handle, not a dict


def _resaved_size(model: Any, styles: int, folder: Path) -> int:
    """File size of the same model with only its first ``styles`` styles, written by save_model."""
    import torch

    from styler.io.modelfile import save_model
    from styler.nn.kinds.conditional import ConditionalInstanceNorm2d
    from styler.nn.network import TransformerNet
    from styler.nn.spec import ArchSpec, NormSpec

    arch = model.arch
    norm = NormSpec(kind="conditional", num_styles=styles, eps=arch.norm.eps)
    net = TransformerNet(ArchSpec(width=arch.width, residual_blocks=arch.residual_blocks, norm=norm))
    modules = dict(model.net.named_modules())
    state = {k: (v[:styles] if isinstance(modules.get(k.rsplit(".", 1)[0]), ConditionalInstanceNorm2d) else v)
             for k, v in model.net.state_dict().items()}
    with torch.no_grad():
        net.load_state_dict(state)
    metadata = dict(model.metadata)
    if isinstance(metadata.get("styles"), list):
        metadata["styles"] = metadata["styles"][:styles]
    half = _storage_dtype(model.path) == "float16"
    target = save_model(folder / f"styles_{styles}.safetensors", net, metadata, half=half)
    return target.stat().st_size


def _storage_dtype(path: Path) -> str:
    from styler.io.modelfile import read_header

    return read_header(path).storage_dtype


def style_bytes(path: str | os.PathLike[str], compare: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
    """What one style costs in a conditional-norm model file, from its tensors and by re-saving it.

    ``per_style``: the (γ, β) parameters of one style (a row of every conditional layer's weight and bias) and their
    bytes at the file's storage dtype; ``shared``: everything else (the convolutions). ``file_growth`` re-saves the
    same network with 1, S−1 and S styles (save_model, same metadata minus the dropped styles' records) and
    reports the measured growth per added style, header and style record included. ``compare`` lists other model
    files (e.g. the single-style models of the same width) with their sizes and parameter counts.
    """
    from styler.io.layout import parameter_count
    from styler.io.modelfile import load_model, read_header

    path = Path(path)
    header = read_header(path)
    if header.arch.norm.kind != "conditional":
        raise StylerError(f"{path} is not a conditional-norm (multi-style) model: it uses {header.arch.norm.kind} "
                          "norm")
    styles = header.arch.norm.num_styles
    table = _tensor_table(path)
    per_style_params = per_style_bytes = layers = 0
    shared_params = shared_bytes = 0
    for key, (shape, dtype) in table.items():
        count = math.prod(shape)
        size = count * DTYPE_BYTES[dtype]
        if key.endswith((".norm.weight", ".norm.bias")) and len(shape) == 2 and shape[0] == styles:
            per_style_params += count // styles
            per_style_bytes += size // styles
            layers += key.endswith(".norm.weight")
        else:
            shared_params += count
            shared_bytes += size
    total_params = parameter_count(header.arch)
    model = load_model(path)
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {n: _resaved_size(model, n, Path(tmp)) for n in sorted({1, max(1, styles - 1), styles})}
    growth = {"resaved_bytes": {str(n): size for n, size in sizes.items()},
              "per_added_style_bytes": (sizes[styles] - sizes[1]) / (styles - 1) if styles > 1 else None,
              "last_style_bytes": sizes[styles] - sizes[max(1, styles - 1)] if styles > 1 else None}
    others = []
    for other in compare:
        info = read_header(other)
        others.append({"model": str(other), "file_bytes": Path(other).stat().st_size, "norm": info.arch.norm.kind,
                       "width": info.arch.width, "parameters": parameter_count(info.arch),
                       "equals_shared_plus_one_style": parameter_count(info.arch) == shared_params + per_style_params})
    return {
        "model": str(path), "file_bytes": path.stat().st_size, "storage_dtype": header.storage_dtype,
        "styles": styles, "style_names": model_style_names(header.metadata), "parameters": total_params,
        "conditional_layers": layers,
        "per_style": {"parameters": per_style_params, "tensor_bytes": per_style_bytes},
        "shared": {"parameters": shared_params, "tensor_bytes": shared_bytes},
        "per_style_fraction_of_shared": per_style_params / shared_params if shared_params else None,
        "file_growth": growth,
        "compare": others,
    }


def format_bytes(report: dict[str, Any]) -> str:
    per, shared, growth = report["per_style"], report["shared"], report["file_growth"]
    lines = [f"{report['model']}: {report['styles']} styles, {report['parameters']:,} parameters, "
             f"{report['file_bytes']:,} bytes ({report['storage_dtype']})",
             f"  per style: {per['parameters']:,} parameters (γ and β of {report['conditional_layers']} layers) = "
             f"{per['tensor_bytes']:,} bytes",
             f"  shared:    {shared['parameters']:,} parameters = {shared['tensor_bytes']:,} bytes "
             f"(one style is {100 * report['per_style_fraction_of_shared']:.2f} % of it)"]
    if growth["per_added_style_bytes"] is not None:
        lines.append(f"  file growth per added style (re-saved with 1..{report['styles']} styles): "
                     f"{growth['per_added_style_bytes']:,.0f} bytes on average, the last one "
                     f"{growth['last_style_bytes']:,} bytes")
    for other in report["compare"]:
        lines.append(f"  vs {other['model']}: {other['file_bytes']:,} bytes, {other['parameters']:,} parameters "
                     f"({'=' if other['equals_shared_plus_one_style'] else '≠'} shared + one style)")
    return "\n".join(lines)


# --- the command ---------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a conditional-norm (multi-style) model file")
    parser.add_argument("--photo", help="the photo to stylize (needed for the grids)")
    parser.add_argument("--two", nargs=2, metavar=("A", "B"), help="two styles for the blending strip")
    parser.add_argument("--four", nargs=4, metavar=("A", "B", "C", "D"),
                        help="four styles for the square's corners: top left, top right, bottom left, bottom right")
    parser.add_argument("-k", type=int, default=5, help="cells per side of the four-style square")
    parser.add_argument("--size", type=int, default=384, help="long side the photo is stylized at")
    parser.add_argument("--cell", type=int, default=256, help="grid cell size in pixels")
    parser.add_argument("--square", action="store_true", help="centre-crop the photo to a square (fills the cells)")
    parser.add_argument("--out-two", default="docs/cin/blend_two.jpg")
    parser.add_argument("--out-four", default="docs/cin/blend_four.jpg")
    parser.add_argument("--json", default=None, help="write the cells' weights and the bytes report here")
    parser.add_argument("--compare", nargs="*", default=[], help="other model files to list beside the byte counts")
    parser.add_argument("--backend", default="torch", help="styler backend (default torch: the fp32 reference)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if (args.two or args.four) and not args.photo:
        parser.error("--two and --four need --photo")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    report: dict[str, Any] = {"model": args.model}
    try:
        _check_names(args.model, [*(args.two or []), *(args.four or [])])
        report["bytes"] = style_bytes(args.model, args.compare)
        print(format_bytes(report["bytes"]))
        if args.two or args.four:
            painter = Painter(args.model, args.photo, size=args.size, backend=args.backend, device=args.device,
                              threads=args.threads, square=args.square)
            report.update({"photo": args.photo, "size": args.size, "square": args.square,
                           "backend": painter.stylizer.backend})
            if args.two:
                grid, cells = two_style_grid(painter, *args.two, cell=args.cell)
                report["two"] = {"styles": list(args.two), "image": _save(grid, args.out_two), "cells": cells,
                                 "image_size": list(grid.size)}
                print(f"two-style strip: {args.out_two} ({grid.width}×{grid.height})")
            if args.four:
                grid, cells = four_style_grid(painter, args.four, args.k, cell=args.cell)
                report["four"] = {"styles": list(args.four), "k": args.k, "image": _save(grid, args.out_four),
                                  "cells": cells, "image_size": list(grid.size)}
                print(f"four-style square: {args.out_four} ({grid.width}×{grid.height})")
    except StylerError as exc:
        sys.exit(f"cin_showcase.py: error: {exc}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return report


def _check_names(model: str, names: Sequence[str]) -> None:
    """Unknown style names are an error before anything is computed (the message lists the model's styles)."""
    from styler.io.modelfile import read_header

    known = model_style_names(read_header(model).metadata)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StylerError(f"unknown style {unknown[0]!r}; this model has: {', '.join(known)}")


def _save(image: Image.Image, path: str) -> str:
    """The grid at ``path``, in the format its suffix names. JPEG (quality 90) is the default: a grid of stylized
    paintings is mostly brush texture, which PNG stores at ~2.9 MB for the four-style square and JPEG at a tenth."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    jpeg = Path(path).suffix.lower() in (".jpg", ".jpeg")
    image.convert("RGB").save(path, **({"quality": 90} if jpeg else {}))
    return path


if __name__ == "__main__":
    main()
