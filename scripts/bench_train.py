#!/usr/bin/env python
"""Training throughput on this machine: images/s per norm and size, interleaved against a plain baseline.

Method (docs/performance.md §1): every variant is built and warmed up once; then R rounds each run one training
step (zero_grad, forward, perceptual loss, backward, Adam step; no data loading) of every variant in turn. Reported:
median seconds/step, images/s, and the median of the per-round ratios baseline_time / variant_time (speed-up, higher
is better). CPU pressure (/proc/pressure/cpu "some avg10") is recorded per round, because absolute times on a shared
2-core machine drift; only the paired ratios carry over.

The baseline is a plain eager fp32 loop written the obvious way: full-width net, VGG16 run to relu4_3 for the output
*and* the content target, style Grams precomputed (as in the PyTorch example). styler's loop differs in computing
the content target only as deep as relu3_3, and optionally a half-width net and torch.compile.

    python scripts/bench_train.py --vgg-weights ../shared/weights/vgg16-imagenet-caffe-features.pth
    python scripts/bench_train.py --sizes 128 --rounds 3 --norms in,bn --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from styler.loss.criterion import build_criterion, cast_lossnet_to_bf16
from styler.loss.losses import LossWeights, PerceptualLoss, gram_matrix, total_variation
from styler.loss.lossnet import VGG16Features, resolve_lossnet_spec
from styler.nn.network import ArchSpec, TransformerNet
from styler.nn.norms import NormSpec


def cpu_pressure() -> float:
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(line.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return float("nan")


class BaselineStep:
    """The obvious loop: full VGG pass (to relu4_3) for output and content, mean-squared losses."""

    def __init__(self, net: TransformerNet, vgg: VGG16Features, style: torch.Tensor, weights: LossWeights) -> None:
        self.net, self.vgg, self.w = net, vgg, weights
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        with torch.no_grad():
            feats = vgg(style)
        self.grams = {k: gram_matrix(feats[k]) for k in weights.style_layers}

    def __call__(self, batch: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        out = self.net(batch)
        f_out = self.vgg(out)
        with torch.no_grad():
            f_in = self.vgg(batch)  # full depth, although only the content layer is needed
        content = self.w.content * (f_out[self.w.content_layer] - f_in[self.w.content_layer]).pow(2).mean()
        style = sum((gram_matrix(f_out[k]) - self.grams[k]).pow(2).mean() for k in self.w.style_layers)
        loss = content + self.w.style * style + self.w.tv * total_variation(out)
        loss.backward()
        self.opt.step()
        return float(loss.detach())


class StylerStep:
    """styler's training step (the same operations as styler.train.trainer.Trainer.step)."""

    def __init__(self, net: TransformerNet, loss: PerceptualLoss, compiled: bool = False, bf16: bool = False) -> None:
        self.net, self.loss, self.bf16 = net, loss, bf16
        self.opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        self.forward = torch.compile(net) if compiled else net
        self.loss_forward = torch.compile(loss) if compiled else loss

    def __call__(self, batch: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            terms = self.loss_forward(self.forward(batch).float(), batch)
        terms.total.backward()
        self.opt.step()
        return float(terms.total.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vgg-weights", default="../shared/weights/vgg16-imagenet-caffe-features.pth")
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--norms", default="in,bn,gn,ln,sn")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time a compiled half-width IN step")
    parser.add_argument("--bf16", action="store_true",
                        help="also time styler's bf16 step (autocast + loss network cast once; as `styler train` on "
                             "CUDA or a CPU with AMX/AVX512-BF16)")
    parser.add_argument("--no-baseline-w32", action="store_true",
                        help="skip the full-width variants (the ratios are then against 'styler IN w16')")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()
    if args.no_baseline_w32 and "in" not in args.norms.split(","):
        parser.error("--no-baseline-w32 measures against the half-width IN step: keep 'in' in --norms")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    style = torch.rand(1, 3, 256, 256)  # the style's content does not change the cost of a step
    criterion = build_criterion(resolve_lossnet_spec("file", args.vgg_weights), style)
    loss, vgg, weights = criterion.loss, criterion.loss.lossnet, criterion.weights
    results = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        variants: dict[str, object] = {} if args.no_baseline_w32 else {
            "baseline IN w32": BaselineStep(TransformerNet(ArchSpec(width=32)).train(), vgg, style, weights),
            "styler IN w32": StylerStep(TransformerNet(ArchSpec(width=32)).train(), loss),
        }
        for norm in args.norms.split(","):
            spec = NormSpec.parse(norm)
            net = TransformerNet(ArchSpec(width=16, norm=spec)).train()
            variants[f"styler {spec.short_name} w16"] = StylerStep(net, loss)
        if args.bf16:
            import copy

            loss_bf16 = cast_lossnet_to_bf16(copy.deepcopy(loss))
            variants["styler IN w16 bf16"] = StylerStep(TransformerNet(ArchSpec(width=16)).train(), loss_bf16,
                                                        bf16=True)
        if args.compile:
            t0 = time.perf_counter()
            variants["styler IN w16 compiled"] = StylerStep(TransformerNet(ArchSpec(width=16)).train(), loss, True)
            print(f"compile requested (first call compiles); setup {time.perf_counter() - t0:.1f}s")
        batch = torch.rand(args.batch, 3, size, size)
        for name, step in variants.items():  # warm-up (and compile)
            t0 = time.perf_counter()
            step(batch)
            print(f"  warm-up {name:24s} {time.perf_counter() - t0:7.2f} s", flush=True)
        times: dict[str, list[float]] = {name: [] for name in variants}
        pressures = []
        for r in range(args.rounds):
            pressures.append(cpu_pressure())
            for name, step in variants.items():
                t0 = time.perf_counter()
                step(batch)
                times[name].append(time.perf_counter() - t0)
                time.sleep(0.05)
            print(f"  round {r + 1}/{args.rounds} done (cpu pressure {pressures[-1]:.0f}%)", flush=True)
        base = times["styler IN w16" if args.no_baseline_w32 else "baseline IN w32"]
        table = {}
        print(f"\n{size}px, batch {args.batch}, {args.rounds} rounds, cpu pressure median "
              f"{statistics.median(pressures):.0f}%")
        print("| variant | s/step (median, min–max) | images/s | speed-up vs baseline (median of paired ratios) |")
        print("|---|---|---|---|")
        for name, values in times.items():
            ratio = statistics.median(b / v for b, v in zip(base, values))
            med = statistics.median(values)
            table[name] = {"s_per_step": med, "min": min(values), "max": max(values),
                           "images_per_s": args.batch / med, "speedup": ratio}
            print(f"| {name} | {med:.2f} ({min(values):.2f}–{max(values):.2f}) | {args.batch / med:.2f} | "
                  f"{ratio:.2f}x |")
        results[str(size)] = {"variants": table, "cpu_pressure": pressures}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
