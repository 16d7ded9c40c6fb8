"""The temporal routes on stand-in stylizers whose flicker mechanism is known, and on a real (tiny) network."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from video_helpers import textured_scene

from helpers import make_tiny_model
from styler.errors import StylerError
from styler.video.blend import FlowBlender
from styler.video.metrics import flicker
from styler.video.motion import GRID, MotionTracker, grid_crop, grid_pad
from styler.video.synthetic import handheld_offsets, render_windows
from styler.video.temporal import DEFAULT_ROUTES, FrameStylizer, TemporalSettings


class GridTexture:
    """Stands in for the network: paints a texture fixed to its own 4-px sampling grid, the way the real network's
    strokes are tied to its stride-4 grid, so a 1-2 px camera shake changes the texture's phase on the scene."""

    def stylize_many(self, images, options, batch_size=1):
        out = []
        for img in images:
            yy, xx = np.mgrid[0:img.rgb.shape[0], 0:img.rgb.shape[1]]
            pattern = ((yy % GRID) * GRID + xx % GRID) / (GRID * GRID - 1) - 0.5
            out.append(SimpleNamespace(image=SimpleNamespace(rgb=0.2 + 0.6 * img.rgb + 0.3 * pattern[..., None])))
        return out


class NoisyStylizer:
    """Stands in for the network: the photo plus fresh noise on every call (flicker that no alignment removes)."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def stylize_many(self, images, options, batch_size=1):
        return [SimpleNamespace(image=SimpleNamespace(rgb=img.rgb + self.rng.normal(0, 0.08, img.rgb.shape)))
                for img in images]


@pytest.fixture(scope="module")
def shaky_clip():
    offsets = handheld_offsets(12, np.random.default_rng(3))
    return render_windows(textured_scene(), offsets, (96, 72)), offsets


def _stylized(stylizer, routes: str, frames, batch_size: int = 4) -> list[np.ndarray]:
    return list(FrameStylizer(stylizer, TemporalSettings.parse(routes), batch_size=batch_size).run(frames))


def test_settings_parse_on_off_and_route_lists():
    assert TemporalSettings.parse("on").routes == DEFAULT_ROUTES
    assert TemporalSettings.parse("off").routes == ()
    assert TemporalSettings.parse("stats+grid").routes == ("grid", "stats")  # canonical order
    assert TemporalSettings.parse("flow", blend=0.5).blend == 0.5
    assert TemporalSettings.parse("off").label == "off"
    with pytest.raises(StylerError, match="unknown --temporal"):
        TemporalSettings.parse("grid+magic")


def test_grid_padding_gives_one_size_and_crops_back():
    frame = np.arange(10 * 14 * 3, dtype=np.uint8).reshape(10, 14, 3)
    shapes = set()
    for phase in [(0, 0), (1, 3), (3, 2)]:
        padded = grid_pad(frame, phase)
        shapes.add(padded.shape)
        assert np.array_equal(grid_crop(padded, phase), frame)
    assert shapes == {(10 + GRID - 1, 14 + GRID - 1, 3)}


def test_tracker_follows_the_camera(shaky_clip):
    frames, offsets = shaky_clip
    tracker = MotionTracker(forward=False)
    for frame, offset in zip(frames, offsets):
        motion = tracker.update(frame)
        x, y = motion.position
        assert (round(y), round(x)) == (offset[0] - offsets[0][0], offset[1] - offsets[0][1])


def test_grid_route_removes_texture_flicker_of_a_shaking_camera(shaky_clip):
    frames, offsets = shaky_clip
    raw = flicker(_stylized(GridTexture(), "off", frames), offsets)
    aligned = flicker(_stylized(GridTexture(), "grid", frames), offsets)
    assert raw > 20
    assert aligned < 0.05 * raw


def test_flow_route_reduces_noise_flicker(shaky_clip):
    frames, offsets = shaky_clip
    raw = flicker(_stylized(NoisyStylizer(), "off", frames), offsets)
    blended = flicker(_stylized(NoisyStylizer(), "flow", frames), offsets)
    assert blended < 0.75 * raw  # theory for weight 0.3 on white noise: (1 − w)/√(1 + w) = 0.61


def test_flow_blend_skips_a_scene_cut():
    first, second = textured_scene(1)[:72, :96], textured_scene(2)[:72, :96]
    tracker, blender = MotionTracker(), FlowBlender(0.5)
    styled = [f.astype(np.float32) / 255 for f in (first, first, second)]
    outputs = [blender(s, tracker.update(f)) for s, f in zip(styled, (first, first, second))]
    assert np.allclose(outputs[1], styled[1], atol=1e-3)  # the same frame again: blending changes nothing
    assert np.array_equal(outputs[2], styled[2]) and blender.cuts == 1


def test_real_network_batches_do_not_change_the_frames(stylizer, shaky_clip):
    frames, _ = shaky_clip
    one = _stylized(stylizer, "on", frames[:5], batch_size=1)
    three = _stylized(stylizer, "on", frames[:5], batch_size=3)
    assert [f.shape for f in one] == [f.shape for f in frames[:5]] and one[0].dtype == np.uint8
    assert max(int(np.abs(a.astype(int) - b).max()) for a, b in zip(one, three)) <= 1


def test_smoothed_statistics_average_over_frames(model_file):
    from styler.io.modelfile import load_model
    from styler.video.statsmooth import SmoothedNorm, reset_statistics, smoothed_model

    loaded = load_model(model_file)
    x = torch.rand(3, 3, 32, 32) * torch.tensor([1.0, 0.5, 0.2]).view(3, 1, 1, 1)  # statistics differ per frame
    with torch.no_grad():
        plain = loaded.net(x)
        same = smoothed_model(loaded, 0.0).net(x)
        smoothed_net = smoothed_model(loaded, 0.7).net
        smoothed = smoothed_net(x)
    assert any(isinstance(m, SmoothedNorm) for m in smoothed_net.modules())
    assert torch.allclose(same, plain, atol=1e-5)
    assert torch.allclose(smoothed[0], plain[0], atol=1e-5)  # the first frame has no past
    assert not torch.allclose(smoothed[2], plain[2], atol=1e-3)
    reset_statistics(smoothed_net)
    with torch.no_grad():
        assert torch.allclose(smoothed_net(x[2:]), plain[2:], atol=1e-5)  # after a reset: no past again


def test_style_picks_one_style_of_a_multi_style_model(tmp_path, shaky_clip):
    from styler.io.modelfile import load_model, save_model
    from styler.video.pipeline import open_video_stylizer

    loaded = load_model(make_tiny_model(tmp_path / "multi.safetensors", "cin:2"))
    path = save_model(loaded.path, loaded.net, {**loaded.metadata, "styles": [{"name": "dots"}, {"name": "waves"}]})
    frames = shaky_clip[0][:2]
    first, second, own = (list(FrameStylizer(open_video_stylizer(path, style=style, backend="torch"),
                                             TemporalSettings.parse("off")).run(frames))
                          for style in ("dots", "waves", None))
    assert np.array_equal(first[0], own[0])  # style 0 is the model's default
    assert np.abs(first[0].astype(int) - second[0]).mean() > 1
    with pytest.raises(StylerError, match="unknown style"):
        open_video_stylizer(path, style="cubes", backend="torch")
