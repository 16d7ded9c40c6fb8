"""The flicker measure on inputs whose answer is known, with negative controls."""

from __future__ import annotations

import numpy as np
import pytest

from styler.video.metrics import aligned_pair, detail, difference_map, flicker, global_flicker, pair_flicker
from styler.video.synthetic import handheld_offsets, render_windows


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return np.random.default_rng(1).integers(30, 220, size=(120, 160, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def shaky(scene):
    offsets = handheld_offsets(10, np.random.default_rng(0))
    return render_windows(scene, offsets, (96, 72)), offsets


def test_a_still_scene_filmed_by_a_shaking_camera_does_not_flicker(shaky):
    frames, offsets = shaky
    assert len(set(offsets)) > 1, "the camera must actually move"
    assert flicker(frames, offsets) == 0.0
    assert global_flicker(frames, offsets) == 0.0


def test_negative_control_without_alignment_the_motion_reads_as_flicker(shaky):
    frames, offsets = shaky
    assert flicker(frames) > 30  # random texture moved by 1-2 px: large differences


def test_known_flicker_is_measured_exactly(shaky):
    frames, offsets = shaky
    pumped = [np.clip(f.astype(np.int16) + (6 if t % 2 else 0), 0, 255).astype(np.uint8)
              for t, f in enumerate(frames)]  # +6 on every other frame: |Δ| = 6 everywhere (no clipping)
    assert flicker(pumped, offsets) == pytest.approx(6.0)
    assert global_flicker(pumped, offsets) == pytest.approx(6.0)
    assert pair_flicker(pumped, offsets) == pytest.approx([6.0] * (len(frames) - 1))


def test_independent_noise_frames_flicker_by_a_third_of_the_range():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, size=(64, 64, 3)).astype(np.uint8) for _ in range(6)]
    assert flicker(frames, margin=0) == pytest.approx(256 / 3, rel=0.02)  # E|U − V| for uniform 8-bit
    assert global_flicker(frames, margin=0) < 2  # local, not global


def test_float_frames_are_read_in_8bit_units(shaky):
    frames, offsets = shaky
    floats = [f.astype(np.float32) / 255 for f in frames]
    floats[3] = floats[3] + 10 / 255
    assert flicker(floats, offsets) == pytest.approx(2 * 10 / (len(frames) - 1), rel=1e-4)


def test_alignment_cuts_the_shared_scene_region(scene):
    a, b = render_windows(scene, [(0, 0), (2, 3)], (40, 30))
    pa, pb = aligned_pair(a, b, (0, 0), (2, 3), margin=1)
    assert pa.shape == pb.shape == (30 - 2 - 2, 40 - 3 - 2, 3)
    assert np.array_equal(pa, pb)
    assert difference_map(a, b, (0, 0), (2, 3)).max() == 0
    with pytest.raises(ValueError, match="share no scene"):
        aligned_pair(a, b, (0, 0), (0, 38), margin=1)


def test_detail_drops_with_blur_and_is_zero_on_flat_frames(scene):
    blurred = (scene[:-1, :-1].astype(np.float32) + scene[1:, 1:] + scene[:-1, 1:] + scene[1:, :-1]) / 4
    assert detail([blurred.astype(np.uint8)]) < 0.5 * detail([scene])
    assert detail([np.full((32, 32, 3), 128, np.uint8)]) == 0.0
