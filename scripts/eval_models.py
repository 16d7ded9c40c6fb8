#!/usr/bin/env python
"""Quality of trained models as numbers: mean perceptual-loss terms on held-out photos.

Each model stylizes every photo (long side --size, eval mode) and the output is scored with the same perceptual loss
the model was trained with (content against the photo, style against the style image, total variation). Lower is
better; comparing two models of the same style (e.g. half vs full width, one norm vs another, or a multi-style model
against the single-style one) on the same photos tells whether a cheaper variant holds quality.

    python scripts/eval_models.py --style ../shared/data/style/starry_night.jpg \\
        --vgg-weights ../shared/weights/vgg16-imagenet-caffe-features.pth \\
        --photos ../shared/data/content/eval -m a_w16.pth -m a_w32.pth

A multi-style (conditional norm) model is scored on one of its styles with ``-m MODEL@STYLE`` (a style name or row
index; without ``@STYLE`` its first style). Every style is scored with *its own* training loss: its style weight
(``styles[i].style_weight`` in the model file; a single-style model's ``loss_weights.style``), the run's content and
TV weights, VGG layers and style size. With ``--style-dir`` each model's style image is found by the file name its
model file records and checked against the recorded sha256, so models of different styles share one table:

    python scripts/eval_models.py --style-dir ../shared/data/style --vgg-weights ... --photos ... \\
        -m great_wave_in -m six_styles_cin.safetensors@great_wave \\
        -m composition_vii_in -m six_styles_cin.safetensors@composition_vii

The last column compares each model with the first model listed for the same style (1.05 = 5 % higher loss).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from styler.errors import StylerError
from styler.evidence.ablation import load_photos
from styler.evidence.heldout import HeldOutScorer, StyleTarget, find_style_image, split_model_style, style_target
from styler.io.modelfile import LoadedModel, load_model
from styler.io.zoo import find_model
from styler.loss.lossnet import resolve_lossnet_spec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", action="append", required=True, metavar="MODEL[@STYLE]",
                        help="model file or bundled name; @STYLE scores that style of a multi-style model")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--style", help="the style image every model is scored against")
    source.add_argument("--style-dir", help="folder holding each model's style image (found by its recorded file "
                                            "name, checked by sha256)")
    parser.add_argument("--style-weight", type=float, default=None,
                        help="score with this style weight instead of the recorded one (for files that lack it)")
    parser.add_argument("--photos", nargs="+", required=True, help="photo files or folders")
    parser.add_argument("--vgg-weights", required=True)
    parser.add_argument("--size", type=int, default=256, help="long side of the photos")
    parser.add_argument("--bf16", action="store_true", help="also score each model's outputs computed in bf16")
    parser.add_argument("--json", default=None)
    return parser.parse_args(argv)


def resolve_models(args: argparse.Namespace, convention: str
                   ) -> list[tuple[str, LoadedModel, StyleTarget, Path]]:
    """Every ``-m`` as (label, model, style target, style image), checked before any scoring starts."""
    loaded: dict[str, LoadedModel] = {}
    resolved = []
    for reference in args.model:
        path, style = split_model_style(reference)
        if path not in loaded:
            loaded[path] = load_model(find_model(path))
        model = loaded[path]
        target = style_target(model.metadata, model.arch, style, convention=convention, where=path,
                              style_weight=args.style_weight)
        image, warnings = find_style_image(target, style=args.style, style_dir=args.style_dir, where=reference)
        for warning in warnings:
            print(f"warning: {warning}", file=sys.stderr)
        resolved.append((reference, model, target, image))
    return resolved


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    args = parse_args(argv)
    lossnet = resolve_lossnet_spec("file", args.vgg_weights)
    try:
        models = resolve_models(args, lossnet.convention)
        photos = load_photos(args.photos, size=args.size)
        results = score_models(models, HeldOutScorer(lossnet, photos), bf16=args.bf16, size=args.size)
    except StylerError as exc:
        sys.exit(f"eval_models.py: error: {exc}")
    add_relative_losses(results)
    print()
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return results


def score_models(models: list[tuple[str, LoadedModel, StyleTarget, Path]], scorer: HeldOutScorer, *,
                 bf16: bool = False, size: int | None = None) -> dict[str, dict[str, Any]]:
    """Mean loss terms of every (label, model, style target, style image), keyed by label."""
    results: dict[str, dict[str, Any]] = {}
    for label, model, target, image in models:
        # Scored with the weights and style size this style was trained with (the metadata records both).
        t0 = time.perf_counter()
        outputs = scorer.outputs(model.net, target)
        seconds = time.perf_counter() - t0
        terms = scorer.score(model.net, target, image, outputs)
        common = {"width": model.arch.width, "norm": model.arch.norm.short_name, **target.describe(),
                  "style_image": str(image), "photos": len(scorer.contents), "size": size}
        results[label] = {**terms, **common, "stylize_seconds": round(seconds, 2)}
        print(f"{label}: " + ", ".join(f"{k} {v:.4g}" for k, v in terms.items()))
        if bf16:
            # The same model run entirely in bf16 (as `styler apply --backend torch --precision bf16`; the compiled
            # backend is closer to fp32 because inductor keeps norm statistics in fp32), scored in fp32.
            net16 = copy.deepcopy(model.net).to(torch.bfloat16)
            outputs16 = scorer.outputs(net16, target)
            diff = max(float((a.clamp(0, 1) - b.clamp(0, 1)).abs().max()) for a, b in zip(outputs16, outputs))
            mse = sum(float((a.clamp(0, 1) - b.clamp(0, 1)).pow(2).mean()) for a, b in zip(outputs16, outputs))
            key = f"{label} [bf16]"
            terms16 = scorer.score(net16, target, image, outputs16)
            results[key] = {**terms16, **common, "norm": model.arch.norm.short_name + " bf16",
                            "max_abs_vs_fp32": diff,
                            "psnr_vs_fp32_db": 10 * math.log10(len(outputs) / max(mse, 1e-20))}
            print(f"{key}: " + ", ".join(f"{k} {v:.4g}" for k, v in terms16.items()))
    return results


#: The loss settings two rows must share for their totals to be comparable.
CRITERION_KEYS = ("style_weight", "content_weight", "tv_weight", "content_layer", "style_layers", "style_size")


def add_relative_losses(results: dict[str, dict[str, Any]]) -> None:
    """``vs_first_of_style``: each model's total loss over that of the first model listed for the same style image.

    Rows of one style scored with different loss settings (e.g. another style weight) are not comparable: their
    differing settings are listed under ``criterion_differs`` and a warning is printed.
    """
    first: dict[str, dict[str, Any]] = {}
    for label, r in results.items():
        reference = first.setdefault(r["style_image"], r)
        r["vs_first_of_style"] = r["loss"] / reference["loss"] if reference["loss"] else float("nan")
        differs = [k for k in CRITERION_KEYS if r.get(k) != reference.get(k)]
        if differs:
            r["criterion_differs"] = differs
            print(f"warning: {label} is scored with other loss settings ({', '.join(differs)}) than the first "
                  f"model of its style: their totals are not comparable", file=sys.stderr)


def format_table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| model | style | style weight | norm | width | content | style loss | tv | total | vs first |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for label, r in results.items():
        lines.append(f"| {label} | {r['style_name']} | {r['style_weight']:g} | {r['norm']} | {r['width']} | "
                     f"{r['content']:.4g} | {r['style']:.4g} | {r['tv']:.3g} | {r['loss']:.4g} | "
                     f"{r['vs_first_of_style']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
