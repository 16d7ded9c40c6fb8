#!/usr/bin/env python
"""The norm story in motion: how much each norm's network flickers on three kinds of clip, with a figure.

The five ablation models (Starry Night trained once per norm, identical settings) stylize three synthetic clips
(:mod:`styler.video.synthetic`, 24 frames at 320×240), each frame on its own (``--temporal off``) and with the
default temporal routes (``on`` = grid + flow):

* *handheld* — 1–2 px jitter, sensor noise, x264: the flicker every norm suffers from the 4-px grid;
* *exposure* — a still camera whose brightness and contrast oscillate: per-image statistics (IN, GN, LN) divide a
  global gain/offset out, batch norm's fixed running statistics pass it straight through;
* *pan* — from a bright photo (kodim20) onto a dark one (kodim05), 16 px per frame (a multiple of the grid, so the
  pan itself adds no grid flicker): per-image statistics re-normalize the new content to the style's palette,
  running statistics let the output darken with the photo.

Numbers per norm and clip: flicker (aligned mean |Δ|, 8-bit), its global part (the change of the mean colour of
the scene region two consecutive frames share: exposure pumping, or the re-toning of content that stayed in view
when new content entered), and *leak*, that global part divided by the input's own (how much of the input's
brightness change reaches the output). The series of mean output luma per frame goes into the JSON and the plot.

Outputs: ``norms.json``, ``norms_flicker.png`` (bars and per-frame luma) and ``norms_strip.jpg`` (per clip and
norm: three consecutive frames where the clip changes most and the aligned temporal-difference maps between them;
one more row per clip shows IN with the default ``--temporal on``).

    python scripts/video_norms.py --out docs/video
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from styler.evidence.figures import image_grid
from styler.video import metrics, synthetic
from styler.video.pipeline import open_video_stylizer
from styler.video.temporal import FrameStylizer, TemporalSettings

EVAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "content" / "eval"
NORMS = ["in", "bn", "gn", "ln", "sn"]
LABELS = {"in": "IN", "bn": "BN", "gn": "GN (G=8)", "ln": "LN", "sn": "SN (BN branch)"}
SIZE = (320, 240)
FRAMES = 24
#: Frames shown in the strip per clip (consecutive, so the difference maps are those the flicker averages): the
#: exposure's steepest change, the pan across the seam between the two photos.
SHOWN = {"handheld": (2, 3, 4), "exposure": (1, 2, 3), "pan": (12, 13, 14)}
#: |Δ| shown at full brightness in the difference maps (8-bit levels).
DIFF_RANGE = 40.0


def load(name: str) -> np.ndarray:
    return np.asarray(Image.open(EVAL / name).convert("RGB"))


def two_photo_pan(bright: np.ndarray, dark: np.ndarray, speed: int = 16) -> synthetic.Clip:
    """A pan from one photo onto another placed to its right (both scaled to the clip's height)."""
    height = SIZE[1]

    def scaled(photo: np.ndarray) -> np.ndarray:
        img = Image.fromarray(photo)
        return np.asarray(img.resize((round(img.width * height / img.height), height), Image.Resampling.LANCZOS))

    scene = np.concatenate([scaled(bright), scaled(dark)], axis=1)
    offsets = synthetic.pan_offsets(FRAMES, speed)
    if offsets[-1][1] + SIZE[0] > scene.shape[1]:
        raise ValueError("the two photos are too narrow for this pan")
    rng = np.random.default_rng(0)
    frames = [np.ascontiguousarray(scene[:, x:x + SIZE[0]]) for _, x in offsets]
    return synthetic.Clip("pan", synthetic.x264_roundtrip(synthetic.sensor_noise(frames, 2 / 255, rng)), offsets)


def clips(photo: str) -> dict[str, synthetic.Clip]:
    base = load(photo)
    return {"handheld": synthetic.handheld_clip(base, size=SIZE, frames=FRAMES),
            "exposure": synthetic.exposure_clip(base, size=SIZE, frames=FRAMES),
            "pan": two_photo_pan(load("kodak_kodim20.png"), load("kodak_kodim05.png"))}


def mean_luma(frames: Sequence[np.ndarray]) -> list[float]:
    return [float((metrics.as_8bit(f) @ np.array([0.299, 0.587, 0.114])).mean()) for f in frames]


def stylize(stylizer: Any, clip: synthetic.Clip, route: str) -> list[np.ndarray]:
    return list(FrameStylizer(stylizer, TemporalSettings.parse(route), batch_size=4).run(clip.frames))


def measure(clip: synthetic.Clip, outputs: dict[str, list[np.ndarray]]) -> dict[str, Any]:
    source = metrics.global_flicker(clip.frames, clip.offsets)
    results: dict[str, Any] = {}
    for route, frames in outputs.items():
        part = metrics.global_flicker(frames, clip.offsets)
        results[route] = {"flicker": metrics.flicker(frames, clip.offsets), "global_flicker": part,
                          "leak": part / source, "mean_luma": mean_luma(frames)}
    return results


def describe_input(clip: synthetic.Clip) -> dict[str, Any]:
    return {"flicker": metrics.flicker(clip.frames, clip.offsets),
            "global_flicker": metrics.global_flicker(clip.frames, clip.offsets), "mean_luma": mean_luma(clip.frames)}


def heat(diff: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A difference map as a colour image (magma, 0..DIFF_RANGE levels), centred on a frame-sized canvas."""
    from matplotlib import colormaps

    rgb = (colormaps["magma"](np.clip(diff / DIFF_RANGE, 0, 1))[..., :3] * 255).astype(np.uint8)
    canvas = Image.new("RGB", size, (0, 0, 0))
    tile = Image.fromarray(rgb)
    canvas.paste(tile, ((size[0] - tile.width) // 2, (size[1] - tile.height) // 2))
    return canvas


def strip_rows(clip: synthetic.Clip, outputs: Sequence[np.ndarray]) -> list[Image.Image]:
    """Three consecutive output frames, then the aligned |Δ| maps from each one's predecessor."""
    shown = SHOWN[clip.name]
    row = [Image.fromarray(outputs[t]) for t in shown]
    for t in shown:
        diff = metrics.difference_map(outputs[t - 1], outputs[t], clip.offsets[t - 1], clip.offsets[t])
        row.append(heat(diff, SIZE))
    return row


def figure(numbers: dict[str, Any], inputs: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(inputs)
    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    width = 0.8 / len(NORMS)
    for ax, key, title in ((axes[0, 0], "flicker", "flicker: aligned mean |Δ| of consecutive frames (8-bit)"),
                           (axes[0, 1], "global_flicker", "its global part: change of the mean colour")):
        for i, norm in enumerate(NORMS):
            values = [numbers[norm][kind]["off"][key] for kind in kinds]
            ax.bar(np.arange(len(kinds)) + (i - (len(NORMS) - 1) / 2) * width, values, width, label=LABELS[norm])
        ax.set_xticks(np.arange(len(kinds)), [f"{k}\n(input {inputs[k][key]:.1f})" for k in kinds])
        ax.set_title(title, fontsize=10)
    axes[0, 0].legend(fontsize=8)
    for ax, kind in ((axes[1, 0], "exposure"), (axes[1, 1], "pan")):
        for norm in NORMS:
            ax.plot(numbers[norm][kind]["off"]["mean_luma"], label=LABELS[norm])
        twin = ax.twinx()
        twin.plot(inputs[kind]["mean_luma"], "k--", linewidth=1, label="input (right axis)")
        twin.set_ylabel("input mean luma", fontsize=8)
        twin.legend(loc="lower left", fontsize=8)
        ax.set_xlabel("frame")
        ax.set_ylabel("output mean luma")
        ax.set_title(f"{kind}: mean luma of each output frame", fontsize=10)
    fig.suptitle("Per-frame stylization (--temporal off) by norm: Starry Night ablation models, 320×240, "
                 f"{FRAMES} frames")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photo", default="kodak_kodim01.png", help="held-out photo of the handheld/exposure clips")
    parser.add_argument("--out", type=Path, default=Path("docs/video"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    scenes = clips(args.photo)
    inputs = {kind: describe_input(clip) for kind, clip in scenes.items()}
    numbers: dict[str, Any] = {}
    strips: dict[str, list[tuple[str, list[Image.Image | None]]]] = {
        kind: [("input", [Image.fromarray(clip.frames[t]) for t in SHOWN[kind]] + [None] * 3)]
        for kind, clip in scenes.items()}
    for norm in NORMS:
        stylizer = open_video_stylizer(f"starry_night_{norm}")
        numbers[norm] = {}
        for kind, clip in scenes.items():
            outputs = {route: stylize(stylizer, clip, route) for route in ("off", "on")}
            numbers[norm][kind] = measure(clip, outputs)
            strips[kind].append((LABELS[norm], strip_rows(clip, outputs["off"])))  # type: ignore[arg-type]
            if norm == "in":
                strips[kind].append(("IN, temporal on", strip_rows(clip, outputs["on"])))  # type: ignore[arg-type]
            r = numbers[norm][kind]
            print(f"{LABELS[norm]:>14} {kind:>8}: flicker off {r['off']['flicker']:.2f} on {r['on']['flicker']:.2f}, "
                  f"global {r['off']['global_flicker']:.2f}, leak {r['off']['leak']:.3f}", flush=True)
    rows = [(f"{kind}\n{label}", images) for kind in scenes for label, images in strips[kind]]
    grid = image_grid([images for _, images in rows], cell=176, row_labels=[label for label, _ in rows],
                      col_labels=["frame t−1", "frame t", "frame t+1"] + [f"|Δ| (0..{DIFF_RANGE:.0f})"] * 3,
                      title="Stylized frames (--temporal off unless marked) and aligned temporal differences "
                            "(handheld: frames 2-4, exposure: 1-3, pan: 12-14, across the seam of the two photos)")
    grid.save(args.out / "norms_strip.jpg", quality=88, optimize=True)
    figure(numbers, inputs, args.out / "norms_flicker.png")
    (args.out / "norms.json").write_text(json.dumps({"photo": args.photo, "size": SIZE, "frames": FRAMES,
                                                     "inputs": inputs, "norms": numbers}, indent=2))
    print("\n| norm | " + " | ".join(f"{k}: flicker off / on, global" for k in scenes) + " | exposure leak |")
    print("|---|" + "---|" * (len(scenes) + 1))
    print("| input | " + " | ".join(f"{inputs[k]['flicker']:.2f}, {inputs[k]['global_flicker']:.2f}" for k in scenes)
          + " | |")
    for norm in NORMS:
        cells = [f"{numbers[norm][k]['off']['flicker']:.2f} / {numbers[norm][k]['on']['flicker']:.2f}, "
                 f"{numbers[norm][k]['off']['global_flicker']:.2f}" for k in scenes]
        print(f"| {LABELS[norm]} | " + " | ".join(cells) + f" | {numbers[norm]['exposure']['off']['leak']:.3f} |")


if __name__ == "__main__":
    main()
