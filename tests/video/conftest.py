"""Fixtures of the video tests: a tiny model on eager torch, and a small clip with sound written with PyAV.

Everything is synthesized at 64×48, so the folder runs in seconds and needs no reference material.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("av", reason="the video extra (PyAV) is not installed")
pytest.importorskip("cv2", reason="the video extra (OpenCV) is not installed")

from video_helpers import numbered_frames  # noqa: E402

from helpers import make_tiny_model  # noqa: E402
from styler.video.synthetic import tone, write_clip  # noqa: E402


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny_in.safetensors", "instance")


@pytest.fixture(scope="session")
def stylizer(model_file):
    from styler.video.pipeline import open_video_stylizer

    return open_video_stylizer(model_file, backend="torch", threads=1)


@pytest.fixture(scope="session")
def clip_with_sound(tmp_path_factory) -> Path:
    """24 numbered frames at 12 fps (2 s), H.264 + AAC in MP4."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    write_clip(path, numbered_frames(24), 12, audio=tone(2.0))
    return path
