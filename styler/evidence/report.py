"""The norm-ablation report: one folder (Markdown + PNGs) or one self-contained HTML file, built from model files.

Sections: the models; the comparison grid; batch independence (figure and table); contrast/brightness sensitivity
(Ulyanov's argument, figure and table); the train/eval gap of BN/SN; training loss curves side by side (from each
model's ``<model>.run/log.jsonl`` when present); switchable norm's learned IN/LN/BN weights per layer; and what each
norm normalizes over, tied to the measured numbers. The measurements come from
:func:`~styler.evidence.suite.measure_suite`, the call behind ``styler independence`` too, so the two agree.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from styler.errors import StylerError
from styler.evidence.compare import compare_grid
from styler.evidence.contrast import ContrastRow
from styler.evidence.gap import GapRow
from styler.evidence.independence import IndependenceRow
from styler.evidence.models import ModelRef, as_loaded, model_steps, model_style
from styler.evidence.photos import Photo, PhotoSource, load_photo, load_photos
from styler.evidence.suite import SuiteResult, measure_suite
from styler.evidence.tables import format_table, format_value
from styler.io.modelfile import LoadedModel
from styler.nn.spec import NormSpec

__all__ = ["ReportOptions", "ReportResult", "build_report"]

#: A training run's log records, by the run's label (``IN · m_in``).
RunLogs = dict[str, list[dict[str, Any]]]


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
    """Where the report was written, its figures, and every measured row (the rows of ``measurements.json``)."""

    path: Path  # report.md or report.html
    folder: Path
    figures: dict[str, Path] = field(default_factory=dict)
    independence: list[IndependenceRow] = field(default_factory=list)
    contrast: list[ContrastRow] = field(default_factory=list)
    gaps: list[GapRow] = field(default_factory=list)


# --- a tiny document model rendered to Markdown or HTML ------------------------------------------------------------

class _Doc:
    """Headings, paragraphs, bullets, images and tables, rendered by :meth:`markdown` or :meth:`html`: one
    document model, so the Markdown report and the self-contained HTML report cannot drift apart."""

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
                out.append(format_table(value[0], value[1], markdown=True))
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
                out.append(_html_table(*value))
        out.append("</body></html>")
        return "\n".join(out)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(c))}</td>" for c in row) + "</tr>"
                    for row in rows)
    return "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" + cells + "</table>"


# --- measuring and drawing -----------------------------------------------------------------------------------------

def build_report(models: Sequence[ModelRef], photos: Sequence[PhotoSource], out_dir: str | os.PathLike[str], *,
                 target: PhotoSource | None = None, options: ReportOptions | None = None) -> ReportResult:
    """Measure, draw and write the report for ``models`` (paths or loaded models) on ``photos`` (paths).

    ``target`` is the photo whose batch independence and contrast sensitivity are measured (default: the first
    photo); the other photos are its batch-mates. Returns the report path and every measured row.
    """
    opts = options or ReportOptions()
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    loaded = [as_loaded(m) for m in models]
    if not loaded:
        raise StylerError("no models given")
    photo_sources = list(photos)
    if not photo_sources:
        raise StylerError("no photos given")
    result = ReportResult(path=folder / ("report.html" if opts.html else "report.md"), folder=folder)

    # Photos keep their aspect ratio in the grid unless BN/SN use batch statistics, which need one size.
    grid_photos = load_photos(photo_sources, opts.size, square=opts.stats == "batch")
    grid = compare_grid(loaded, grid_photos, cell=opts.cell, stats=opts.stats)
    result.figures["compare"] = _save(grid, folder / "compare.png")

    square = load_photos(photo_sources, opts.size, square=True)
    tgt = load_photo(target if target is not None else photo_sources[0], opts.size, square=True)
    suite = measure_suite(loaded, tgt, square, fp64=opts.fp64)
    result.independence, result.contrast, result.gaps = suite.independence, suite.contrast, suite.gaps
    result.figures["independence"] = _save(suite.independence_figure(cell=min(opts.cell, 192), amplify=opts.amplify),
                                           folder / "independence.png")
    result.figures["contrast"] = _save(suite.contrast_figure(cell=min(opts.cell, 160)), folder / "contrast.png")

    logs = _training_figures(loaded, folder, result.figures)
    measurements = folder / "measurements.json"
    (measurements).write_text(json.dumps({**_kept_measurements(measurements, suite.to_dict()), **suite.to_dict()},
                                         indent=1))

    doc = _document(loaded, grid_photos, suite, result, opts, logs)
    if opts.html:
        result.path.write_text(doc.html(opts.title), encoding="utf-8")
    else:
        result.path.write_text(_kept_sections(result.path, doc.markdown(folder)), encoding="utf-8")
    return result


#: Where the norm studies' section starts in report.md (``scripts/norm_studies.py`` writes it after this marker).
STUDIES_MARKER = "<!-- norm studies: written by scripts/norm_studies.py -->"
#: Where the multi-style section starts (``scripts/multistyle_report.py`` writes it).
MULTISTYLE_MARKER = "<!-- multi-style: written by scripts/multistyle_report.py -->"
#: The sections other scripts append to report.md, in their order there. The report keeps them when it is re-run,
#: and each script replaces only its own.
SECTION_MARKERS = (STUDIES_MARKER, MULTISTYLE_MARKER)


def split_sections(text: str) -> tuple[str, dict[str, str]]:
    """``text`` as the report's own part and the appended sections, keyed by marker (each without its marker)."""
    found = sorted((text.index(m), m) for m in SECTION_MARKERS if m in text)
    head = text[:found[0][0]] if found else text
    sections = {}
    for i, (start, marker) in enumerate(found):
        end = found[i + 1][0] if i + 1 < len(found) else len(text)
        sections[marker] = text[start + len(marker):end]
    return head, sections


def join_sections(head: str, sections: dict[str, str]) -> str:
    """Inverse of :func:`split_sections`, with the sections in :data:`SECTION_MARKERS` order."""
    parts = [head.rstrip() + "\n"]
    for marker in SECTION_MARKERS:
        if marker in sections:
            parts.append("\n" + marker + "\n\n" + sections[marker].strip("\n") + "\n")
    return "".join(parts)


def replace_section(text: str, marker: str, section: str) -> str:
    """``text`` (a report.md) with the appended section of ``marker`` set to ``section`` and the others kept."""
    if marker not in SECTION_MARKERS:
        raise ValueError(f"unknown report section marker {marker!r}")
    head, sections = split_sections(text)
    sections[marker] = section
    return join_sections(head, sections)


def _kept_measurements(path: Path, own: dict[str, Any]) -> dict[str, Any]:
    """Keys of an earlier measurements.json that this report does not measure (the norm studies' results): the
    studies take hours of training, the report minutes, so re-running the report must not discard them."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in earlier.items() if k not in own} if isinstance(earlier, dict) else {}


def _kept_sections(path: Path, body: str) -> str:
    """``body`` (the freshly measured report) followed by the appended sections of an earlier report.md: the
    studies take hours of training, the report minutes, so re-running the report must not discard them."""
    try:
        earlier = path.read_text(encoding="utf-8")
    except OSError:
        return body
    return join_sections(body, split_sections(earlier)[1])


def _training_figures(loaded: Sequence[LoadedModel], folder: Path, figures: dict[str, Path]) -> RunLogs:
    """Draw the loss curves of the runs whose logs are present and each SN model's learned weights into
    ``figures``; return the logs (the training section says when there are none)."""
    logs = {f"{lm.arch.norm.short_name} · {lm.name}": _run_log(lm) for lm in loaded}
    logs = {k: v for k, v in logs.items() if v}
    if logs:
        from styler.evidence.figures import plot_loss_curves

        figures["loss_curves"] = plot_loss_curves(logs, folder / "loss_curves.png", title="training loss per norm")
    from styler.evidence.figures import plot_sn_weights
    from styler.nn.norms import switchable_layers

    for lm in loaded:
        weights = {name: layer.mixture_weights() for name, layer in switchable_layers(lm.net)}
        if weights:
            figures[f"sn_weights_{lm.name}"] = plot_sn_weights(
                weights, folder / f"sn_weights_{lm.name}.png", title=f"{lm.name}: learned SN weights per layer")
    return logs


def _run_log(loaded: LoadedModel) -> list[dict[str, Any]]:
    if loaded.path is None:
        return []
    from styler.train.trainer import read_log

    return read_log(loaded.path.with_suffix(".run") / "log.jsonl")


def _save(img: Image.Image, path: Path) -> Path:
    img.save(path)
    return path


# --- the document, one function per section ------------------------------------------------------------------------

def _document(loaded: Sequence[LoadedModel], photos: Sequence[Photo], suite: SuiteResult, result: ReportResult,
              opts: ReportOptions, logs: RunLogs) -> _Doc:
    doc = _Doc()
    doc.h(1, opts.title)
    doc.p(f"{len(loaded)} model(s), {len(photos)} photo(s); measurements at {opts.size}×{opts.size} (square centre "
          f"crops), fp32{' and fp64' if opts.fp64 else ''}, torch {torch.__version__.split('+')[0]}, CPU. "
          "Differences are max/mean |Δ| of the raw network output (RGB, nominally [0, 1]); PSNR uses a peak of 1.")
    _models_section(doc, loaded)
    _side_by_side_section(doc, result.figures, opts.stats)
    _independence_section(doc, suite.target, result.figures, suite.independence)
    _contrast_section(doc, result.figures, suite.contrast)
    _gap_section(doc, suite.gaps)
    _training_section(doc, loaded, result.figures)
    _norms_section(doc, loaded, suite.independence, suite.contrast)
    return doc


def _or_q(value: Any) -> Any:
    return "?" if value is None else value


def _final_loss(loaded: LoadedModel, term: str) -> Any:
    return (loaded.metadata.get("final_losses") or {}).get(term, "?")


def _models_section(doc: _Doc, loaded: Sequence[LoadedModel]) -> None:
    doc.h(2, "Models")
    doc.table(["norm", "model", "style", "steps", "final loss", "inference statistics"],
              [[lm.arch.norm.short_name, lm.name, model_style(lm), _or_q(model_steps(lm)), _final_loss(lm, "loss"),
                lm.arch.norm.inference_statistics] for lm in loaded])


def _side_by_side_section(doc: _Doc, figures: dict[str, Path], stats: str) -> None:
    doc.h(2, "Side by side")
    doc.p(f"One row per model, one column per photo; BN/SN statistics: **{stats}**.")
    doc.img(figures["compare"], "comparison grid")


def _independence_section(doc: _Doc, target: Photo, figures: dict[str, Path],
                          rows: Sequence[IndependenceRow]) -> None:
    doc.h(2, "Batch independence")
    doc.p(f"The target `{target.name}` is stylized alone, then inside batches with other companions and at other "
          "positions (A: first among other photos; B: third among a darkened copy, a flat grey image and noise; "
          "C: last beside the flat image). Each train-mode forward runs on a fresh copy of the network, so running "
          "statistics never change between runs. Verdict: within the tolerance of `norms.md` §6.5 (fp32 atol = "
          "rtol = 1e-4; fp64 atol = 1e-10). In train mode, BN's reference (the target alone, a batch of one) is "
          "BN at batch 1, which is exactly instance norm (norms.md §6.3).")
    doc.img(figures["independence"], "independence figure")
    doc.table(["norm", "model", "mode", "dtype", "max |Δ|", "mean |Δ|", "min PSNR dB", "max |out|", "tolerance",
               "independent"], _summary_independence(rows))


def _worst(rows: Sequence[Any], attr: str = "max_abs") -> Any:
    return max(rows, key=lambda r: getattr(r, attr))


def _summary_independence(rows: Sequence[IndependenceRow]) -> list[list[Any]]:
    """One line per model, mode and precision: the worst batch of the three (a verdict holds only if all hold)."""
    groups: dict[tuple[str, str, str, str], list[IndependenceRow]] = {}
    for row in rows:
        groups.setdefault((row.model, row.norm, row.mode, row.dtype), []).append(row)
    table = []
    for (model, norm, mode, dtype), rs in groups.items():
        worst = _worst(rs)
        table.append([norm, model, mode, dtype, worst.max_abs, max(r.mean_abs for r in rs),
                      min(r.psnr_db for r in rs), worst.output_max, worst.tolerance,
                      "yes" if all(r.independent for r in rs) else "**NO**"])
    return table


def _contrast_section(doc: _Doc, figures: dict[str, Path], rows: Sequence[ContrastRow]) -> None:
    doc.h(2, "Contrast and brightness (Ulyanov et al.)")
    doc.p("The same photo with its contrast and brightness changed, f(a·A + b) vs f(A), eval mode; the value is "
          "max |Δ| / max |f(A)|. The changed photo is not clipped. With reflection padding, instance norm removes "
          "any per-channel scale and shift after the first convolution, so it is exactly invariant to brightness "
          "and nearly invariant to contrast (the residual is ε's); GN/LN share statistics across channels and BN "
          "uses dataset statistics, so they are not (norms.md §6.4).")
    doc.img(figures["contrast"], "contrast figure")
    transforms = list(dict.fromkeys(r.transform for r in rows))
    by_model: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        by_model.setdefault((r.norm, r.model), {})[r.transform] = r.relative_max
    doc.table(["norm", "model", *transforms],
              [[norm, model, *[vals.get(t, math.nan) for t in transforms]] for (norm, model), vals in by_model.items()])


def _gap_section(doc: _Doc, gaps: Sequence[GapRow]) -> None:
    if not gaps:
        return
    doc.h(2, "Train/eval gap of BN and SN")
    doc.p("Eval output (running statistics) vs the output with batch statistics, for the photos as one batch "
          "and for each photo alone. A large gap means the network computes a different function at inference "
          "than in training (norms.md §6.3).")
    doc.table(["norm", "model", "train-mode reference", "max |Δ|", "mean |Δ|", "PSNR dB", "max |out|"],
              [[g.norm, g.model, g.reference, g.max_abs, g.mean_abs, g.psnr_db, g.output_max] for g in gaps])


def _training_section(doc: _Doc, loaded: Sequence[LoadedModel], figures: dict[str, Path]) -> None:
    doc.h(2, "Training")
    if "loss_curves" in figures:
        doc.img(figures["loss_curves"], "loss curves")
    else:
        doc.p("No training logs (`<model>.run/log.jsonl`) were found next to the model files.")
    doc.table(["norm", "model", "steps", "loss", "content", "style", "tv"],
              [[lm.arch.norm.short_name, lm.name, _or_q(model_steps(lm)),
                *[_final_loss(lm, k) for k in ("loss", "content", "style", "tv")]] for lm in loaded])
    sn_figs = [(k, v) for k, v in figures.items() if k.startswith("sn_weights_")]
    if sn_figs:
        doc.h(3, "Switchable norm: learned IN/LN/BN weights per layer")
        doc.p("Softmax weights of each SN layer's mean and variance mixtures after training. A layer that has "
              "learned instance norm shows a mostly red (IN) bar.")
        for key, path in sn_figs:
            doc.img(path, key)


def _norms_section(doc: _Doc, loaded: Sequence[LoadedModel], independence: Sequence[IndependenceRow],
                   contrast: Sequence[ContrastRow]) -> None:
    doc.h(2, "What each norm normalizes over")
    numbers = _norm_numbers(_by_norm(independence), _by_norm(contrast))
    bullets = []
    specs: dict[str, NormSpec] = {}
    for lm in loaded:
        specs.setdefault(lm.arch.norm.short_name, lm.arch.norm)
    for label, spec in specs.items():
        measured = numbers.get(label, "")
        bullets.append(f"**{label}** normalizes over {spec.axes}." + (f" Measured: {measured}." if measured else ""))
    doc.bullets(bullets)
    doc.p("Reading: only statistics that include N (BN, SN's BN branch) let batch-mates change an image's output, and "
          "only in train mode; in eval they are replaced by running averages, which make the network a different "
          "function from the one trained (the train/eval gap). Only statistics over H, W per channel (IN) remove a "
          "per-image contrast and brightness change. That combination, batch independence and per-image "
          "normalization in both modes, is why instance norm is styler's default.")


def _by_norm(rows: Sequence[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.norm, []).append(row)
    return grouped


def _norm_numbers(independence: dict[str, list[IndependenceRow]], contrast: dict[str, list[ContrastRow]]
                  ) -> dict[str, str]:
    """Per norm label: 'worst batch effect X (train), contrast change Y' for the explanation bullets."""
    texts = {}
    for norm, rows in independence.items():
        parts = []
        for mode in ("train", "eval"):
            rs = [r for r in rows if r.mode.startswith(mode)]
            if rs:
                parts.append(f"max |Δ| across batch-mates in {mode} mode {format_value(_worst(rs).max_abs)}")
        if contrast.get(norm):
            parts.append(f"largest relative change under contrast/brightness "
                         f"{format_value(_worst(contrast[norm], 'relative_max').relative_max)}")
        texts[norm] = "; ".join(parts)
    return texts
