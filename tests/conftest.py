"""Shared fixtures: the reference material (../shared or $STYLER_SHARED); importable helpers live in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from PIL import Image

if TYPE_CHECKING:
    pass

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The reference material folder, or None when it is absent (tests that need it are skipped with a reason)."""
    candidate = Path(os.environ.get("STYLER_SHARED", REPO.parent / "shared"))
    return candidate if (candidate / "weights").is_dir() else None


SHARED = shared_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="reference material ../shared (or $STYLER_SHARED) absent")


@pytest.fixture(scope="session")
def shared() -> Path:
    if SHARED is None:
        pytest.skip("reference material ../shared (or $STYLER_SHARED) absent")
    return SHARED


@pytest.fixture(scope="session")
def vgg_weights(shared: Path) -> Path:
    return shared / "weights" / "vgg16-imagenet-caffe-features.pth"


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's many tiny-tensor tests on one intra-op thread, restoring the previous count afterwards.

    On the shared 2-core machine, two OpenMP threads on tiny convolutions spend most of their time waiting for
    each other under load (measured ~25x slower than one thread); the results do not depend on the thread count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- training fixtures (shared by the training and distributed tests) ---------------------------------------

@pytest.fixture(scope="session")
def photos(tmp_path_factory, shared) -> Path:
    """Six real training photos, downscaled so that each step is cheap."""
    folder = tmp_path_factory.mktemp("photos")
    sources = sorted((shared / "data" / "content" / "train").rglob("*.jpg"))[::97][:6]
    for i, src in enumerate(sources):
        img = Image.open(src).convert("RGB")
        img.thumbnail((120, 120))
        (folder / ("sub" if i % 2 else "")).mkdir(exist_ok=True)
        img.save(folder / ("sub" if i % 2 else "") / f"p{i}.jpg", quality=92)
    return folder


@pytest.fixture(scope="session")
def style(shared) -> Path:
    return shared / "data" / "style" / "starry_night.jpg"
