#!/usr/bin/env python
"""`make demo`: stylize real sample photos with the bundled models and draw a norm comparison grid.

The photos come from packages a fresh install already has: matplotlib's bundled ``grace_hopper.jpg`` and, when
scikit-image is installed, its ``astronaut``, ``chelsea`` and ``coffee`` images. Nothing is downloaded.

Outputs (in --out, default ``demo-output/``):
  photos/                      the sample photos used
  <photo>_<model>.png          every photo stylized with the default model, and with each style model
  <photo>_<model>_<style>.png  every photo in each style of a multi-style model (and a blend of its first two)
  norm_comparison.png          one row per norm model of the ablation set (when at least two are bundled)
  summary.json                 what was written, with timings
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path


def sample_photos(folder: Path, max_size: int) -> list[Path]:
    """Copy the bundled sample photos into ``folder`` (downscaled to ``max_size``) and return their paths."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    sources: list[tuple[str, Image.Image]] = []
    import matplotlib

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        sources.append(("grace_hopper", Image.open(hopper).convert("RGB")))
    try:
        from skimage import data as skdata

        for name in ("astronaut", "chelsea", "coffee"):
            sources.append((name, Image.fromarray(getattr(skdata, name)()).convert("RGB")))
    except Exception:  # scikit-image is optional: the demo works with matplotlib's photo alone
        pass
    if not sources:
        sys.exit("no sample photos found (matplotlib's sample_data is missing)")
    paths = []
    for name, img in sources:
        img.thumbnail((max_size, max_size))
        path = folder / f"{name}.png"
        img.save(path)
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo-output", help="output folder (replaced)")
    parser.add_argument("--max-size", type=int, default=512, help="long side of the sample photos")
    args = parser.parse_args()

    from styler.evidence.compare import compare_grid
    from styler.evidence.photos import load_photos
    from styler.infer.stylizer import Stylizer, stylize_image
    from styler.io.modelfile import load_model
    from styler.io.zoo import BUNDLED_DIR, default_model, read_manifest

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    photos = sample_photos(out / "photos", args.max_size)
    manifest = read_manifest(BUNDLED_DIR)
    models = manifest.get("models", [])
    default = default_model()
    if default is None:
        sys.exit(f"no bundled default model in {BUNDLED_DIR} (see styler/models/README.md)")
    summary: dict = {"photos": [p.name for p in photos], "outputs": [], "default_model": default.stem}

    style_models = [default] + [BUNDLED_DIR / m["file"] for m in models
                                if m.get("set") == "style" and BUNDLED_DIR / m["file"] != default]
    for model_path in style_models:
        stylizer = Stylizer(model_path, backend="torch", device="cpu")
        for photo in photos:
            t0 = time.perf_counter()
            target = out / f"{photo.stem}_{model_path.stem}.png"
            stylize_image(stylizer, photo).save(target)
            summary["outputs"].append({"file": target.name, "model": model_path.stem,
                                       "seconds": round(time.perf_counter() - t0, 3)})
            print(f"wrote {target}")

    # A multi-style model: every photo in each of its styles, and in a 50/50 blend of its first two.
    for model_path in (BUNDLED_DIR / m["file"] for m in models if m.get("set") == "multi-style"):
        stylizer = Stylizer(model_path, backend="torch", device="cpu")
        names = stylizer.style_names
        choices = [(name, name) for name in names] + [(f"{names[0]}:0.5,{names[1]}:0.5", f"{names[0]}+{names[1]}")]
        for style, label in choices:
            stylizer.set_style(style)
            for photo in photos:
                t0 = time.perf_counter()
                target = out / f"{photo.stem}_{model_path.stem}_{label}.png"
                stylize_image(stylizer, photo).save(target)
                summary["outputs"].append({"file": target.name, "model": model_path.stem, "style": style,
                                           "seconds": round(time.perf_counter() - t0, 3)})
                print(f"wrote {target}")

    # Rows in the usual order of the norms (IN first, then BN, GN, LN, SN), not alphabetically.
    from styler.nn.norms import NORM_KINDS

    def norm_rank(m: dict) -> int:
        return NORM_KINDS.index(m["norm"]) if m["norm"] in NORM_KINDS else len(NORM_KINDS)

    ablation_models = sorted((m for m in models if m.get("set") == "ablation"), key=norm_rank)
    ablation = [BUNDLED_DIR / m["file"] for m in ablation_models]
    if len(ablation) >= 2:
        grid = compare_grid([load_model(p) for p in ablation], load_photos(photos, size=256), cell=256)
        grid.save(out / "norm_comparison.png")
        summary["norm_comparison"] = "norm_comparison.png"
        print(f"wrote {out / 'norm_comparison.png'}")
    else:
        print("norm comparison skipped: fewer than two ablation models are bundled")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"demo done: {len(summary['outputs'])} stylized images in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
