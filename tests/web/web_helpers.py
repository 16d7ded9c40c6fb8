"""Helpers of the web tests: the test server's configuration, photos as bytes, health and error checks."""

from __future__ import annotations

import io

import httpx
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from styler.web.config import ServeConfig


def make_config(**overrides: object) -> ServeConfig:
    """The test server: eager torch (no export on first use), the tiny models as the Norms view's set."""
    settings: dict[str, object] = {"backend": "torch", "device": "cpu", "threads": 1,
                                   "ablation_models": ("tiny_in", "tiny_bn"), "norms_size": 48,
                                   "thumbnail_size": 32}
    settings.update(overrides)
    return ServeConfig(**settings)  # type: ignore[arg-type]


def photo(width: int = 53, height: int = 37, fmt: str = "PNG", mode: str = "RGB", seed: int = 0,
          **save: object) -> bytes:
    """A random-ish photo encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, width * height * 3).reshape(height, width, 3)
    pixels = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def decoded(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def assert_healthy(client: TestClient) -> None:
    """The server still answers, and no place of its pool is left taken."""
    response = client.get("/api/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["pool"]["in_flight"] == 0, body


def assert_error(response: httpx.Response, *statuses: int) -> str:
    """A JSON error with one of ``statuses``; returns its message."""
    assert response.status_code in statuses, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
    return str(body["error"])
