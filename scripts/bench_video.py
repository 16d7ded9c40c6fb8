#!/usr/bin/env python
"""The temporal routes of ``styler video`` measured side by side: flicker, detail, perceptual loss, speed, memory.

Clips (:mod:`styler.video.synthetic`, 24 frames of 320×240 cut from each held-out photo): *handheld* (1–2 px
jitter, sensor noise σ = 2/255, x264 crf 12), *exposure* (still camera, brightness/contrast oscillating) and *pan*
(8 px per frame, new content entering). Every route runs on the same decoded frames with the same stylizer, and
the numbers are ratios to per-frame stylization (``off``) of the same clip:

* flicker: aligned mean |Δ| of consecutive output frames (8-bit; :func:`styler.video.metrics.flicker`);
* detail: mean Laplacian energy of the output luma;
* loss: mean perceptual loss of each output frame against its input frame with the model's own loss (VGG16,
  Caffe weights, the model's loss weights and style image) — measured on the handheld clips;
* speed: frames/s of the stylizer plus the route at 640×360 (frames in memory: decoding and encoding excluded),
  and end to end (``stylize_video`` on an H.264 + AAC file, decode and encode included), rounds interleaved;
* memory: RSS of ``stylize_video`` on a 2 s and a 10 s clip in fresh processes, sampled after every frame
  (constant in the clip's length).

    python scripts/bench_video.py --vgg-weights ../shared/weights/vgg16-imagenet-caffe-features.pth \\
        --style ../shared/data/style/starry_night.jpg --json docs/video/bench.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from styler.video import metrics, synthetic
from styler.video.pipeline import VideoOptions, open_video_stylizer, stylize_video
from styler.video.temporal import FrameStylizer, TemporalSettings

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "content" / "eval"
PHOTOS = ["kodak_kodim01.png", "kodak_kodim05.png", "skimage_chelsea.png"]
#: (a) flow, (b) stats, (c) both; grid is the 4-px grid alignment; "on" is grid+flow.
ROUTES = ["off", "grid", "flow", "stats", "flow+stats", "grid+flow", "grid+flow+stats"]
CLIPS = ("handheld", "exposure", "pan")


def load(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def make_clip(kind: str, photo: np.ndarray, size: tuple[int, int] = (320, 240), frames: int = 24
              ) -> synthetic.Clip:
    return getattr(synthetic, f"{kind}_clip")(photo, size=size, frames=frames)


class Stylizers:
    """One stylizer for the routes that run on the default backend, one (eager torch) for the stats route."""

    def __init__(self, model: str | None) -> None:
        self.model = model
        self._open: dict[bool, Any] = {}

    def get(self, settings: TemporalSettings) -> Any:
        key = "stats" in settings.routes
        if key not in self._open:
            self._open[key] = open_video_stylizer(self.model, temporal=settings)
        if key:
            from styler.video.statsmooth import reset_statistics

            reset_statistics(self._open[key].model.load().net)  # every clip starts without a past
        return self._open[key]


def run_route(stylizers: Stylizers, route: str, frames: Sequence[np.ndarray], batch: int = 4) -> list[np.ndarray]:
    settings = TemporalSettings.parse(route)
    return list(FrameStylizer(stylizers.get(settings), settings, batch_size=batch).run(frames))


def motion_blind_average(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The issue's baseline: each output averaged 0.5/0.5 with the previous one, ignoring motion."""
    out = [frames[0]]
    for prev, cur in zip(frames[:-1], frames[1:]):
        out.append(((prev.astype(np.float32) + cur) / 2 + 0.5).astype(np.uint8))
    return out


class Loss:
    """The model's perceptual loss (VGG16, Caffe convention) of an output frame against its input frame."""

    def __init__(self, vgg: str, style: str, meta: dict[str, Any]) -> None:
        from styler.loss.criterion import build_criterion
        from styler.loss.lossnet import resolve_lossnet_spec

        weights = meta.get("loss_weights", {})
        self.loss = build_criterion(resolve_lossnet_spec("file", vgg), style,
                                    style_size=meta.get("training", {}).get("style_size"),
                                    content_weight=weights.get("content"), style_weight=weights.get("style"),
                                    tv_weight=weights.get("tv"), content_layer=weights.get("content_layer"),
                                    style_layers=weights.get("style_layers")).loss

    def __call__(self, outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray]) -> float:
        import torch

        from styler.loss.losses import evaluate_terms

        def tensor(frame: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(frame.astype(np.float32) / 255).permute(2, 0, 1)[None]

        return evaluate_terms(self.loss, [tensor(o) for o in outputs], [tensor(i) for i in inputs])["loss"]


def quality(stylizers: Stylizers, photos: Sequence[Path], loss: Loss | None) -> dict[str, dict[str, Any]]:
    """Per clip kind and route: raw values per photo, and means of the ratios to ``off``."""
    table: dict[str, dict[str, Any]] = {}
    for kind in CLIPS:
        rows: dict[str, list[dict[str, float]]] = {}
        for path in photos:
            clip = make_clip(kind, load(path))
            outputs = {route: run_route(stylizers, route, clip.frames) for route in ROUTES}
            if kind == "handheld":
                outputs["motion-blind 0.5/0.5 average"] = motion_blind_average(outputs["off"])
            for route, frames in outputs.items():
                row = {"flicker": metrics.flicker(frames, clip.offsets), "detail": metrics.detail(frames),
                       "global_flicker": metrics.global_flicker(frames, clip.offsets),
                       "input_flicker": metrics.flicker(clip.frames, clip.offsets)}
                if loss is not None and kind == "handheld":
                    row["loss"] = loss(frames, clip.frames)
                rows.setdefault(route, []).append(row)
            print(f"  {kind} {path.name}: off {rows['off'][-1]['flicker']:.2f}, "
                  f"on {rows['grid+flow'][-1]['flicker']:.2f}", flush=True)
        table[kind] = {route: summarize(values, rows["off"]) for route, values in rows.items()}
    return table


def summarize(values: list[dict[str, float]], base: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {"per_photo": values}
    for key in values[0]:
        out[key] = float(np.mean([v[key] for v in values]))
        if key in ("flicker", "detail", "loss"):
            out[f"{key}_ratio"] = float(np.mean([v[key] / b[key] for v, b in zip(values, base)]))
    return out


def speed(stylizers: Stylizers, photo: np.ndarray, rounds: int, routes: Sequence[str]) -> dict[str, float]:
    """Frames/s of stylizer + route at 640×360, frames in memory, rounds interleaved across routes."""
    clip = make_clip("handheld", photo, size=(640, 360), frames=12)
    for route in routes:  # warm-up: backend sessions, first-size allocations
        run_route(stylizers, route, clip.frames[:4])
    times: dict[str, list[float]] = {route: [] for route in routes}
    for _ in range(rounds):
        for route in routes:
            start = time.perf_counter()
            run_route(stylizers, route, clip.frames)
            times[route].append(time.perf_counter() - start)
    return {route: len(clip.frames) / float(np.median(t)) for route, t in times.items()}


def end_to_end(stylizers: Stylizers, photo: np.ndarray, folder: Path) -> dict[str, float]:
    """``stylize_video`` on a 640×360 H.264 + AAC file (decode, stylize, route, encode, mux)."""
    clip = make_clip("handheld", photo, size=(640, 360), frames=48)
    source = folder / "e2e.mp4"
    synthetic.write_clip(source, clip.frames, 24, audio=synthetic.tone(2.0))
    out = {}
    for route in ("off", "grid+flow"):
        settings = TemporalSettings.parse(route)
        result = stylize_video(source, folder / f"e2e_{route}.mp4", stylizers.get(settings),
                               VideoOptions(temporal=settings, force=True))
        out[route] = result.fps
    return out


def _rss_mib() -> float:
    """This process's current resident set size (Linux /proc)."""
    import os

    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _streaming_rss(source: str, target: str, queue: Any) -> None:
    stylizer = open_video_stylizer(None)
    opened = _rss_mib()
    peak = [opened]
    stylize_video(source, target, stylizer, VideoOptions(force=True), on_frame=lambda: peak.append(_rss_mib()))
    queue.put({"after_open": opened, "peak_while_streaming": max(peak),
               "process_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def memory(photo: np.ndarray, folder: Path) -> dict[str, dict[str, float]]:
    """RSS (MiB) of a fresh process stylizing a 2 s and a 10 s 320×240 clip (24 fps, with sound): after opening
    the stylizer, the largest value sampled after each written frame, and the process's peak."""
    context = multiprocessing.get_context("spawn")
    out = {}
    for seconds in (2, 2, 10):  # the first run builds and caches the backend's graph (a peak of its own)
        clip = make_clip("handheld", photo, frames=24 * seconds)
        source = folder / f"mem{seconds}.mp4"
        synthetic.write_clip(source, clip.frames, 24, audio=synthetic.tone(seconds))
        queue = context.Queue()
        process = context.Process(target=_streaming_rss,
                                  args=(str(source), str(folder / f"mem{seconds}_out.mp4"), queue))
        process.start()
        out[f"{seconds}s"] = queue.get()
        process.join()
    return out


def print_tables(table: dict[str, dict[str, Any]], fps: dict[str, float]) -> None:
    for kind, rows in table.items():
        print(f"\n{kind} (mean of {len(rows['off']['per_photo'])} photos; off: flicker "
              f"{rows['off']['flicker']:.2f}, input {rows['off']['input_flicker']:.2f})")
        print("| route | flicker | × off | detail × off | global flicker | loss × off | frames/s 640×360 |")
        print("|---|---|---|---|---|---|---|")
        for route, r in rows.items():
            loss = f"{r['loss_ratio']:.3f}" if "loss_ratio" in r else "—"
            speed_text = f"{fps[route]:.2f}" if route in fps else "—"
            print(f"| {route} | {r['flicker']:.2f} | {r['flicker_ratio']:.3f} | {r['detail_ratio']:.3f} | "
                  f"{r['global_flicker']:.2f} | {loss} | {speed_text} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", default=None, help="model [default: the default model]")
    parser.add_argument("--photos", nargs="+", type=Path, default=[EVAL / p for p in PHOTOS])
    parser.add_argument("--vgg-weights", help="VGG16 Caffe weights (loss column; skipped without)")
    parser.add_argument("--style", help="the model's style image (loss column)")
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds (median)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    stylizers = Stylizers(args.model)
    default = stylizers.get(TemporalSettings.parse("off"))
    print(f"model {default.name}, backend {default.backend}; stats routes on eager torch", flush=True)
    loss = Loss(args.vgg_weights, args.style, default.model.load().metadata) if args.vgg_weights else None
    table = quality(stylizers, args.photos, loss)
    photo = load(args.photos[0])
    fps = speed(stylizers, photo, args.rounds, ROUTES)
    with tempfile.TemporaryDirectory() as folder:
        e2e = end_to_end(stylizers, photo, Path(folder))
        rss = {} if args.skip_memory else memory(photo, Path(folder))
    print_tables(table, fps)
    print(f"\nend to end at 640×360 (decode + stylize + encode, {default.backend}): "
          + ", ".join(f"{k} {v:.2f} frames/s" for k, v in e2e.items()))
    for length, values in rss.items():
        print(f"RSS, {length} clip: " + ", ".join(f"{k} {v:.0f} MiB" for k, v in values.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"model": default.name, "backend": default.backend,
                                         "photos": [p.name for p in args.photos], "quality": table,
                                         "frames_per_second_640x360": fps, "end_to_end_640x360": e2e,
                                         "rss_mib": rss}, indent=2))


if __name__ == "__main__":
    main()
