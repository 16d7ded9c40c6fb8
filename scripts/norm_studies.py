#!/usr/bin/env python
"""The norm studies of the ablation report, chapter two: train small networks on identical settings and measure.

1. batch_size_study: BN and IN at batch sizes 1, 2, 4, 8, the same number of images seen (so fewer, larger steps
   at larger batches, one learning rate): held-out loss, train/eval gap, batch-mate sensitivity; and BN at batch 1
   in train mode against the same network with instance norm (Ulyanov's remark), and what eval mode does.
2. group_sweep: group norm with 1 (= IN), 2, 4, 8 channels per group and all channels (= LN) in every layer:
   held-out loss, brightness/contrast sensitivity, speed.
3. convergence: loss against images seen for IN, BN, GN, LN and SN at batch 4; images needed to reach a fixed loss.
4. style_normalization: Huang & Belongie's experiment (AdaIN, Fig. 1): IN and BN style-loss curves when the
   training photos are (a) as they are, (b) contrast-normalized, (c) style-normalized (first stylized to one common
   style by a bundled model).
5. sn_over_training: switchable norm's learned IN/LN/BN weights per layer against steps.

Every run is a plain ``styler train`` (one subprocess each, resumed from its checkpoint if interrupted, skipped if its
model exists), so each result can be reproduced with the command stored in its model file. Then the measurements go
into ``<out>/measurements.json`` (merged: the report's own keys are kept), the figures into ``<out>/studies/``, and a
section into ``<out>/report.md`` (replacing an earlier one).

    python scripts/norm_studies.py --runs /tmp/norm-studies --data ../shared/data \
        --vgg-weights ../shared/weights/vgg16-imagenet-caffe-features.pth --out docs/ablation --threads 2

``--speed`` only re-measures the group sweep's forward times (run it on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from styler.errors import StylerError
from styler.evidence.figures import image_grid, save_figure
from styler.evidence.gap import train_eval_gap
from styler.evidence.models import as_loaded
from styler.evidence.photos import load_photos
from styler.evidence.report import STUDIES_MARKER as REPORT_MARKER
from styler.evidence.report import replace_section
from styler.evidence.studies import (
    batch_mate_sensitivity,
    batch_one_instance_norm_check,
    heldout_terms,
    images_to_reach,
    intensity_sensitivity,
    loss_curve,
    median_seconds,
    sn_weight_history,
    tail_mean,
)
from styler.io.images import find_images
from styler.io.modelfile import load_model
from styler.loss.criterion import build_criterion
from styler.loss.lossnet import resolve_lossnet_spec
from styler.train.data import resize_short_side
from styler.train.metadata import hardware_description

STYLE = "starry_night"
DATASET_SHORT_SIDE = 160
NORMALIZING_MODEL = "the_scream_in"  # the common style of the style-normalized photos (not the training style)


@dataclass(frozen=True)
class Run:
    name: str
    norm: str
    batch: int = 4
    dataset: str = "photos"
    extra: tuple[str, ...] = ()
    label: str = ""


def plan(images: int) -> list[Run]:
    runs = [Run(f"{n}_b{b}", n, b, label=f"{n.upper()[:2]} batch {b}")
            for n in ("bn", "in") for b in (1, 2, 4, 8)]
    runs += [Run("ln_b4", "ln", label="LN (all channels)")]
    runs += [Run(f"gn{c}_b4", "gn", extra=("--group-size", str(c)), label=f"GN {c} ch/group") for c in (2, 4, 8)]
    runs += [Run("sn_b4", "sn", extra=("--sn-using-bn",), label="SN+BN")]
    runs += [Run(f"{n}_b4_{d}", n, dataset=d, label=f"{n.upper()} {d}") for d in ("contrast", "style")
             for n in ("in", "bn")]
    return runs


@dataclass
class Context:
    args: argparse.Namespace
    runs_dir: Path
    images: int


# --- data -------------------------------------------------------------------------------------------------------

def _write_png(rgb: np.ndarray, path: Path) -> None:
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)).save(tmp, compress_level=1)
    tmp.replace(path)


def contrast_normalize(rgb: np.ndarray, mean: float = 0.5, std: float = 0.2) -> np.ndarray:
    """Every channel of the photo moved to one mean and standard deviation (then clipped to [0, 1]): the photos
    keep their content but lose their own brightness and contrast."""
    flat = rgb.reshape(-1, 3)
    out = (rgb - flat.mean(0)) / np.maximum(flat.std(0), 1e-3) * std + mean
    return np.clip(out, 0.0, 1.0)


def prepare_datasets(ctx: Context) -> dict[str, Path]:
    """The training photos at one short side, and their contrast- and style-normalized versions (cached)."""
    from tqdm import tqdm

    source = Path(ctx.args.data) / "content" / "train"
    folders = {name: ctx.runs_dir / "datasets" / name for name in ("photos", "contrast", "style")}
    files = find_images(source)
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    normalizer = as_loaded(NORMALIZING_MODEL).net.eval()  # a bundled model, found by name
    for path in tqdm(files, desc="datasets", unit="photo"):
        name = Path(path).stem + ".png"
        if all((f / name).exists() for f in folders.values()):
            continue
        img = resize_short_side(Image.open(path).convert("RGB"), DATASET_SHORT_SIDE)
        rgb = np.asarray(img, dtype=np.float32) / 255.0
        _write_png(rgb, folders["photos"] / name)
        _write_png(contrast_normalize(rgb), folders["contrast"] / name)
        with torch.no_grad():
            styled = normalizer(torch.from_numpy(rgb).permute(2, 0, 1)[None]).clamp(0, 1)[0].permute(1, 2, 0)
        _write_png(styled.numpy(), folders["style"] / name)
    return folders


# --- training -----------------------------------------------------------------------------------------------------

def train_command(ctx: Context, run: Run, dataset: Path) -> list[str]:
    args = ctx.args
    return [sys.executable, "-m", "styler", "train", "-s", str(Path(args.data) / "style" / f"{STYLE}.jpg"),
            "-d", str(dataset), "-o", str(ctx.runs_dir / f"{run.name}.safetensors"), "--norm", run.norm,
            *run.extra, "--width", "16", "--image-size", "128", "--style-size", "256",
            "--batch-size", str(run.batch), "--iterations", str(ctx.images // run.batch), "--seed", "42",
            "--checkpoint-interval", "100", "--preview-interval", "0", "--log-interval", "10",
            "--vgg-weights", args.vgg_weights, "--threads", str(args.threads), "--quiet"]


def train_all(ctx: Context, runs: list[Run], datasets: dict[str, Path]) -> None:
    for index, run in enumerate(runs, 1):
        model = ctx.runs_dir / f"{run.name}.safetensors"
        if model.exists():
            continue
        checkpoint = model.with_suffix(".run") / "checkpoint.pth"
        command = (train_command(ctx, run, datasets[run.dataset]) if not checkpoint.exists() else
                   [sys.executable, "-m", "styler", "train", "--resume", str(checkpoint), "-o", str(model),
                    "--threads", str(ctx.args.threads), "--quiet"])
        print(f"[{index}/{len(runs)}] {run.name}: {' '.join(command[2:])}", flush=True)
        with open(ctx.runs_dir / f"{run.name}.out", "a") as out:
            subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT)


def run_log(ctx: Context, run: Run) -> list[dict[str, Any]]:
    path = ctx.runs_dir / f"{run.name}.run" / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- measuring ------------------------------------------------------------------------------------------------

def measure(ctx: Context, runs: list[Run]) -> dict[str, Any]:
    from tqdm import tqdm

    args = ctx.args
    eval_dir = Path(args.data) / "content" / "eval"
    heldout = load_photos([eval_dir], 256)[: args.heldout_photos]
    square = load_photos([eval_dir], 256, square=True)
    target, mates = square[0], {p.name: p.tensor for p in square[1:4]}
    criterion = build_criterion(resolve_lossnet_spec("file", args.vgg_weights),
                                Path(args.data) / "style" / f"{STYLE}.jpg", style_size=256).loss
    per_run: dict[str, Any] = {}
    for run in tqdm(runs, desc="measuring", unit="model"):
        loaded = load_model(ctx.runs_dir / f"{run.name}.safetensors")
        records = run_log(ctx, run)
        row: dict[str, Any] = {"norm": loaded.arch.norm.short_name, "batch_size": run.batch,
                               "dataset": run.dataset, "images_seen": ctx.images,
                               "steps": ctx.images // run.batch,
                               "heldout": heldout_terms(loaded, criterion, heldout)}
        curve = loss_curve(records, run.batch)
        row["train_loss_final"] = tail_mean(curve)
        row["train_style_final"] = tail_mean(loss_curve(records, run.batch, "style"))
        gaps = train_eval_gap(loaded, square[:4])
        row["train_eval_gap_max_abs"] = max(g.max_abs for g in gaps)
        row["train_eval_gap_mean_abs"] = max(g.mean_abs for g in gaps)
        row["batch_mates"] = batch_mate_sensitivity(loaded, target, mates)
        row["intensity"] = intensity_sensitivity(loaded, target)
        if run.norm == "bn" and run.dataset == "photos":
            row["heldout_train_mode_alone"] = heldout_terms(loaded, criterion, heldout, mode="train")
            row["batch_one_vs_instance_norm"] = batch_one_instance_norm_check(loaded, square[:4])
        per_run[run.name] = row
    return per_run


def measure_speed(ctx: Context, runs: list[Run]) -> dict[str, float]:
    """Median eager-torch fp32 forward time at 512² for each group-sweep network (and IN), in ms."""
    torch.set_num_threads(ctx.args.threads)
    x = torch.rand(1, 3, 512, 512)
    speed = {}
    for run in runs:
        net = load_model(ctx.runs_dir / f"{run.name}.safetensors").net.eval()
        with torch.no_grad():
            speed[run.name] = round(1000 * median_seconds(lambda net=net: net(x)), 1)
    return speed


# --- assembling ---------------------------------------------------------------------------------------------------

def _compact(terms: dict[str, float]) -> dict[str, float]:
    return {k: float(f"{v:.5g}") for k, v in terms.items()}


def summarize(ctx: Context, runs: list[Run], per_run: dict[str, Any], speed: dict[str, float]) -> dict[str, Any]:
    by = {r.name: r for r in runs}
    batch_study: dict[str, dict[str, Any]] = {}
    for norm in ("bn", "in"):
        for b in (1, 2, 4, 8):
            row = per_run[f"{norm}_b{b}"]
            entry = {"steps": row["steps"], "heldout_loss": row["heldout"]["loss"],
                     "heldout_style": row["heldout"]["style"], "heldout_content": row["heldout"]["content"],
                     "train_loss_final": row["train_loss_final"],
                     "train_eval_gap_max_abs": row["train_eval_gap_max_abs"],
                     "train_eval_gap_mean_abs": row["train_eval_gap_mean_abs"],
                     "batch_mate_train_relative_max": row["batch_mates"]["train_relative_max"],
                     "batch_mate_eval_relative_max": row["batch_mates"]["eval_relative_max"]}
            if norm == "bn":
                entry["heldout_loss_train_mode_alone"] = row["heldout_train_mode_alone"]["loss"]
                entry.update(row["batch_one_vs_instance_norm"])
            batch_study.setdefault(norm.upper(), {})[str(b)] = entry
    sweep_runs = {"1 (IN)": "in_b4", "2": "gn2_b4", "4": "gn4_b4", "8": "gn8_b4", "all (LN)": "ln_b4"}
    group_sweep = {}
    for label, name in sweep_runs.items():
        row = per_run[name]
        group_sweep[label] = {"run": name, "norm": row["norm"], "heldout_loss": row["heldout"]["loss"],
                              "heldout_style": row["heldout"]["style"], "heldout_content": row["heldout"]["content"],
                              **row["intensity"], "forward_ms_512": speed.get(name)}
    conv_runs = {"IN": "in_b4", "BN": "bn_b4", "GN 8 ch": "gn8_b4", "LN": "ln_b4", "SN+BN": "sn_b4"}
    curves = {label: loss_curve(run_log(ctx, by[name]), 4) for label, name in conv_runs.items()}
    finals = {label: tail_mean(c) for label, c in curves.items()}
    thresholds = {"loose (every norm's final loss)": max(finals.values()),
                  "tight (1.1 × the best final loss)": 1.1 * min(finals.values())}
    convergence = {"window_images": 200, "finals": finals,
                   "thresholds": {name: {"loss": value, "images_needed": {label: images_to_reach(c, value)
                                                                          for label, c in curves.items()}}
                                  for name, value in thresholds.items()}}
    style_norm: dict[str, Any] = {}
    for dataset, suffix in (("photos", ""), ("contrast", "_contrast"), ("style", "_style")):
        entry = {}
        for norm in ("in", "bn"):
            name = f"{norm}_b4{suffix}"
            entry[norm.upper()] = {"run": name, "train_style_final": per_run[name]["train_style_final"],
                                   "heldout_style": per_run[name]["heldout"]["style"]}
        entry["bn_over_in_train_style"] = entry["BN"]["train_style_final"] / entry["IN"]["train_style_final"]
        style_norm[dataset] = entry
    sn = sn_weight_history(run_log(ctx, by["sn_b4"]))
    final_sn = {layer: {kind: points[-1][1] for kind, points in kinds.items()} for layer, kinds in sn.items()}
    return {"batch_size_study": batch_study, "group_sweep": group_sweep, "convergence": convergence,
            "style_normalization": style_norm, "sn_over_training": {"final_weights": final_sn},
            "_curves": curves, "_sn_history": sn}


def settings(ctx: Context) -> dict[str, Any]:
    return {"style": STYLE, "images_seen": ctx.images, "image_size": 128, "width": 16, "style_size": 256,
            "lr": 1e-3, "seed": 42, "dataset": f"../shared/data/content/train at short side {DATASET_SHORT_SIDE}",
            "heldout": f"../shared/data/content/eval ({ctx.args.heldout_photos} photos, long side 256, eval mode)",
            "style_normalizing_model": NORMALIZING_MODEL, "machine": hardware_description(torch.device("cpu")),
            "threads": ctx.args.threads, "torch": torch.__version__}


# --- figures -------------------------------------------------------------------------------------------------------

def figures(ctx: Context, summary: dict[str, Any], out: Path) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = out / "studies"
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    study = summary["batch_size_study"]
    sizes = [1, 2, 4, 8]
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.6))
    for norm, colour in (("IN", "#d62728"), ("BN", "#7f7f7f")):
        axes[0].plot(sizes, [study[norm][str(b)]["heldout_loss"] for b in sizes], "o-", color=colour,
                     label=f"{norm} (eval mode)")
        floor_note = " (exact 0 drawn at 1e-9)" if norm == "IN" else ""
        axes[1].plot(sizes, [max(study[norm][str(b)]["batch_mate_train_relative_max"], 1e-9) for b in sizes], "o-",
                     color=colour, label=f"{norm}, train mode{floor_note}")
        axes[2].plot(sizes, [max(study[norm][str(b)]["train_eval_gap_max_abs"], 1e-9) for b in sizes], "o-",
                     color=colour, label=f"{norm}{floor_note}")
    axes[0].plot(sizes, [study["BN"][str(b)]["heldout_loss_train_mode_alone"] for b in sizes], "o--",
                 color="#7f7f7f", label="BN, train mode alone (= IN statistics)")
    axes[0].set_title("held-out loss (lower is better)")
    axes[1].set_title("batch-mate sensitivity: max |Δ| / max |out|")
    axes[2].set_title("train/eval gap: max |Δ|")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.set_xlabel(f"batch size ({ctx.images} images seen each)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    axes[1].set_yscale("log")
    axes[2].set_yscale("log")
    paths["batch_size"] = save_figure(fig, folder / "batch_size.png")

    sweep = summary["group_sweep"]
    labels = list(sweep)
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.6))
    axes[0].plot(labels, [sweep[k]["heldout_loss"] for k in labels], "o-", color="#1f77b4")
    axes[0].set_title("held-out loss")
    axes[1].plot(labels, [sweep[k]["brightness_relative_max"] for k in labels], "o-", label="brightness (A + b)")
    axes[1].plot(labels, [sweep[k]["contrast_relative_max"] for k in labels], "s-", label="contrast (a·A)")
    axes[1].set_yscale("log")
    axes[1].set_title("intensity sensitivity: max rel. |Δ|")
    axes[1].legend(fontsize=7)
    if all(sweep[k]["forward_ms_512"] for k in labels):
        axes[2].bar(labels, [sweep[k]["forward_ms_512"] for k in labels], color="#2ca02c")
    axes[2].set_title("forward ms at 512² (torch fp32)")
    for ax in axes:
        ax.set_xlabel("channels per group")
        ax.grid(True, alpha=0.3)
    paths["group_sweep"] = save_figure(fig, folder / "group_sweep.png")

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for label, curve in summary["_curves"].items():
        ax.plot(*zip(*curve), label=label, linewidth=1.3)
    for name, entry in summary["convergence"]["thresholds"].items():
        ax.axhline(entry["loss"], color="k", linestyle=":", linewidth=0.8)
        ax.annotate(name, (0, entry["loss"]), fontsize=7, va="bottom")
    ax.set_yscale("log")
    ax.set_xlabel("images seen")
    ax.set_ylabel("training loss (200-image trailing mean)")
    ax.set_title("Convergence at batch 4, identical data order")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    paths["convergence"] = save_figure(fig, folder / "convergence.png")

    fig, axes = plt.subplots(1, 3, figsize=(13.5, 3.6), sharey=True)
    titles = {"photos": "(a) photos", "contrast": "(b) contrast-normalized", "style": "(c) style-normalized"}
    for ax, (dataset, suffix) in zip(axes, (("photos", ""), ("contrast", "_contrast"), ("style", "_style"))):
        for norm, colour in (("in", "#d62728"), ("bn", "#7f7f7f")):
            run = Run(f"{norm}_b4{suffix}", norm)
            ax.plot(*zip(*loss_curve(run_log(ctx, run), 4, "style")), color=colour, label=norm.upper())
        ratio = summary["style_normalization"][dataset]["bn_over_in_train_style"]
        ax.set_title(f"{titles[dataset]}: BN/IN final {ratio:.2f}×")
        ax.set_yscale("log")
        ax.set_xlabel("images seen")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("style loss (training)")
    paths["style_normalization"] = save_figure(fig, folder / "style_normalization.png")

    history = summary["_sn_history"]
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 6.2), sharex=True, sharey=True)
    cmap = plt.get_cmap("viridis")
    layers = list(history)
    for row, kind in enumerate(("mean", "var")):
        for col, branch in enumerate(("in", "ln", "bn")):
            ax = axes[row][col]
            for i, layer in enumerate(layers):
                points = history[layer][kind]
                ax.plot([s for s, _ in points], [w.get(branch, 0.0) for _, w in points],
                        color=cmap(i / max(1, len(layers) - 1)), linewidth=1.0,
                        label=layer.replace(".norm", "") if row == 0 and col == 0 else None)
                ax.plot([points[-1][0]], [points[-1][1].get(branch, 0.0)], ".", color=cmap(i / max(1, len(layers) - 1)))
            ax.set_title(f"{branch.upper()} weight of the {'means' if kind == 'mean' else 'variances'}")
            ax.grid(True, alpha=0.3)
            ax.set_ylim(0, 1)
    for ax in axes[1]:
        ax.set_xlabel("step (batch 4)")
    fig.legend(loc="center right", fontsize=7, title="layer (input → output)", title_fontsize=7)
    fig.suptitle("Switchable norm (with its BN branch): learned softmax weights per layer during training")
    paths["sn_over_training"] = save_figure(fig, folder / "sn_over_training.png", rect=(0, 0, 0.86, 1))

    datasets = {name: ctx.runs_dir / "datasets" / name for name in ("photos", "contrast", "style")}
    every = sorted(p.name for p in datasets["photos"].glob("*.png"))
    names = every[:: max(1, len(every) // 5)][:5]  # spread over the folder (its photos are grouped by source)
    grid = [[Image.open(datasets[d] / n).convert("RGB") for n in names] for d in datasets]
    sample = image_grid(grid, cell=160, row_labels=["(a) photos", "(b) contrast-\nnormalized",
                                                    f"(c) style-\nnormalized\n({NORMALIZING_MODEL})"],
                        title="Training photos of the style-normalization study")
    sample.save(folder / "style_normalization_data.png")
    paths["style_normalization_data"] = folder / "style_normalization_data.png"
    return paths


# --- writing --------------------------------------------------------------------------------------------------------

def _fmt(value: Any) -> str:
    if value is None:
        return "not reached"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    return str(value)


def report_section(ctx: Context, summary: dict[str, Any], paths: dict[str, Path], out: Path) -> str:
    rel = {k: p.relative_to(out).as_posix() for k, p in paths.items()}
    s = settings(ctx)
    lines = [REPORT_MARKER, "", "## Norm studies", "",
             f"Every run: {STYLE}, width 16, 128-px crops, {ctx.images} images seen, learning rate 1e-3, seed 42 "
             "(the same photos in the same order at every batch size), bf16 autocast on the CPU, "
             f"{s['machine']}; held-out numbers on {ctx.args.heldout_photos} eval photos "
             "(long side 256, eval mode). Reproduce: "
             "`python scripts/norm_studies.py --runs DIR --vgg-weights VGG --data ../shared/data --out docs/ablation "
             "--findings docs/ablation/studies_findings.md` (about 1 h on these 2 cores).",
             "", "### Batch norm and batch size", "", f"![batch size]({rel['batch_size']})", "",
             "| norm | batch | steps | held-out loss | BN train mode alone | train/eval gap max | batch-mate Δ (train) "
             "| BN@1 train vs IN twin | eval vs IN twin |", "|---|---|---|---|---|---|---|---|---|"]
    for norm, by_size in summary["batch_size_study"].items():
        for b, e in by_size.items():
            lines.append(f"| {norm} | {b} | {e['steps']} | {_fmt(e['heldout_loss'])} | "
                         f"{_fmt(e.get('heldout_loss_train_mode_alone', '—'))} | {_fmt(e['train_eval_gap_max_abs'])} | "
                         f"{_fmt(e['batch_mate_train_relative_max'])} | "
                         f"{_fmt(e.get('train_batch1_vs_in_relative', '—'))} | "
                         f"{_fmt(e.get('eval_vs_in_relative', '—'))} |")
    lines += ["", "### Group norm from LN to IN", "", f"![group sweep]({rel['group_sweep']})", "",
              "| channels per group | held-out loss | style | content | brightness Δ | contrast Δ | forward ms 512² |",
              "|---|---|---|---|---|---|---|"]
    for label, e in summary["group_sweep"].items():
        lines.append(f"| {label} | {_fmt(e['heldout_loss'])} | {_fmt(e['heldout_style'])} | "
                     f"{_fmt(e['heldout_content'])} | {_fmt(e['brightness_relative_max'])} | "
                     f"{_fmt(e['contrast_relative_max'])} | {_fmt(e['forward_ms_512'])} |")
    conv = summary["convergence"]
    lines += ["", "### Convergence", "", f"![convergence]({rel['convergence']})", "",
              "| norm | final training loss | " + " | ".join(f"images to {name} {_fmt(t['loss'])}"
                                                           for name, t in conv["thresholds"].items()) + " |",
              "|---|---|" + "---|" * len(conv["thresholds"])]
    for label, final in conv["finals"].items():
        lines.append(f"| {label} | {_fmt(final)} | " + " | ".join(_fmt(t["images_needed"][label])
                                                               for t in conv["thresholds"].values()) + " |")
    lines += ["", "### Is instance norm style normalization? (Huang & Belongie)", "",
              f"![training data]({rel['style_normalization_data']})", "",
              f"![style loss]({rel['style_normalization']})", "",
              "| training photos | IN final style loss | BN final style loss | BN / IN | held-out style IN | BN |",
              "|---|---|---|---|---|---|"]
    for dataset, e in summary["style_normalization"].items():
        lines.append(f"| {dataset} | {_fmt(e['IN']['train_style_final'])} | {_fmt(e['BN']['train_style_final'])} | "
                     f"{e['bn_over_in_train_style']:.2f} | {_fmt(e['IN']['heldout_style'])} | "
                     f"{_fmt(e['BN']['heldout_style'])} |")
    lines += ["", "### Switchable norm over training", "", f"![SN weights]({rel['sn_over_training']})", ""]
    findings = Path(ctx.args.findings).read_text() if ctx.args.findings else ""
    if findings:
        lines += ["### What the studies show", "", findings.strip(), ""]
    return "\n".join(lines) + "\n"


def write_outputs(ctx: Context, summary: dict[str, Any], paths: dict[str, Path], out: Path) -> None:
    measurements = out / "measurements.json"
    data = json.loads(measurements.read_text()) if measurements.exists() else {}
    data.update({k: v for k, v in summary.items() if not k.startswith("_")})
    data["norm_studies_settings"] = settings(ctx)
    tmp = measurements.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    tmp.replace(measurements)
    report = out / "report.md"
    text = report.read_text() if report.exists() else "# Normalization ablation\n"
    section = report_section(ctx, summary, paths, out).split(REPORT_MARKER, 1)[-1]
    tmp = report.with_suffix(".tmp")
    tmp.write_text(replace_section(text, REPORT_MARKER, section))
    tmp.replace(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, help="folder for the datasets, runs and models (outside the repo)")
    parser.add_argument("--data", required=True, help="the reference data folder (content/train, content/eval, style)")
    parser.add_argument("--vgg-weights", required=True)
    parser.add_argument("--out", default="docs/ablation")
    parser.add_argument("--images", type=int, default=1200, help="images seen by every run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heldout-photos", type=int, default=20, help="how many eval photos score each model")
    parser.add_argument("--train-only", action="store_true", help="train the runs, measure nothing")
    parser.add_argument("--speed", action="store_true", help="(re-)measure the group sweep's forward times")
    parser.add_argument("--findings", help="a Markdown file with the findings, put under the tables")
    args = parser.parse_args()
    ctx = Context(args=args, runs_dir=Path(args.runs), images=args.images)
    torch.set_num_threads(args.threads)
    ctx.runs_dir.mkdir(parents=True, exist_ok=True)
    runs = plan(args.images)
    if any(args.images % r.batch for r in runs):
        raise StylerError("--images must be a multiple of 8 (the largest batch)")
    datasets = prepare_datasets(ctx)
    train_all(ctx, runs, datasets)
    if args.train_only:
        return
    cache = ctx.runs_dir / "measured.json"
    per_run = json.loads(cache.read_text()) if cache.exists() else {}
    missing = [r for r in runs if r.name not in per_run]
    if missing:
        per_run.update(measure(ctx, missing))
        cache.write_text(json.dumps(per_run, indent=1, default=float))
    speed_file = ctx.runs_dir / "speed.json"
    sweep = [r for r in runs if r.name in ("in_b4", "gn2_b4", "gn4_b4", "gn8_b4", "ln_b4")]
    if args.speed:
        speed_file.write_text(json.dumps(measure_speed(ctx, sweep), indent=1))
    speed = json.loads(speed_file.read_text()) if speed_file.exists() else {}
    summary = summarize(ctx, runs, per_run, speed)
    out = Path(args.out)
    paths = figures(ctx, summary, out)
    write_outputs(ctx, summary, paths, out)
    print(json.dumps({k: v for k, v in summary.items() if not k.startswith("_")}, indent=1, default=float)[:4000])


if __name__ == "__main__":
    main()
