#!/usr/bin/env python
"""Quality of trained models as numbers: mean perceptual-loss terms on held-out photos.

Each model stylizes every photo (long side --size, eval mode) and the output is scored with the same perceptual loss
the model was trained with (content against the photo, style against the style image, total variation). Lower is
better; comparing two models of the same style (e.g. half vs full width, or one norm vs another) on the same photos
tells whether a cheaper variant holds quality.

    python scripts/eval_models.py --style ../shared/data/style/starry_night.jpg \
        --vgg-weights ../shared/weights/vgg16-imagenet-caffe-features.pth \
        --photos ../shared/data/content/eval -m a_w16.pth -m a_w32.pth
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time

import torch

from styler.evidence.ablation import load_photos
from styler.io.modelfile import load_model
from styler.loss.criterion import build_criterion
from styler.loss.losses import evaluate_terms
from styler.loss.lossnet import resolve_lossnet_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", action="append", required=True)
    parser.add_argument("--style", required=True, help="the style image the models were trained on")
    parser.add_argument("--photos", nargs="+", required=True, help="photo files or folders")
    parser.add_argument("--vgg-weights", required=True)
    parser.add_argument("--size", type=int, default=256, help="long side of the photos")
    parser.add_argument("--bf16", action="store_true", help="also score each model's outputs computed in bf16")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    photos = load_photos(args.photos, size=args.size)
    results = {}
    for path in args.model:
        model = load_model(path)
        meta = model.metadata
        # Scored with the weights and style size the model was trained with (the metadata records both).
        weights = meta.get("loss_weights", {})
        loss = build_criterion(resolve_lossnet_spec("file", args.vgg_weights), args.style,
                               style_size=meta.get("training", {}).get("style_size"),
                               content_weight=weights.get("content"), style_weight=weights.get("style"),
                               tv_weight=weights.get("tv"), content_layer=weights.get("content_layer"),
                               style_layers=weights.get("style_layers")).loss
        t0 = time.perf_counter()
        with torch.no_grad():
            contents = [p.tensor for p in photos]
            outputs = [model.net(x) for x in contents]
        seconds = time.perf_counter() - t0
        terms = evaluate_terms(loss, outputs, contents)
        results[path] = {**terms, "width": model.arch.width, "norm": model.arch.norm.short_name,
                         "stylize_seconds": round(seconds, 2)}
        print(f"{path}: " + ", ".join(f"{k} {v:.4g}" for k, v in results[path].items() if isinstance(v, float)))
        if args.bf16:
            # The same model run entirely in bf16 (as `styler apply --backend torch --precision bf16`; the compiled
            # backend is closer to fp32 because inductor keeps norm statistics in fp32), scored in fp32.
            net16 = copy.deepcopy(model.net).to(torch.bfloat16)
            with torch.no_grad():
                outputs16 = [net16(x.to(torch.bfloat16)).float() for x in contents]
            diff = max(float((a.clamp(0, 1) - b.clamp(0, 1)).abs().max()) for a, b in zip(outputs16, outputs))
            mse = sum(float((a.clamp(0, 1) - b.clamp(0, 1)).pow(2).mean()) for a, b in zip(outputs16, outputs))
            key = f"{path} [bf16]"
            results[key] = {**evaluate_terms(loss, outputs16, contents), "width": model.arch.width,
                            "norm": model.arch.norm.short_name + " bf16", "max_abs_vs_fp32": diff,
                            "psnr_vs_fp32_db": 10 * math.log10(len(outputs) / max(mse, 1e-20))}
            print(f"{key}: " + ", ".join(f"{k} {v:.4g}" for k, v in results[key].items() if isinstance(v, float)))
    print("\n| model | norm | width | content | style | tv | total |")
    print("|---|---|---|---|---|---|---|")
    for path, r in results.items():
        print(f"| {path} | {r['norm']} | {r['width']} | {r['content']:.4g} | {r['style']:.4g} | {r['tv']:.3g} | "
              f"{r['loss']:.4g} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
