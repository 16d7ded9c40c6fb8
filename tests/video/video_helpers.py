"""Helpers of the video tests: frames whose index survives a lossy codec, and a texture flow can follow."""

from __future__ import annotations

import numpy as np

#: Size of the test clips.
WIDTH, HEIGHT = 64, 48


def numbered_frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    """Frame i is flat grey at level 20 + 8·(i mod 29) with a white marker in its top-left corner (orientation)."""
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 20 + 8 * (index % 29), dtype=np.uint8)
        frame[:8, :12] = 255
        frames.append(frame)
    return frames


def frame_index(frame: np.ndarray) -> int:
    """The index :func:`numbered_frames` drew into a decoded frame (read away from the marker)."""
    return round((float(np.median(frame[frame.shape[0] // 2:, frame.shape[1] // 2:])) - 20) / 8)


def textured_scene(seed: int = 0, width: int = 160, height: int = 120) -> np.ndarray:
    """Smooth random texture (bicubic-upsampled noise): something optical flow can follow."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, size=(height // 6, width // 6, 3)).astype(np.uint8))
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)
