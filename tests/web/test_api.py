"""The HTTP contract of ``styler serve``, through FastAPI's test client: what works, and every client error.

Every error test ends with :func:`assert_healthy`: the server still answers and no pool place leaked.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from web_helpers import assert_error, assert_healthy, decoded, make_config, photo

from styler.web.app import create_app

pytestmark = pytest.mark.usefixtures("models_env")


def _post(client: TestClient, data: bytes, name: str = "photo.png", **fields: str):  # noqa: ANN202 - httpx.Response
    return client.post("/api/stylize", files={"image": (name, data, "application/octet-stream")}, data=fields)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width × height`` and holds one tiny compressed row: a decompression bomb's header."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


# --- what works ---------------------------------------------------------------------------------------------------

def test_health_models_and_page(client: TestClient) -> None:
    assert_healthy(client)
    models = {m["name"]: m for m in client.get("/api/models").json()}
    assert {"tiny_in", "tiny_bn", "duo"} <= set(models)
    assert "broken" not in models  # a damaged file in the model folder is left out
    assert models["tiny_in"]["style"] == "tiny_in_style" and models["tiny_in"]["norm"] == "instance"
    assert models["tiny_bn"]["norm"] == "batch" and "styles" not in models["tiny_bn"]
    assert models["duo"]["styles"] == ["red", "blue"] and models["duo"]["norm"] == "conditional"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/app.css"):
        assert asset in page.text and client.get(asset).status_code == 200


def test_page_loads_nothing_from_elsewhere() -> None:
    """No CDN, no external font or script: every URL in the page's files is the server's own."""
    from styler.web.app import STATIC_DIR

    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name


def test_stylize_returns_png_at_the_photo_size(client: TestClient) -> None:
    response = _post(client, photo(53, 37), model="tiny_in")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert decoded(response.content).size == (53, 37)
    assert float(response.headers["X-Styler-Seconds"]) > 0
    assert float(response.headers["X-Styler-Total-Seconds"]) >= float(response.headers["X-Styler-Seconds"])
    assert response.headers["X-Styler-Backend"] == "torch"
    assert response.headers["X-Styler-Model"] == "tiny_in" and response.headers["X-Styler-Size"] == "53x37"


def test_default_model_max_size_strength_and_colour(client: TestClient) -> None:
    data = photo(120, 80, seed=3)
    capped = _post(client, data, max_size="60")
    assert capped.status_code == 200 and decoded(capped.content).size == (60, 40)
    original = np.asarray(decoded(data).convert("RGB"), dtype=np.int16)
    untouched = _post(client, data, model="tiny_in", strength="0")
    assert np.abs(np.asarray(decoded(untouched.content), dtype=np.int16) - original).max() <= 1
    full = np.asarray(decoded(_post(client, data, model="tiny_in").content), dtype=np.float64)
    half = np.asarray(decoded(_post(client, data, model="tiny_in", strength="0.5").content), dtype=np.float64)
    assert np.abs(half - (full + original) / 2).max() <= 2  # strength blends with the photo
    kept = _post(client, data, model="tiny_in", preserve_color="true")
    assert kept.status_code == 200 and not np.array_equal(np.asarray(decoded(kept.content)), full.astype(np.uint8))


def test_multi_style_model_styles_and_blends(client: TestClient) -> None:
    data = photo(40, 40, seed=5)
    red = _post(client, data, model="duo", style="red")
    blue = _post(client, data, model="duo", style="blue")
    blend = _post(client, data, model="duo", style="red:1,blue:1")
    assert red.status_code == blue.status_code == blend.status_code == 200
    assert red.headers["X-Styler-Style"] == "red" and "blue" in blend.headers["X-Styler-Style"]
    assert red.content != blue.content and blend.content not in (red.content, blue.content)
    by_style = _post(client, data, style="blue")  # no model: the model that has the style
    assert by_style.status_code == 200 and by_style.headers["X-Styler-Model"] == "duo"
    assert_error(_post(client, data, model="duo", style="green"), 422)
    assert_error(_post(client, data, model="tiny_in", style="blue"), 422)
    assert_error(_post(client, data, style="no_such_style"), 422)
    assert_healthy(client)


def test_orientation_alpha_and_formats(client: TestClient) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° on display
    rotated = _post(client, photo(60, 30, fmt="JPEG", exif=exif.tobytes()), "p.jpg", model="tiny_in")
    assert decoded(rotated.content).size == (30, 60)
    rgba = Image.new("RGBA", (20, 16), (200, 100, 50, 128))
    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")
    out = decoded(_post(client, buffer.getvalue(), model="tiny_in").content)
    assert out.mode == "RGBA" and out.getchannel("A").getextrema() == (128, 128)
    for fmt in ("WEBP", "GIF", "BMP", "TIFF"):
        response = _post(client, photo(24, 20, fmt=fmt), f"p.{fmt.lower()}", model="tiny_in")
        assert response.status_code == 200, (fmt, response.text)
        assert decoded(response.content).size == (24, 20)


def test_thumbnails_samples(client: TestClient) -> None:
    thumb = client.get("/api/models/tiny_in/thumbnail")
    assert thumb.status_code == 200 and decoded(thumb.content).size == (32, 32)
    assert client.get("/api/models/duo/thumbnail", params={"style": "blue"}).status_code == 200
    service = client.app.state.service  # type: ignore[attr-defined]
    held = [service.pool.reserve() for _ in range(service.pool.capacity)]
    try:  # a thumbnail made once is served from memory, even when the pool is full
        assert client.get("/api/models/tiny_in/thumbnail").content == thumb.content
        assert_error(client.get("/api/models/tiny_bn/thumbnail"), 503)
    finally:
        for place in held:
            place.release()
    assert_error(client.get("/api/models/nope/thumbnail"), 404)
    samples = client.get("/api/samples").json()
    assert samples and all(s["url"] == f"/api/samples/{s['name']}" for s in samples)
    sample = client.get(samples[0]["url"])
    assert sample.status_code == 200 and decoded(sample.content).format == "JPEG"
    assert_error(client.get("/api/samples/nope"), 404)
    assert_healthy(client)


# --- client errors: 4xx JSON, and the server stays healthy -----------------------------------------------------------

@pytest.mark.parametrize(("data", "name", "statuses"), [
    (b"hello, this is text", "photo.png", (415,)),  # the name says PNG, the bytes do not
    (b"%PDF-1.4 not an image", "doc.jpg", (415,)),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n", "x.eps", (415,)),  # Ghostscript is never started on a client's file
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "bad.png", (400,)),  # a PNG signature with a damaged header
    (photo(40, 30, fmt="JPEG")[:200], "cut.jpg", (400,)),  # a truncated JPEG
    (photo(40, 30)[:-30], "cut.png", (400,)),  # a truncated PNG
])
def test_not_an_image(client: TestClient, data: bytes, name: str, statuses: tuple[int, ...]) -> None:
    assert_error(_post(client, data, name, model="tiny_in"), *statuses)
    assert_healthy(client)


def test_form_mistakes(client: TestClient) -> None:
    data = photo(30, 30)
    assert_error(client.post("/api/stylize", data={"model": "tiny_in"}, files={"other": ("x", b"y")}), 400)
    assert_error(_post(client, b"", "empty.png"), 400)
    assert_error(client.post("/api/stylize", json={"image": "x"}), 415)
    assert_error(client.post("/api/stylize", content=b"--x\r\nbroken", headers={
        "content-type": "multipart/form-data; boundary=x"}), 400)
    assert_error(client.post("/api/stylize", data={"image": "just text"}, files={"x": ("x", b"y")}), 400)
    for field, value in [("strength", "strong"), ("strength", "1.5"), ("strength", "nan"), ("max_size", "5"),
                         ("max_size", "big"), ("max_size", "100000"), ("preserve_color", "maybe")]:
        assert_error(_post(client, data, model="tiny_in", **{field: value}), 422)
    assert_error(_post(client, photo(4, 40), model="tiny_in"), 422)  # below the network's 5-pixel minimum
    assert_healthy(client)


@pytest.mark.parametrize("name", ["nope", "broken", "../tiny_in", "tiny_in.safetensors", "/etc/passwd",
                                  "models/tiny_in", "TINY_IN", " "])
def test_unknown_model(client: TestClient, model_folder: Path, name: str) -> None:
    if name == " ":  # a blank model is the default model, not an error
        assert _post(client, photo(20, 20), model=name).status_code == 200
        return
    assert_error(_post(client, photo(20, 20), model=name), 404)
    assert_healthy(client)


def test_model_paths_are_never_opened(client: TestClient, model_folder: Path) -> None:
    """A path to a real model file is still only a name: 404."""
    assert_error(_post(client, photo(20, 20), model=str(model_folder / "tiny_in.safetensors")), 404)
    assert_healthy(client)


def test_upload_and_pixel_limits(models_env: Path) -> None:
    config = make_config(max_upload_bytes=60_000, max_pixels=100 * 100)
    with TestClient(create_app(config)) as client:
        big = np.random.default_rng(0).integers(0, 255, 80_000, dtype=np.uint8).tobytes()
        assert "too large" in assert_error(_post(client, b"\x89PNG\r\n\x1a\n" + big), 413)

        def chunks():  # no Content-Length: the body is counted as it arrives
            yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
            for _ in range(40):
                yield b"\0" * 4096
        assert_error(client.post("/api/stylize", content=chunks(),
                                 headers={"content-type": "multipart/form-data; boundary=b"}), 413)
        assert_error(_post(client, photo(120, 100), model="tiny_in"), 413)  # 12 000 px > 10 000
        assert_error(_post(client, _png_header_only(40_000, 40_000), model="tiny_in"), 413)  # a bomb
        assert _post(client, photo(100, 100), model="tiny_in").status_code == 200
        assert_healthy(client)


def test_busy_is_503_and_recovers(client: TestClient) -> None:
    pool = client.app.state.service.pool  # type: ignore[attr-defined]
    held = [pool.reserve() for _ in range(pool.capacity)]
    try:
        response = _post(client, photo(20, 20), model="tiny_in")
        assert "busy" in assert_error(response, 503) and response.headers["retry-after"]
        assert_error(client.post("/api/norms/independence", files={"image": ("p.png", photo(20, 20))}), 503)
    finally:
        for place in held:
            place.release()
    assert _post(client, photo(20, 20), model="tiny_in").status_code == 200
    assert_healthy(client)


def test_unknown_routes_and_methods(client: TestClient) -> None:
    assert_error(client.get("/api/nope"), 404)
    assert_error(client.get("/static/../app.py"), 404)
    assert_error(client.get("/api/stylize"), 405)
    assert_error(client.delete("/api/models"), 405)
    assert_healthy(client)


def test_host_header_check(models_env: Path) -> None:
    """A loopback server answers only to loopback names (a DNS-rebinding page cannot reach it)."""
    from styler.web.config import LOOPBACK_HOSTS

    with TestClient(create_app(make_config(allowed_hosts=LOOPBACK_HOSTS)), base_url="http://127.0.0.1:8000") as c:
        assert c.get("/api/health").status_code == 200
        assert c.get("/api/health", headers={"host": "localhost:8000"}).status_code == 200
        assert c.get("/api/health", headers={"host": "[::1]:8000"}).status_code == 200
        assert_error(c.get("/api/health", headers={"host": "evil.example"}), 400)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts open files through /proc (Linux)")
def test_uploads_leave_no_temporary_files(client: TestClient, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads above 1 MB spool to temporary files; every one is closed (and so removed) with its request."""
    import os
    import tempfile

    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    big_bmp = photo(700, 600, fmt="BMP")  # 1.26 MB: spooled to disk
    assert len(big_bmp) > 1024 * 1024
    before = len(os.listdir("/proc/self/fd"))
    for data, expected in [(big_bmp, 200), (b"BM" + b"\0" * (1024 * 1024 + 10), 400),
                           (b"x" * (1024 * 1024 + 10), 415)]:
        response = _post(client, data, "big.bmp", model="tiny_in", max_size="64")
        assert response.status_code == expected, response.text
    assert len(os.listdir("/proc/self/fd")) <= before + 2  # nothing left open
    assert list(spool.iterdir()) == []
    assert_healthy(client)
