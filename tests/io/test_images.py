"""Image reading/writing: every Pillow mode, EXIF orientation, alpha, multi-frame, bombs, corrupt files, inputs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styler.errors import ImageError
from styler.io.images import expand_inputs, read_image, resize_image, write_image


def _gradient(w: int = 40, h: int = 30) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], axis=2).astype(np.uint8)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "CMYK", "I;16", "I", "F", "LA", "RGBA"])
def test_every_mode_reads_as_rgb(tmp_path: Path, mode: str) -> None:
    base = Image.fromarray(_gradient(), "RGB")
    if mode in ("I;16", "I", "F"):
        img = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
        img = img if mode == "I;16" else img.convert(mode)
    else:
        img = base.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16", "I", "F") else "x.png")
    img.save(path)
    out = read_image(path)
    assert out.rgb.shape == (30, 40, 3) and out.rgb.dtype == np.float32
    assert out.rgb.min() >= 0.0 and out.rgb.max() <= 1.0
    assert (out.alpha is not None) == (mode in ("LA", "RGBA"))
    if mode == "I;16":  # full 16-bit precision kept
        assert np.allclose(out.rgb[..., 0], np.asarray(img, dtype=np.float32) / 65535.0, atol=1e-6)


def test_palette_transparency_and_alpha_roundtrip(tmp_path: Path) -> None:
    rgba = np.dstack([_gradient(), np.linspace(0, 255, 40, dtype=np.uint8)[None].repeat(30, 0)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    img = read_image(tmp_path / "a.png")
    write_image(img.rgb, tmp_path / "b.png", alpha=img.alpha)
    back = np.asarray(Image.open(tmp_path / "b.png"))
    assert back.shape == (30, 40, 4) and np.array_equal(back, rgba)
    notes = write_image(img.rgb, tmp_path / "b.jpg", alpha=img.alpha)
    assert notes and "alpha" in notes[0]


def test_exif_orientation_applied(tmp_path: Path) -> None:
    img = Image.fromarray(_gradient(40, 30), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").rgb.shape == (40, 30, 3)


def test_multiframe_first_frame_with_warning(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (20, 20), c) for c in ("red", "blue", "green")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    img = read_image(tmp_path / "anim.gif")
    assert img.frames == 3 and "first frame" in img.warnings[0]
    assert img.rgb[0, 0, 0] > 0.9


def test_decompression_bomb_refused_with_limit(tmp_path: Path) -> None:
    Image.new("L", (200, 100)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match=r"--max-pixels 20000"):
        read_image(tmp_path / "big.png", max_pixels=10_000)
    assert read_image(tmp_path / "big.png", max_pixels=0).size == (200, 100)


@pytest.mark.parametrize("content,match", [(b"", "not an image"), (b"hello", "not an image")])
def test_corrupt_and_missing(tmp_path: Path, content: bytes, match: str) -> None:
    (tmp_path / "bad.jpg").write_bytes(content)
    with pytest.raises(ImageError, match=match):
        read_image(tmp_path / "bad.jpg")
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.jpg")


def test_truncated_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(_gradient(64, 64), "RGB").save(buffer, "JPEG")
    (tmp_path / "t.jpg").write_bytes(buffer.getvalue()[:200])
    with pytest.raises(ImageError):
        read_image(tmp_path / "t.jpg")


def test_resize_keeps_alpha_and_range() -> None:
    from styler.io.images import RGBImage

    img = RGBImage(rgb=np.random.rand(30, 40, 3).astype(np.float32), alpha=np.ones((30, 40), np.float32))
    small = resize_image(img, (20, 15))
    assert small.rgb.shape == (15, 20, 3) and small.alpha.shape == (15, 20)
    assert small.rgb.min() >= 0 and small.rgb.max() <= 1


def test_expand_inputs(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "empty").mkdir()
    for rel in ("d/a.jpg", "d/sub/b.png", "d/a_model.jpg", "d/.hidden.png", "c.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / rel)
    (tmp_path / "d" / "notes.txt").write_text("x")
    items = expand_inputs([str(tmp_path / "d"), str(tmp_path / "*.png"), str(tmp_path / "c.png"),
                           str(tmp_path / "empty"), str(tmp_path / "nope.jpg"), str(tmp_path / "*.webp")],
                          skip=lambda p: p.stem.endswith("_model"))
    good = [Path(i.path).name for i in items if i.error is None]
    assert good == ["a.jpg", "b.png", "c.png"]  # recursive, sorted, de-duplicated, outputs and hidden skipped
    errors = [i.error for i in items if i.error]
    assert any("no images" in e for e in errors) and any("no such file" in e for e in errors)
    assert any("matches no images" in e for e in errors)


def _zlib_level_class(png: bytes) -> int:
    """FLEVEL of the first IDAT's zlib header (RFC 1950): 0 fastest (level 0-1), 1 fast, 2 default (6), 3 max."""
    at = png.index(b"IDAT") + 4
    return png[at + 1] >> 6


def _texture(size: int = 64) -> np.ndarray:
    return np.random.default_rng(3).random((size, size, 3), dtype=np.float32)


def test_png_written_at_the_fast_level_losslessly(tmp_path: Path) -> None:
    from styler.io.images import PNG_COMPRESS_LEVEL, to_uint8

    rgb = _texture()
    write_image(rgb, tmp_path / "out.png")
    data = (tmp_path / "out.png").read_bytes()
    assert PNG_COMPRESS_LEVEL == 1 and _zlib_level_class(data) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), to_uint8(rgb))  # still lossless
    # negative control: Pillow's default level shows up as the "default" class in the same header
    default = io.BytesIO()
    Image.fromarray(to_uint8(rgb), "RGB").save(default, format="PNG")
    assert _zlib_level_class(default.getvalue()) == 2


def test_jpeg_output_unaffected_by_the_png_level(tmp_path: Path) -> None:
    from styler.io.images import to_uint8

    rgb = _texture()
    write_image(rgb, tmp_path / "out.jpg", quality=90)
    expected = io.BytesIO()
    Image.fromarray(to_uint8(rgb), "RGB").save(expected, format="JPEG", quality=90)
    assert (tmp_path / "out.jpg").read_bytes() == expected.getvalue()
