#!/usr/bin/env python
"""Regenerate the ONNX graph shipped beside every bundled model (``styler/models/X.onnx`` + ``X.onnx.json``).

    python scripts/export_bundled.py            # every model in styler/models/
    python scripts/export_bundled.py --check    # only verify the shipped graphs (exit 1 if one is missing or stale)

Why shipped graphs: the apply-only install (``pip install styler``) has no torch to export with, so without them
it could not stylize at all. The recipe is exactly the one ``styler apply`` uses for any other model
(:func:`styler.infer.onnx_export.export_entry`: the same export, the same parity check against torch, the same
record with the model's sha256 and the graph's own), so a shipped graph and a cached one are interchangeable.
Run it after retraining a model (``scripts/train_zoo.sh`` does), then ``scripts/build_manifest.py``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from styler.infer.onnx_export import export_entry, shipped_paths
from styler.infer.onnx_records import load_trusted
from styler.io.files import sha256_file
from styler.io.zoo import BUNDLED_DIR, MODEL_SUFFIXES


def bundled_models(folder: Path) -> list[Path]:
    return sorted(p for suffix in MODEL_SUFFIXES for p in folder.glob(f"*{suffix}"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=str(BUNDLED_DIR), help="model folder [default: the bundled zoo]")
    parser.add_argument("--check", action="store_true", help="verify only; write nothing")
    args = parser.parse_args()
    models = bundled_models(Path(args.dir))
    if not models:
        sys.exit(f"no model files in {args.dir}")
    failed = 0
    for model in models:
        digest = sha256_file(model)
        graph, _ = shipped_paths(model)
        if args.check:
            found = load_trusted(graph, digest)
            failed += found.record is None
            print(f"{model.name}: {'ok' if found.record is not None else found.reason}")
            continue
        exported = export_entry(model, digest, None, graph)
        print(f"wrote {graph.name} ({len(exported.data) / 1e6:.2f} MB) for {model.name}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
