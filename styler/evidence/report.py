"""The norm-ablation report: one folder (Markdown + PNGs) or one self-contained HTML file, built from model files.

Sections: the models; the comparison grid; batch independence (figure and table); contrast/brightness sensitivity
(Ulyanov's argument, figure and table); the train/eval gap of BN/SN; training loss curves side by side (from each
model's ``<model>.run/log.jsonl`` when present); switchable norm's learned IN/LN/BN weights per layer; and what each
norm normalizes over, tied to the measured numbers. All measurements come from :mod:`styler.evidence.ablation`.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from styler.evidence import ablation as A
from styler.errors import StylerError
from styler.io.modelfile import LoadedModel

__all__ = ["ReportOptions", "ReportResult", "build_report", "NORM_AXES"]

#: What each norm normalizes over (NCHW), for the explanation section.
NORM_AXES: dict[str, str] = {
    "batch": "N, H, W: one mean/variance per channel, shared by every image of the batch (running averages in eval)",
    "layer": "C, H, W: one mean/variance per image, shared by all its channels (GroupNorm(1, C))",
    "instance": "H, W: one mean/variance per image *and* channel",
    "group": "C/G, H, W: one mean/variance per image and group of C/G channels",
    "switchable": "a learned softmax mix of the IN, LN (and, with its BN branch, BN) statistics",
    "none": "nothing (the control)",
}


@dataclass
class ReportOptions:
    """Settings of :func:`build_report` (see ``styler report --help``)."""

    size: int = 256  # long side of the compared photos, and side of the square measurement crops
    cell: int = 224
    stats: str = "running"  # BN/SN statistics in the comparison grid
    fp64: bool = False  # measure independence in fp64 too (the exact proof)
    html: bool = False  # one self-contained HTML file instead of Markdown + PNGs
    amplify: float = 10.0
    title: str = "Normalization ablation"


@dataclass
class ReportResult:
    path: Path  # report.md or report.html
    folder: Path
    figures: dict[str, Path] = field(default_factory=dict)
    independence: list[A.IndependenceRow] = field(default_factory=list)
    contrast: list[A.ContrastRow] = field(default_factory=list)
    gaps: list[A.GapRow] = field(default_factory=list)


# --- a tiny document model rendered to Markdown or HTML ------------------------------------------------------------

class _Doc:
    def __init__(self) -> None:
        self.blocks: list[tuple[str, Any]] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", (level, text)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: Sequence[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def img(self, path: Path, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(("table", (list(header), [list(r) for r in rows])))

    def markdown(self, folder: Path) -> str:
        out = []
        for kind, value in self.blocks:
            if kind == "h":
                out.append("#" * value[0] + " " + value[1])
            elif kind == "p":
                out.append(value)
            elif kind == "ul":
                out.append("\n".join(f"- {item}" for item in value))
            elif kind == "img":
                out.append(f"![{value[1]}]({os.path.relpath(value[0], folder)})")
            elif kind == "table":
                out.append(A.format_table(value[0], value[1], markdown=True))
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        def inline(text: str) -> str:  # `code` and **bold** only
            text = html.escape(text)
            parts = text.split("`")
            text = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
            parts = text.split("**")
            return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))

        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
               "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
               "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #bbb;"
               "padding:3px 8px;text-align:left}img{max-width:100%}code{background:#f3f3f3}</style></head><body>"]
        for kind, value in self.blocks:
            if kind == "h":
                out.append(f"<h{value[0]}>{inline(value[1])}</h{value[0]}>")
            elif kind == "p":
                out.append(f"<p>{inline(value)}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in value) + "</ul>")
            elif kind == "img":
                data = base64.b64encode(Path(value[0]).read_bytes()).decode("ascii")
                out.append(f"<p><img alt='{html.escape(value[1])}' src='data:image/png;base64,{data}'></p>")
            elif kind == "table":
                header, rows = value
                out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
                           + "".join("<tr>" + "".join(f"<td>{html.escape(A._fmt(c))}</td>" for c in row) + "</tr>"
                                     for row in rows) + "</table>")
        out.append("</body></html>")
        return "\n".join(out)


# --- helpers -------------------------------------------------------------------------------------------------------

def _run_log(loaded: LoadedModel) -> list[dict[str, Any]]:
    if loaded.path is None:
        return []
    from styler.train.trainer import read_log

    return read_log(loaded.path.with_suffix(".run") / "log.jsonl")


def _worst(rows: Sequence[Any], attr: str = "max_abs") -> Any:
    return max(rows, key=lambda r: getattr(r, attr))


def _summary_independence(rows: Sequence[A.IndependenceRow]) -> list[list[Any]]:
    groups: dict[tuple[str, str, str, str], list[A.IndependenceRow]] = {}
    for row in rows:
        groups.setdefault((row.model, row.norm, row.mode, row.dtype), []).append(row)
    table = []
    for (model, norm, mode, dtype), rs in groups.items():
        worst = _worst(rs)
        table.append([norm, model, mode, dtype, worst.max_abs, max(r.mean_abs for r in rs),
                      min(r.psnr_db for r in rs), worst.output_max, worst.tolerance,
                      "yes" if all(r.independent for r in rs) else "**NO**"])
    return table


def _norm_numbers(kind_rows: dict[str, list[A.IndependenceRow]], contrast: dict[str, list[A.ContrastRow]]
                  ) -> dict[str, str]:
    """Per norm label: 'worst batch effect X (train), contrast change Y' for the explanation bullets."""
    texts = {}
    for norm, rows in kind_rows.items():
        parts = []
        for mode in ("train", "eval"):
            rs = [r for r in rows if r.mode.startswith(mode)]
            if rs:
                parts.append(f"max |Δ| across batch-mates in {mode} mode {A._fmt(_worst(rs).max_abs)}")
        if contrast.get(norm):
            parts.append(f"largest relative change under contrast/brightness "
                         f"{A._fmt(_worst(contrast[norm], 'relative_max').relative_max)}")
        texts[norm] = "; ".join(parts)
    return texts


# --- the report ----------------------------------------------------------------------------------------------------

def build_report(models: Sequence[Any], photos: Sequence[Any], out_dir: str | os.PathLike, *,
                 target: Any | None = None, options: ReportOptions | None = None) -> ReportResult:
    """Measure, draw and write the report for ``models`` (paths or loaded models) on ``photos`` (paths).

    ``target`` is the photo whose batch independence and contrast sensitivity are measured (default: the first
    photo); the other photos are its batch-mates. Returns the report path and every measured row.
    """
    opts = options or ReportOptions()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    loaded = [A.as_loaded(m) for m in models]
    if not loaded:
        raise StylerError("no models given")
    photo_sources = list(photos)
    if not photo_sources:
        raise StylerError("no photos given")
    target_source = target if target is not None else photo_sources[0]
    result = ReportResult(path=folder / ("report.html" if opts.html else "report.md"), folder=folder)

    # 1. comparison grid (photos at their aspect ratio; square crops when BN/SN use batch statistics)
    square_grid = opts.stats == "batch"
    grid_photos = A.load_photos(photo_sources, opts.size, square=square_grid)
    grid = A.compare_grid(loaded, grid_photos, cell=opts.cell, stats=opts.stats)
    result.figures["compare"] = _save(grid, folder / "compare.png")

    # 2. independence, contrast, train/eval gap on square crops of one size
    sq = A.load_photos(photo_sources, opts.size, square=True)
    tgt = A.load_photo(target_source, opts.size, square=True)
    mates = {p.name: p.tensor for p in sq if p.name != tgt.name}
    dtypes = [torch.float32] + ([torch.float64] if opts.fp64 else [])
    contrast_by_model = []
    for lm in loaded:
        for dtype in dtypes:
            result.independence += A.measure_independence(lm, tgt, mates, dtype=dtype,
                                                          keep_outputs=dtype == torch.float32)
        rows = A.contrast_sensitivity(lm, tgt, keep_outputs=True)
        contrast_by_model.append(rows)
        result.contrast += [r for r in rows if (r.a, r.b) != (1.0, 0.0)]
        if lm.arch.norm.kind in ("batch", "switchable"):
            result.gaps += A.train_eval_gap(lm, [tgt, *[p for p in sq if p.name != tgt.name][:3]])
    fig_rows = [r for r in result.independence if r.dtype == "float32"]
    result.figures["independence"] = _save(A.independence_figure(fig_rows, cell=min(opts.cell, 192),
                                                                 amplify=opts.amplify), folder / "independence.png")
    result.figures["contrast"] = _save(A.contrast_figure(tgt, contrast_by_model, cell=min(opts.cell, 160)),
                                       folder / "contrast.png")

    # 3. training curves and SN weights
    logs = {f"{lm.arch.norm.short_name} · {lm.name}": _run_log(lm) for lm in loaded}
    logs = {k: v for k, v in logs.items() if v}
    if logs:
        from styler.evidence.figures import plot_loss_curves

        result.figures["loss_curves"] = plot_loss_curves(logs, folder / "loss_curves.png",
                                                         title="training loss per norm")
    from styler.evidence.figures import plot_sn_weights
    from styler.nn.norms import switchable_layers

    for lm in loaded:
        weights = {name: layer.mixture_weights() for name, layer in switchable_layers(lm.net)}
        if weights:
            result.figures[f"sn_weights_{lm.name}"] = plot_sn_weights(
                weights, folder / f"sn_weights_{lm.name}.png", title=f"{lm.name}: learned SN weights per layer")

    (folder / "measurements.json").write_text(json.dumps({
        "independence": A.rows_to_dicts(result.independence), "contrast": A.rows_to_dicts(result.contrast),
        "train_eval_gap": A.rows_to_dicts(result.gaps)}, indent=1))

    doc = _document(loaded, grid_photos, tgt, result, opts, logs)
    if opts.html:
        result.path.write_text(doc.html(opts.title), encoding="utf-8")
    else:
        result.path.write_text(doc.markdown(folder), encoding="utf-8")
    return result


def _or_q(value: Any) -> Any:
    return "?" if value is None else value


def _save(img: Any, path: Path) -> Path:
    img.save(path)
    return path


def _document(loaded: Sequence[LoadedModel], photos: Sequence[A.Photo], target: A.Photo, result: ReportResult,
              opts: ReportOptions, logs: dict[str, list[dict[str, Any]]]) -> _Doc:
    doc = _Doc()
    doc.h(1, opts.title)
    doc.p(f"{len(loaded)} model(s), {len(photos)} photo(s); measurements at {opts.size}×{opts.size} (square centre "
          f"crops), fp32{' and fp64' if opts.fp64 else ''}, torch {torch.__version__.split('+')[0]}, CPU. "
          "Differences are max/mean |Δ| of the raw network output (RGB, nominally [0, 1]); PSNR uses a peak of 1.")

    doc.h(2, "Models")
    doc.table(["norm", "model", "style", "steps", "final loss", "inference statistics"],
              [[lm.arch.norm.short_name, lm.name, A.model_style(lm), _or_q(A.model_steps(lm)),
                (lm.metadata.get("final_losses") or {}).get("loss", "?"), lm.arch.norm.inference_statistics]
               for lm in loaded])

    doc.h(2, "Side by side")
    doc.p(f"One row per model, one column per photo; BN/SN statistics: **{opts.stats}**.")
    doc.img(result.figures["compare"], "comparison grid")

    doc.h(2, "Batch independence")
    doc.p(f"The target `{target.name}` is stylized alone, then inside batches with other companions and at other "
          "positions (A: first among other photos; B: third among a darkened copy, a flat grey image and noise; "
          "C: last beside the flat image). Each train-mode forward runs on a fresh copy of the network, so running "
          "statistics never change between runs. Verdict: within the tolerance of `norms.md` §6.5 (fp32 atol = "
          "rtol = 1e-4; fp64 atol = 1e-10). In train mode, BN's reference (the target alone, a batch of one) is "
          "BN at batch 1, which is exactly instance norm (norms.md §6.3).")
    doc.img(result.figures["independence"], "independence figure")
    doc.table(["norm", "model", "mode", "dtype", "max |Δ|", "mean |Δ|", "min PSNR dB", "max |out|", "tolerance",
               "independent"], _summary_independence(result.independence))

    doc.h(2, "Contrast and brightness (Ulyanov et al.)")
    doc.p("The same photo with its contrast and brightness changed, f(a·A + b) vs f(A), eval mode; the value is "
          "max |Δ| / max |f(A)|. The changed photo is not clipped. With reflection padding, instance norm removes "
          "any per-channel scale and shift after the first convolution, so it is exactly invariant to brightness "
          "and nearly invariant to contrast (the residual is ε's); GN/LN share statistics across channels and BN "
          "uses dataset statistics, so they are not (norms.md §6.4).")
    doc.img(result.figures["contrast"], "contrast figure")
    transforms = []
    for r in result.contrast:
        if r.transform not in transforms:
            transforms.append(r.transform)
    by_model: dict[tuple[str, str], dict[str, float]] = {}
    for r in result.contrast:
        by_model.setdefault((r.norm, r.model), {})[r.transform] = r.relative_max
    doc.table(["norm", "model", *transforms],
              [[norm, model, *[vals.get(t, math.nan) for t in transforms]] for (norm, model), vals in by_model.items()])

    if result.gaps:
        doc.h(2, "Train/eval gap of BN and SN")
        doc.p("Eval output (running statistics) vs the output with batch statistics, for the photos as one batch "
              "and for each photo alone. A large gap means the network computes a different function at inference "
              "than in training (norms.md §6.3).")
        doc.table(["norm", "model", "train-mode reference", "max |Δ|", "mean |Δ|", "PSNR dB", "max |out|"],
                  [[g.norm, g.model, g.reference, g.max_abs, g.mean_abs, g.psnr_db, g.output_max]
                   for g in result.gaps])

    doc.h(2, "Training")
    if "loss_curves" in result.figures:
        doc.img(result.figures["loss_curves"], "loss curves")
    else:
        doc.p("No training logs (`<model>.run/log.jsonl`) were found next to the model files.")
    doc.table(["norm", "model", "steps", "loss", "content", "style", "tv"],
              [[lm.arch.norm.short_name, lm.name, _or_q(A.model_steps(lm)),
                *[(lm.metadata.get("final_losses") or {}).get(k, "?") for k in ("loss", "content", "style", "tv")]]
               for lm in loaded])
    sn_figs = [(k, v) for k, v in result.figures.items() if k.startswith("sn_weights_")]
    if sn_figs:
        doc.h(3, "Switchable norm: learned IN/LN/BN weights per layer")
        doc.p("Softmax weights of each SN layer's mean and variance mixtures after training. A layer that has "
              "learned instance norm shows a mostly red (IN) bar.")
        for key, path in sn_figs:
            doc.img(path, key)

    doc.h(2, "What each norm normalizes over")
    kinds: dict[str, list[A.IndependenceRow]] = {}
    for row in result.independence:
        kinds.setdefault(row.norm, []).append(row)
    contrast: dict[str, list[A.ContrastRow]] = {}
    for row in result.contrast:
        contrast.setdefault(row.norm, []).append(row)
    numbers = _norm_numbers(kinds, contrast)
    bullets = []
    seen = set()
    for lm in loaded:
        label = lm.arch.norm.short_name
        if label in seen:
            continue
        seen.add(label)
        measured = numbers.get(label, "")
        bullets.append(f"**{label}** normalizes over {NORM_AXES[lm.arch.norm.kind]}."
                       + (f" Measured: {measured}." if measured else ""))
    doc.bullets(bullets)
    doc.p("Reading: only statistics that include N (BN, SN's BN branch) let batch-mates change an image's output, and "
          "only in train mode; in eval they are replaced by running averages, which make the network a different "
          "function from the one trained (the train/eval gap). Only statistics over H, W per channel (IN) remove a "
          "per-image contrast and brightness change. That combination, batch independence and per-image "
          "normalization in both modes, is why instance norm is styler's default.")
    return doc
