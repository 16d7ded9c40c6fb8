#!/usr/bin/env python
"""The multi-style (conditional instance norm) section of the ablation report, from what the other scripts measured.

Why a separate writer: the numbers come from three scripts that run at different times (``eval_models.py`` scores
the shipped model against the single-style ones, ``cin_showcase.py`` draws the blends and counts the bytes of a style,
``add_style_curve.py`` trains a new style's (γ, β) and records its held-out curve). This script only reads their JSON
files and the model's own record, so the section can be rewritten without re-running hours of training, and every
number in it is one of theirs. It replaces only its own section of report.md
(:data:`styler.evidence.report.MULTISTYLE_MARKER`).

    python scripts/multistyle_report.py --model styler/models/six_styles_cin.safetensors \\
        --eval docs/cin/eval.json --showcase docs/cin/showcase.json --add-style docs/cin/add_style_curve.json \\
        --findings docs/cin/findings.md --report docs/ablation/report.md
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from styler.evidence.report import MULTISTYLE_MARKER, replace_section

#: Held-out loss ratios (added style / from scratch) whose first step the add-a-style table lists.
REACH_RATIOS = (1.5, 1.25, 1.10, 1.05, 1.0)

#: The issue's quality bar: the multi-style model's held-out loss at most this much above the single-style model's.
QUALITY_BAR = 0.10


def _load(path: str | None) -> dict[str, Any] | None:
    return json.loads(Path(path).read_text()) if path else None


def _rel(target: str, report: Path) -> str:
    return os.path.relpath(Path(target), report.parent).replace(os.sep, "/")


def per_style_rows(scores: dict[str, Any]) -> list[dict[str, Any]]:
    """Pair every ``MODEL@STYLE`` score with the single-style model of the same style (listed before it)."""
    singles = {v["style_name"]: (k, v) for k, v in scores.items() if "@" not in k}
    rows = []
    for key, multi in scores.items():
        if "@" not in key or multi["style_name"] not in singles:
            continue
        name, single = singles[multi["style_name"]]
        ratio = multi["loss"] / single["loss"]
        rows.append({"style": multi["style_name"], "style_weight": multi["style_weight"], "single_model": name,
                     "single": single["loss"], "multi": multi["loss"], "ratio": ratio,
                     "content_ratio": multi["content"] / single["content"],
                     "style_ratio": multi["style"] / single["style"], "within_bar": ratio <= 1 + QUALITY_BAR})
    return rows


def loss_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| style | style weight | single-style model | its loss | multi-style loss | ratio | content ratio | "
             "style-term ratio | within 10 % |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['style']} | {r['style_weight']:g} | {r['single_model']} | {r['single']:.4g} | "
                     f"{r['multi']:.4g} | {r['ratio']:.3f} | {r['content_ratio']:.3f} | {r['style_ratio']:.3f} | "
                     f"{'yes' if r['within_bar'] else '**no**'} |")
    return lines


def bytes_lines(info: dict[str, Any]) -> list[str]:
    per, shared, growth = info["per_style"], info["shared"], info["file_growth"]
    lines = ["| | parameters | bytes |", "|---|---|---|",
             f"| one style: γ and β of {info['conditional_layers']} norm layers | {per['parameters']:,} | "
             f"{per['tensor_bytes']:,} ({info['storage_dtype']}) |",
             f"| the shared network (convolutions) | {shared['parameters']:,} | {shared['tensor_bytes']:,} |",
             f"| the whole {info['styles']}-style file | {info['parameters']:,} | {info['file_bytes']:,} |"]
    for other in info.get("compare", []):
        label = {"instance": "IN", "conditional": "CIN"}.get(other["norm"], other["norm"])
        lines.append(f"| {Path(other['model']).stem} (one style, {label}) | "
                     f"{other['parameters']:,} | {other['file_bytes']:,} |")
    sentence = f"One style is {100 * info['per_style_fraction_of_shared']:.2f} % of the shared network."
    if growth.get("per_added_style_bytes") is not None:
        sentence += (f" Re-saving the same network with 1 to {info['styles']} styles, the file grows by "
                     f"{growth['per_added_style_bytes']:,.0f} bytes per style (tensors, header and the style's "
                     "record)")
        others = info.get("compare") or []
        sentence += (f", against {others[0]['file_bytes']:,} bytes for a separate single-style model." if others
                     else ".")
    return [*lines, "", sentence]


def add_style_lines(curve: dict[str, Any], report: Path, plot: str | None) -> list[str]:
    ref = curve.get("reference") or {}
    points = sorted(curve.get("points", []), key=lambda p: p["step"])
    last = points[-1] if points else None
    last_step = last["step"] if last else 0
    training = curve.get("training", {})
    lines = [f"`styler train --add-style {Path(curve['style_image']).name} --from {Path(curve['base_model']).name}` "
             f"trains only the new style's (γ, β) — every convolution stays as the base model learned it — with "
             f"batch {training.get('batch_size')}, {training.get('image_size')}-px crops and learning rate "
             f"{training.get('lr')}, scored every {curve['eval_every']} steps on {curve['photos']} held-out photos "
             f"with the new style's own loss."]
    if ref:
        steps = ref.get("steps")
        lines += ["", "| held-out loss reached | first evaluated step | images seen | share of the from-scratch "
                      "steps |", "|---|---|---|---|"]
        for ratio in REACH_RATIOS:
            step = next((p["step"] for p in points if p["loss"] <= ref["loss"] * ratio), None)
            share = f"{step / steps:.2f}" if step is not None and steps else "—"
            label = "at or below the from-scratch loss" if ratio == 1 else f"within {ratio - 1:.0%} of it"
            if step is None:
                lines.append(f"| {label} | not within {last_step:,} steps | — | — |")
            else:
                lines.append(f"| {label} | {step:,} | {step * training.get('batch_size', 1):,} | {share} |")
        lines += ["", f"The reference is a single-style {curve['style']} model trained from scratch with the same "
                      f"loss ({steps:,} steps, held-out loss {ref['loss']:.4g}: content {ref['content']:.4g}, style "
                      f"{ref['style']:.4g})."]
        if last is not None:
            lines[-1] += (f" At the last evaluated step ({last['step']:,}) the added style's loss is "
                          f"{last['loss']:.4g} (content {last['content']:.4g}, style {last['style']:.4g}), "
                          f"{last['loss'] / ref['loss']:.3f}× the reference.")
    if plot:
        lines += ["", f"![add-style curve]({_rel(plot, report)})"]
    return lines


def model_facts(model: str | None) -> str:
    """One sentence from the model file's own record: styles and their weights, steps, learning-rate drops."""
    if not model:
        return ""
    from styler.io.modelfile import read_header

    header = read_header(model)
    meta = header.metadata
    training = meta.get("training") or {}
    styles = meta.get("styles") or []
    named = ", ".join(f"{s.get('name')}" + (f" (style weight {s['style_weight']:g})" if s.get("style_weight") else "")
                      for s in styles)
    drops = training.get("lr_drops") or []
    schedule = (f"learning rate {training.get('lr')}" + "".join(f", ×{f:g} from step {s:,}" for s, f in drops))
    steps, batch = training.get("steps"), training.get("batch_size")
    per_style = f", ~{steps * batch // max(1, len(styles)):,} photos per style" if steps and batch else ""
    return (f"`{Path(model).name}`: {len(styles)} styles ({named}); width {header.arch.width}, "
            f"{training.get('image_size')}-px crops, batch {batch}, {steps:,} steps{per_style}, {schedule}, "
            f"precision {training.get('precision', 'recorded in the file')}.")


def section(args: argparse.Namespace) -> str:
    report = Path(args.report)
    scores, showcase, curve = _load(args.eval), _load(args.showcase), _load(args.add_style)
    lines = ["## One network, many styles (conditional instance norm)", "",
             "Dumoulin, Shlens & Kudlur (2017) put a whole style into the instance norm's per-channel scale and "
             "shift: every convolution is shared, and a style is one (γ, β) row per norm layer. If per-instance "
             "statistics are what strips a photo's own contrast and colour, then swapping only the affine that "
             "follows them should be enough to paint any style — that is what this section measures."]
    facts = model_facts(args.model)
    if facts:
        lines += ["", facts]
    if scores:
        rows = per_style_rows(scores)
        first = next(iter(scores.values()))
        lines += ["", "### Quality against the single-style models", "",
                  f"Held-out perceptual loss on {first['photos']} eval photos (long side {first['size']}), each style "
                  "scored with its own training loss (its style weight, the same VGG layers), `scripts/eval_models.py`."
                  " Lower is better; the bar is a ratio of at most 1.10.", "", *loss_table(rows)]
    if showcase:
        lines += ["", "### Blending", ""]
        if "two" in showcase:
            a, b = showcase["two"]["styles"]
            lines += [f"{a} to {b} in five steps (weights 1, .75, .5, .25, 0 of {a}): a blend is the convex mix of "
                      "the two styles' (γ, β), one forward pass each.", "",
                      f"![two-style blend]({_rel(showcase['two']['image'], report)})", ""]
        if "four" in showcase:
            s = showcase["four"]["styles"]
            lines += [f"Four styles on one photo: {s[0]} top left, {s[1]} top right, {s[2]} bottom left, {s[3]} "
                      f"bottom right; each of the {showcase['four']['k']}×{showcase['four']['k']} cells mixes them "
                      "with bilinear weights that sum to 1.", "",
                      f"![four-style square]({_rel(showcase['four']['image'], report)})", ""]
        if "bytes" in showcase:
            lines += ["### What a style costs", "", *bytes_lines(showcase["bytes"])]
    if curve:
        lines += ["", "### Adding a style to the trained network", "", *add_style_lines(curve, report, args.plot)]
    if args.findings:
        lines += ["", "### What this shows", "", Path(args.findings).read_text().strip()]
    lines += ["", "Reproduce: the training command is in the model's record (`styler info MODEL`); then "
                  "`scripts/eval_models.py`, `scripts/cin_showcase.py` and `scripts/add_style_curve.py` as in "
                  "their docstrings, and this section with `scripts/multistyle_report.py`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="the multi-style model file (its record gives the training facts)")
    parser.add_argument("--eval", help="eval_models.py --json output (single-style models and MODEL@STYLE)")
    parser.add_argument("--showcase", help="cin_showcase.py --json output")
    parser.add_argument("--add-style", help="add_style_curve.py --json output")
    parser.add_argument("--plot", help="the add-style curve's figure")
    parser.add_argument("--findings", help="a Markdown paragraph of conclusions, written by a person")
    parser.add_argument("--report", default="docs/ablation/report.md")
    args = parser.parse_args(argv)
    report = Path(args.report)
    text = report.read_text(encoding="utf-8") if report.exists() else "# Normalization ablation\n"
    body = section(args)
    tmp = report.with_suffix(".tmp")
    tmp.write_text(replace_section(text, MULTISTYLE_MARKER, body), encoding="utf-8")
    tmp.replace(report)
    print(f"multi-style section written to {report}")
    return body


if __name__ == "__main__":
    main()
