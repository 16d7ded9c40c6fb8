#!/usr/bin/env python
"""Write styler/models/MANIFEST.json from the bundled model files (their own metadata, plus sha256 and size).

    python scripts/build_manifest.py --default starry_night_in --ablation starry_night_in,starry_night_bn,...

Each entry: file, sha256, bytes, style, norm, width, steps, batch size, image size, images seen, training time,
hardware, final loss terms, and which set it belongs to ("ablation": same style, settings and seed, one per norm;
"style": the style set; "multi-style": one conditional-norm network for several styles, listed with their
weights). The test suite checks every entry against the file. Torch-free for v2 (safetensors) model files. After
retraining, regenerate the shipped ONNX graphs first (``scripts/export_bundled.py``).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from styler.io.modelfile import read_model_info
from styler.io.zoo import BUNDLED_DIR, MODEL_SUFFIXES
from styler.nn.spec import NormSpec


def entry(path: Path, sets: dict[str, str]) -> dict:
    info = read_model_info(path)
    meta = info["metadata"]
    training = meta.get("training", {})
    return {
        "name": path.stem,
        "file": path.name,
        "sha256": info["sha256"],
        "bytes": info["size_bytes"],
        "set": sets.get(path.stem, "multi-style" if info["arch"]["norm"]["kind"] == "conditional" else "style"),
        "style": meta.get("style", {}).get("name"),
        **({"styles": [{"name": s.get("name"), "style_weight": s.get("style_weight")} for s in meta["styles"]]}
           if isinstance(meta.get("styles"), list) and len(meta["styles"]) > 1 else {}),
        "norm": info["arch"]["norm"]["kind"],
        "norm_options": info["arch"]["norm"],
        "width": info["arch"]["width"],
        "residual_blocks": info["arch"]["residual_blocks"],
        "parameters": info["parameters"],
        "steps": training.get("steps"),
        "batch_size": training.get("batch_size"),
        "image_size": training.get("image_size"),
        "style_size": training.get("style_size"),
        "images_seen": training.get("images_seen"),
        "seed": training.get("seed"),
        "training_minutes": round(training.get("wall_seconds", 0) / 60, 1),
        "hardware": training.get("hardware"),
        "precision": training.get("precision", "fp32"),
        "loss_weights": meta.get("loss_weights"),
        "final_losses": meta.get("final_losses"),
        "loss_network": meta.get("loss_network", {}).get("name"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=str(BUNDLED_DIR))
    parser.add_argument("--default", required=True, help="name of the default model")
    parser.add_argument("--ablation", default="", help="comma-separated names of the norm-ablation set")
    args = parser.parse_args()
    folder = Path(args.dir)
    sets = {name: "ablation" for name in args.ablation.split(",") if name}
    files = {p.stem: p for suffix in reversed(MODEL_SUFFIXES) for p in sorted(folder.glob(f"*{suffix}"))}
    models = [entry(files[name], sets) for name in sorted(files)]
    if args.default not in {m["name"] for m in models}:
        raise SystemExit(f"default model {args.default!r} is not in {folder}")
    manifest = {"default": args.default, "models": models}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {folder / 'MANIFEST.json'}: {len(models)} models, default {args.default}")
    print(markdown_table(manifest))


def markdown_table(manifest: dict) -> str:
    """The README's zoo table, from the manifest (so the two cannot disagree)."""
    rows = ["| model | set | norm | width | style weight | images seen (crop) | training time, hardware, precision | "
            "final content / style |", "|---|---|---|---|---|---|---|---|"]
    for m in manifest["models"]:
        name = f"`{m['name']}`" + (" (default)" if m["name"] == manifest["default"] else "")
        losses = m.get("final_losses") or {}
        label = NormSpec.from_dict(m["norm_options"]).short_name
        hardware = re.sub(r"\b1 threads\b", "1 thread", m["hardware"])  # files trained before the wording fix
        style_weight = f"{(m.get('loss_weights') or {}).get('style', float('nan')):g}"
        if m.get("styles"):  # a multi-style model: every style's own weight, in style order
            style_weight = " / ".join(f"{s['style_weight']:g}" for s in m["styles"])
        rows.append(f"| {name} | {m['set']} | {label} | {m['width']} | {style_weight} | "
                    f"{m['images_seen']:,} ({m['image_size']} px) | "
                    f"{m['training_minutes']:.0f} min, {hardware}, {m.get('precision', 'fp32').split(' (')[0]} | "
                    f"{losses.get('content', float('nan')):.2e} / {losses.get('style', float('nan')):.2e} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
