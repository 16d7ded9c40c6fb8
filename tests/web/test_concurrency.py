"""Concurrency: the bounded pool, and the decompression-bomb guard under threads (Pillow's global untouched)."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from styler.errors import ImageError
from styler.io.images import read_image
from styler.web.jobs import BACKGROUND, FOREGROUND, Busy, JobPool


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def watched_pillow() -> Iterator[list[object]]:
    """Records every assignment to ``PIL.Image.MAX_IMAGE_PIXELS`` (a module subclass with ``__setattr__``)."""
    module = sys.modules["PIL.Image"]
    writes: list[object] = []

    class Watched(types.ModuleType):
        def __setattr__(self, name: str, value: object) -> None:
            if name == "MAX_IMAGE_PIXELS":
                writes.append(value)
            super().__setattr__(name, value)

    original = module.__class__
    module.__class__ = Watched
    try:
        yield writes
    finally:
        module.__class__ = original


def test_read_image_never_writes_pillows_global(watched_pillow: list[object],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's own limit, far below the image
    watched_pillow.clear()
    image = read_image(_png(100, 80), max_pixels=None)  # no styler limit: Pillow's global is not consulted
    assert image.size == (100, 80)
    with pytest.raises(ImageError, match="decompression-bomb limit"):
        read_image(_png(100, 80), max_pixels=5000)  # the per-call limit
    assert read_image(_png(100, 80), max_pixels=8000).size == (100, 80)
    assert watched_pillow == [] and Image.MAX_IMAGE_PIXELS == 1000


def test_bomb_guard_is_per_call_under_threads(watched_pillow: list[object]) -> None:
    """Threads with different limits at once: each gets its own verdict, and the global is never written."""
    watched_pillow.clear()
    small, large = _png(40, 40), _png(120, 100)
    before = Image.MAX_IMAGE_PIXELS

    def read(i: int) -> str:
        data, limit = (large, 5000) if i % 2 else (small, 5000)
        try:
            read_image(data, max_pixels=limit)
            return "ok"
        except ImageError:
            return "refused"

    with ThreadPoolExecutor(max_workers=6) as pool:
        verdicts = list(pool.map(read, range(120)))
    assert verdicts == ["refused" if i % 2 else "ok" for i in range(120)]
    assert watched_pillow == []
    assert before == Image.MAX_IMAGE_PIXELS


def test_pool_refuses_when_full_and_frees_places() -> None:
    async def scenario() -> None:
        pool = JobPool(workers=1, queue=1)
        gate = threading.Event()
        first, second = pool.reserve(), pool.reserve()
        with pytest.raises(Busy):
            pool.reserve()
        running = asyncio.ensure_future(pool.run(first, gate.wait, 5))
        waiting = asyncio.ensure_future(pool.run(second, lambda: "second"))
        await asyncio.sleep(0.05)
        assert pool.in_flight == 2
        waiting.cancel()  # the client left: its queued job still runs and gives its place back
        gate.set()
        assert await running is True
        for _ in range(100):
            if pool.in_flight == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.in_flight == 0 and pool.stats()["refused"] == 1
        place = pool.reserve()
        place.abandon()  # no job: the request gives it back
        assert pool.in_flight == 0
        pool.shutdown()

    asyncio.run(scenario())


def test_background_jobs_wait_for_foreground_ones() -> None:
    async def scenario() -> list[str]:
        pool = JobPool(workers=1, queue=4)
        order: list[str] = []
        gate = threading.Event()
        blocker = asyncio.ensure_future(pool.run(pool.reserve(), gate.wait, 5))
        await asyncio.sleep(0.05)
        jobs = [asyncio.ensure_future(pool.run(pool.reserve(), order.append, name, priority=priority))
                for name, priority in [("thumb1", BACKGROUND), ("thumb2", BACKGROUND), ("photo", FOREGROUND)]]
        await asyncio.sleep(0.05)
        gate.set()
        await asyncio.gather(blocker, *jobs)
        pool.shutdown()
        return order

    assert asyncio.run(scenario()) == ["photo", "thumb1", "thumb2"]


def test_errors_in_jobs_reach_the_request_and_free_the_place() -> None:
    async def scenario() -> None:
        pool = JobPool(workers=2, queue=0)

        def fail() -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await pool.run(pool.reserve(), fail)
        assert pool.in_flight == 0
        pool.shutdown()

    asyncio.run(scenario())
