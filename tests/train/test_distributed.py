"""Distributed training on torch.distributed: 2 CPU processes with gloo, tiny nets and images.

What is proved here:

* the launcher and data plumbing (fast unit tests, no processes);
* layer level: the synchronized BN / SN-BN-branch on 2 ranks × B images equals plain BN / SN on the 2B images
  (outputs, input gradients, parameter gradients, running statistics);
* training level: after a few DDP steps the parameters are identical on both ranks; IN/GN/LN DDP (2 ranks × B)
  equals one process with batch 2B; BN with per-rank statistics differs while synchronized BN matches;
* resume: a run stopped midway and resumed equals an uninterrupted distributed run, also when resumed in one process
  with the same global batch; and a ``styler train --nproc 2`` run killed with SIGKILL and resumed from its last
  checkpoint ends with the weights of an uninterrupted one.

The distributed work happens in torchrun-launched copies of *this file* (``python tests/test_distributed.py
SCENARIO ...``, see ``_worker_main``); one launch runs every scenario so process start-up is paid once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import base_config
from styler.io.modelfile import read_model_info
from styler.train import distributed as dist_utils
from styler.train.data import BatchSchedule, PhotoFolder

PER_RANK = 2       # images per rank per step
STEPS = 3          # optimizer steps in the equivalence runs
SIZE = 32          # training crop size
EQUIVALENCE = {    # run name -> (norm, sync_bn)
    "in": ("in", True), "gn": ("gn", True), "ln": ("ln", True),
    "bn_sync": ("bn", True), "bn_local": ("bn", False),
    "snbn_sync": ("sn+bn", True), "snbn_local": ("sn+bn", False),
}
RESUME_STEPS = 4


def _tiny(tmp: Path, photos_dir: Path, style_img: Path, vgg: Path, **overrides):
    options = dict(image_size=SIZE, batch_size=PER_RANK, iterations=STEPS, style_size=64, groups=4, threads=1)
    options.update(overrides)
    norm = options.pop("norm", "in")
    using_bn = norm.endswith("+bn")
    return base_config(tmp, photos_dir, style_img, vgg, norm=norm.replace("+bn", ""), sn_using_bn=using_bn,
                       **options)


def _torchrun(nproc: int, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    command = dist_utils.torchrun_command(nproc, [])[:-3]  # up to the launcher options, without "-m styler"
    # The ranks run this file as a script: put tests/ (where conftest lives) on their import path.
    tests_dir = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([*command, str(Path(__file__).resolve()), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], params_only: bool = True) -> float:
    keys = [k for k in a if a[k].is_floating_point()
            and (not params_only or not k.endswith(("running_mean", "running_var")))]
    assert keys and set(a) == set(b)
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in keys)


def _descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), deepest first."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [c for c, p in parents.items() if p in frontier]
        found.extend(children)
        frontier = children
    return found[::-1]


# -- worker side (runs under torchrun) --------------------------------------------------------------------------------

def _worker_main(argv: list[str]) -> None:
    import torch.distributed as dist

    from styler.train.trainer import TrainingInterrupted, train

    photos_dir, style_img, vgg, out = (Path(a) for a in argv[:4])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.set_num_threads(1)

    _layer_checks(out, rank)

    for name, (norm, sync) in EQUIVALENCE.items():
        config = _tiny(out / name, photos_dir, style_img, vgg, norm=norm, sync_bn=sync)
        result = train(config)
        torch.save(result.net.state_dict(), out / name / f"rank{rank}.pt")

    # Resume: stopped after 2 of 4 steps and resumed, vs straight through (IN and synchronized BN).
    for norm in ("in", "bn"):
        straight = _tiny(out / f"straight_{norm}", photos_dir, style_img, vgg, norm=norm, iterations=RESUME_STEPS)
        torch.save(train(straight).net.state_dict(), out / f"straight_{norm}" / f"rank{rank}.pt")
        stopped = _tiny(out / f"stopped_{norm}", photos_dir, style_img, vgg, norm=norm, iterations=RESUME_STEPS)
        try:
            train(stopped, stop_after=2)
            raise AssertionError("stop_after did not stop")
        except TrainingInterrupted as exc:
            if rank == 0:  # keep the step-2 checkpoint for the world-size-change test
                (out / f"stopped_{norm}" / "step2.pth").write_bytes(Path(exc.checkpoint).read_bytes())
            dist.barrier()
            result = train(stopped, resume=exc.checkpoint)
        torch.save(result.net.state_dict(), out / f"stopped_{norm}" / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def _layer_checks(out: Path, rank: int) -> None:
    """Each rank runs its half of a fixed batch through SyncBatchNorm2d / SyncSwitchNorm2d and saves what it got."""
    from torch import nn

    from styler.nn.norms import SwitchNorm2d

    gen = torch.Generator().manual_seed(5)
    x_full = torch.randn(4, 6, 5, 7, generator=gen, dtype=torch.float64) * 3 + 2
    weights = torch.randn(4, 6, 5, 7, generator=gen, dtype=torch.float64)
    results = {}
    for kind in ("bn", "sn"):
        layer = nn.BatchNorm2d(6) if kind == "bn" else SwitchNorm2d(6, using_bn=True)
        layer = layer.double()
        with torch.no_grad():
            layer.weight.copy_(torch.linspace(0.5, 1.5, 6))
            layer.bias.copy_(torch.linspace(-1, 1, 6))
        holder = nn.Sequential(layer)
        converted = dist_utils.convert_sync_norms(holder)
        assert converted == ["0"], converted
        sync = holder[0]
        x = x_full[rank * 2:(rank + 1) * 2].clone().requires_grad_(True)
        y = sync(x)
        # the loss of the full batch is Σ over both ranks; each rank backpropagates its own part
        (y * weights[rank * 2:(rank + 1) * 2]).sum().backward()
        results[kind] = {"y": y.detach(), "x_grad": x.grad, "running_mean": sync.running_mean.clone(),
                         "running_var": sync.running_var.clone(),
                         **{f"grad_{n}": p.grad.clone() for n, p in sync.named_parameters()}}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(results, out / f"layers_rank{rank}.pt")


# -- fast unit tests ---------------------------------------------------------------------------------------------------

def test_strip_option_and_torchrun_command():
    argv = ["train", "-s", "a.jpg", "--nproc", "2", "--norm", "bn", "--nproc=3", "-q"]
    assert dist_utils.strip_option(argv, "--nproc") == ["train", "-s", "a.jpg", "--norm", "bn", "-q"]
    command = dist_utils.torchrun_command(2, ["train", "-q"], master_port=29999)
    assert command[1:3] == ["-m", "torch.distributed.run"]
    assert "--nproc_per_node=2" in command and "--master_addr=127.0.0.1" in command
    assert "--master_port=29999" in command and command[-4:] == ["-m", "styler", "train", "-q"]


def test_single_process_context_and_no_group_fallbacks():
    ctx, device = dist_utils.setup(torch.device("cpu"))
    assert (ctx.rank, ctx.world_size, ctx.enabled, ctx.is_main) == (0, 1, False, True) and device.type == "cpu"
    assert dist_utils.gather_objects({"a": 1}, ctx) == [{"a": 1}]
    # without a process group the synchronized layers are exactly the plain ones
    from torch import nn

    from styler.nn.norms import SwitchNorm2d

    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    for plain in (nn.BatchNorm2d(4).double(), SwitchNorm2d(4, using_bn=True).double()):
        holder = nn.Sequential(plain)
        reference = plain(x)
        dist_utils.convert_sync_norms(holder)
        assert type(holder[0]) is not type(plain)
        assert holder[0].state_dict().keys() == plain.state_dict().keys()
        torch.testing.assert_close(holder[0](x), reference, rtol=0, atol=1e-12)
    # IN/GN/LN nets have nothing to synchronize
    from styler.nn.network import ArchSpec, TransformerNet
    from styler.nn.norms import NormSpec

    for norm in ("instance", "group", "layer", "switchable"):
        net = TransformerNet(ArchSpec(width=8, residual_blocks=1, norm=NormSpec.parse(norm, groups=4)))
        assert dist_utils.convert_sync_norms(net) == []


def test_schedule_origin_continues_by_images_seen(photos):
    folder = PhotoFolder(photos, 32)
    # 2 ranks × 2 images for 3 steps = 12 images seen; a single process with batch 3 continues at image 12
    resumed = BatchSchedule(folder, 3, seed=1, origin_step=3, origin_position=12)
    reference = BatchSchedule(folder, 1, seed=1)  # one image per step: step p is sample position p
    for step in (3, 4):
        expected = torch.cat([reference.batch(p) for p in range(resumed.position(step), resumed.position(step) + 3)])
        assert torch.equal(resumed.batch(step), expected)
    assert resumed.epoch_of(3) == 12 / len(folder)
    # same global batch: a 2 × 2 schedule and a 1 × 4 schedule agree on every step
    r0 = BatchSchedule(folder, 2, seed=1, rank=0, world_size=2)
    r1 = BatchSchedule(folder, 2, seed=1, rank=1, world_size=2)
    single = BatchSchedule(folder, 4, seed=1)
    for step in range(3):
        both = torch.stack([r0.batch(step), r1.batch(step)], dim=1).flatten(0, 1)
        assert torch.equal(both, single.batch(step))
    with pytest.raises(ValueError):
        BatchSchedule(folder, 2, seed=1, rank=2, world_size=2)


# -- 2-process runs ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dist_runs(tmp_path_factory, photos, style, vgg_weights):
    """One torchrun launch (2 ranks, gloo) that runs every scenario of ``_worker_main``."""
    out = tmp_path_factory.mktemp("dist")
    started = time.perf_counter()
    proc = _torchrun(2, [str(photos), str(style), str(vgg_weights), str(out)], timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    print(f"\n2-rank worker run: {time.perf_counter() - started:.1f} s")
    return out


@pytest.fixture(scope="module")
def single_runs(tmp_path_factory, photos, style, vgg_weights):
    """Single-process references with batch 2B over the same images (BN and SN+BN: one run for both modes)."""
    from styler.train.trainer import train

    out = tmp_path_factory.mktemp("single")
    paths = {}
    for norm in ("in", "gn", "ln", "bn", "sn+bn"):
        config = _tiny(out / norm.replace("+", ""), photos, style, vgg_weights, norm=norm, batch_size=2 * PER_RANK)
        paths[norm] = train(config).model_path
    return paths


def _ranks(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    return (torch.load(folder / "rank0.pt", weights_only=True), torch.load(folder / "rank1.pt", weights_only=True))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bn", "sn"])
def test_sync_layers_equal_full_batch(dist_runs, kind):
    from torch import nn

    from styler.nn.norms import SwitchNorm2d

    gen = torch.Generator().manual_seed(5)
    x_full = (torch.randn(4, 6, 5, 7, generator=gen, dtype=torch.float64) * 3 + 2).requires_grad_(True)
    weights = torch.randn(4, 6, 5, 7, generator=gen, dtype=torch.float64)
    layer = (nn.BatchNorm2d(6) if kind == "bn" else SwitchNorm2d(6, using_bn=True)).double()
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(0.5, 1.5, 6))
        layer.bias.copy_(torch.linspace(-1, 1, 6))
    y = layer(x_full)
    (y * weights).sum().backward()
    parts = [torch.load(dist_runs / f"layers_rank{r}.pt", weights_only=True)[kind] for r in (0, 1)]
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.cat([p["x_grad"] for p in parts]), x_full.grad, rtol=0, atol=1e-12)
    for name, param in layer.named_parameters():
        # DDP would average the per-rank gradients; for this plain sum of losses they add up
        torch.testing.assert_close(parts[0][f"grad_{name}"] + parts[1][f"grad_{name}"], param.grad, rtol=0,
                                   atol=1e-12, msg=name)
    for part in parts:
        torch.testing.assert_close(part["running_mean"], layer.running_mean, rtol=0, atol=1e-12)
        torch.testing.assert_close(part["running_var"], layer.running_var, rtol=0, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EQUIVALENCE))
def test_parameters_identical_on_both_ranks(dist_runs, name):
    rank0, rank1 = _ranks(dist_runs / name)
    diff = _max_diff(rank0, rank1)
    print(f"\n{name}: max |rank0 − rank1| = {diff:.3g}")
    assert diff == 0.0
    if name.endswith("_sync"):  # synchronized running statistics are identical too (per-rank ones are not)
        assert _max_diff(rank0, rank1, params_only=False) == 0.0
    meta = read_model_info(dist_runs / name / "model.pth")["metadata"]  # model format v2: safetensors, any name
    assert meta["training"]["world_size"] == 2 and meta["training"]["global_batch"] == 2 * PER_RANK
    assert meta["training"]["images_seen"] == STEPS * 2 * PER_RANK
    statistics = meta["training"]["distributed"]["batch_statistics"]
    norm, sync = EQUIVALENCE[name]
    if norm in ("in", "gn", "ln"):
        assert statistics.startswith("not applicable")
    else:
        assert statistics.startswith("synchronized" if sync else "per rank")


# How "the same parameters" is judged. Adam turns rounding noise into full ±lr steps for parameters whose gradient is
# (near) zero: conv biases just before IN/BN (the mean subtraction cancels them, so their exact gradient is 0) and
# norm biases that only feed the residual stream into such a norm. Merely permuting the 4 images inside a
# single-process batch moves those by up to 4e-3 after 3 steps (the measured noise floor), so a bare max-difference
# would call two runs of the *same* computation different. The criteria are therefore: the median parameter
# difference, the fraction of parameters off by more than 1e-4, the max difference where no parameter has a
# cancelled gradient (GN/LN), and the train-mode outputs of the two nets on one fixed batch.
PARAM_ATOL = 1e-5


def _compare(a_model: Path, b_state: dict[str, torch.Tensor] | Path, photos_dir: Path) -> dict[str, float]:
    """Parameter statistics and the train-mode output difference (relative to the output range) of two nets."""
    import copy

    from styler.io.modelfile import load_model

    a = load_model(a_model).net
    b = copy.deepcopy(a)
    b.load_state_dict(load_model(b_state).net.state_dict() if isinstance(b_state, Path) else b_state)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    diffs = torch.cat([(pa[k].detach() - pb[k].detach()).abs().flatten().double() for k in pa])
    batch = BatchSchedule(PhotoFolder(photos_dir, SIZE), 2 * PER_RANK, seed=7).batch(0)
    a.train(), b.train()
    with torch.no_grad():
        ya, yb = a(batch), b(batch)
    return {"max": float(diffs.max()), "median": float(diffs.median()), "frac_1e-4": float((diffs > 1e-4).double()
            .mean()), "output": float((ya - yb).abs().max() / ya.abs().max())}


def _fmt(stats: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2g}" for k, v in stats.items())


@pytest.mark.slow
@pytest.mark.parametrize("name, reference", [("in", "in"), ("gn", "gn"), ("ln", "ln"), ("bn_sync", "bn"),
                                             ("snbn_sync", "sn+bn")])
def test_ddp_equals_single_process_with_global_batch(dist_runs, single_runs, photos, name, reference):
    stats = _compare(single_runs[reference], dist_runs / name / "model.pth", photos)
    print(f"\n{name}: DDP 2×{PER_RANK} vs single 1×{2 * PER_RANK}: {_fmt(stats)}")
    sn = reference == "sn+bn"  # SN+BN's own noise floor is higher (permuted single batch: median 1.9e-5)
    assert stats["median"] < (1e-4 if sn else PARAM_ATOL)
    assert stats["frac_1e-4"] < 0.05
    assert stats["output"] < (0.1 if sn else 5e-3)
    if reference in ("gn", "ln"):
        # No gradient is cancelled, so every single parameter matches; Adam's normalized steps still turn gradient
        # rounding into up to ~1e-5 (seen 6e-7 to 1.4e-5 across runs), far below per-rank BN's median of 1e-3.
        assert stats["max"] < 10 * PARAM_ATOL
    if reference in ("bn", "sn+bn"):  # synchronized running statistics are those of the global batch
        from styler.io.modelfile import load_model

        ddp, single = (load_model(p).net.state_dict() for p in (dist_runs / name / "model.pth",
                                                                 single_runs[reference]))
        for key in (k for k in ddp if k.endswith(("running_mean", "running_var"))):
            scale = float(single[key].abs().max())
            assert float((ddp[key] - single[key]).abs().max()) < (1e-2 if sn else 1e-3) * max(scale, 1.0), key


@pytest.mark.slow
@pytest.mark.parametrize("name, reference", [("bn_local", "bn"), ("snbn_local", "sn+bn")])
def test_unsynchronized_batch_statistics_differ(dist_runs, single_runs, photos, name, reference):
    local = _compare(single_runs[reference], dist_runs / name / "model.pth", photos)
    synced = _compare(single_runs[reference], dist_runs / name.replace("local", "sync") / "model.pth", photos)
    print(f"\n{name}: per-rank statistics vs single: {_fmt(local)}\n   synchronized vs single: {_fmt(synced)}")
    assert local["median"] > 1e-4 and local["frac_1e-4"] > 0.5 and local["output"] > 0.2
    assert local["median"] > 10 * synced["median"] and local["output"] > 5 * synced["output"]


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["in", "bn"])
def test_stopped_and_resumed_equals_uninterrupted(dist_runs, norm):
    straight, _ = _ranks(dist_runs / f"straight_{norm}")
    resumed0, resumed1 = _ranks(dist_runs / f"stopped_{norm}")
    diff = _max_diff(resumed0, straight, params_only=False)
    print(f"\n{norm}: max |stopped+resumed − uninterrupted| = {diff:.3g}")
    assert diff <= 1e-6 and _max_diff(resumed0, resumed1, params_only=False) == 0.0
    log = [json.loads(line)["step"] for line in (dist_runs / f"stopped_{norm}" / "model.run" / "log.jsonl")
           .read_text().splitlines()]
    assert log == list(range(1, RESUME_STEPS + 1))


@pytest.mark.slow
def test_resume_distributed_checkpoint_in_one_process(dist_runs, photos, style, vgg_weights, tmp_path):
    """Checkpoint of 2 ranks × 2 at step 2, resumed in one process with batch 4 (same global batch): the data and
    the gradients are those of the 2-rank run, so IN ends where the uninterrupted 2-rank run ends."""
    from styler.train.trainer import train

    config = _tiny(tmp_path, photos, style, vgg_weights, norm="in", iterations=RESUME_STEPS,
                   batch_size=2 * PER_RANK)
    result = train(config, resume=dist_runs / "stopped_in" / "step2.pth", explicit={"batch_size", "output"})
    stats = _compare(dist_runs / "straight_in" / "model.pth", result.net.state_dict(), photos)
    print(f"\n2 ranks → 1 process resume vs uninterrupted 2-rank run: {_fmt(stats)}")
    assert stats["median"] < PARAM_ATOL and stats["frac_1e-4"] < 0.05 and stats["output"] < 5e-3
    training = result.metadata["training"]
    assert training["images_seen"] == RESUME_STEPS * 2 * PER_RANK and training["world_size"] == 1
    assert [h["world_size"] for h in training["distributed"]["history"]] == [2, 1]


@pytest.mark.slow
def test_cli_nproc_kill_and_resume(dist_runs, tmp_path, photos, style, vgg_weights):
    """`styler train --nproc 2` killed with SIGKILL midway and resumed ends with the weights of the uninterrupted
    2-rank run (the worker's ``straight_bn``, same settings); rank-0-only outputs and the metadata are checked too."""
    from styler.io.modelfile import load_model
    from styler.train.checkpoints import load_checkpoint

    out = tmp_path / "killed.pth"
    args = [sys.executable, "-m", "styler", "train", "-s", str(style), "-d", str(photos), "-o", str(out),
            "--nproc", "2", "--norm", "bn", "-i", str(RESUME_STEPS), "--width", "8", "--residual-blocks", "1",
            "--image-size", str(SIZE), "--batch-size", str(PER_RANK), "--style-size", "64", "--log-interval", "1",
            "--checkpoint-interval", "1", "--preview-interval", "3", "--preview-image",
            str(sorted(photos.rglob("*.jpg"))[0]), "--vgg-weights", str(vgg_weights), "--threads", "1", "-q",
            "--no-amp"]  # the reference run (base_config) is fp32
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "killed.run" / "log.jsonl"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and (not log.exists()
                                                              or len(log.read_text().splitlines()) < 2):
        time.sleep(0.05)
    # Kill the launcher, torchrun and both ranks, mid-step. The ranks run in sessions of their own (torchrun starts
    # them with start_new_session), so they are found as descendants and killed by pid.
    for pid in [*_descendants(proc.pid), proc.pid]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert not out.exists(), "the run finished before it could be killed"
    assert log.exists(), stderr[-5000:]
    checkpoint = tmp_path / "killed.run" / "checkpoint.pth"
    stopped_at = load_checkpoint(checkpoint)["step"]
    assert 1 <= stopped_at < RESUME_STEPS

    proc = subprocess.run([sys.executable, "-m", "styler", "train", "--resume", str(checkpoint), "--nproc", "2",
                           "-q"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert proc.stdout.count("model written to") == 1  # only rank 0 reports
    straight = load_model(dist_runs / "straight_bn" / "model.pth").net.state_dict()
    diff = _max_diff(load_model(out).net.state_dict(), straight, params_only=False)
    print(f"\nSIGKILL after step {stopped_at}, resumed: max |resumed − uninterrupted| = {diff:.3g}")
    assert diff <= 1e-6

    training = load_model(out).metadata["training"]
    assert (training["world_size"], training["global_batch"], training["batch_size"]) == (2, 2 * PER_RANK, PER_RANK)
    assert training["sync_bn"] is True and training["distributed"]["backend"] == "gloo"
    assert training["distributed"]["batch_statistics"].startswith("synchronized")
    assert training["images_seen"] == RESUME_STEPS * 2 * PER_RANK
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == list(range(1, RESUME_STEPS + 1))
    previews = sorted(p.name for p in (tmp_path / "killed.run" / "previews").iterdir())
    assert previews == ["latest.png", "step_000003.png"]


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
