"""Distributed data-parallel training on ``torch.distributed``: process group, synchronized norms, launcher.

How a distributed run is organized (see :func:`styler.train.trainer.train`):

* Every process (rank) runs the same training loop. ``torchrun`` (``python -m torch.distributed.run``) starts them and
  sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads those and
  joins the process group with **gloo** on CPU and **NCCL** on CUDA (``STYLER_DIST_BACKEND`` overrides the choice).
* ``--batch-size`` is **per rank**; the global batch of one optimizer step is ``batch_size · world_size``. The data
  schedule (:class:`~styler.train.data.BatchSchedule`) deals every global batch out in interleaved, disjoint shares, so
  the union over the ranks is exactly the single-process batch of the global size, reshuffled every epoch.
* The transformer net is wrapped in ``DistributedDataParallel``, which averages gradients over the ranks. The loss is
  a mean over images (content: mean over elements, style: mean over per-image Gram entries, TV: mean over the batch),
  so the average of the per-rank mean losses is the mean over the global batch, and DDP's averaged gradient is the
  single-process gradient of that global batch. The frozen VGG loss network is *not* wrapped: it has no trainable
  parameters and every rank holds its own copy.
* Normalization: instance, group and layer norm compute their statistics inside one image, so they never look at
  another image, let alone another rank's; nothing needs synchronizing. Batch norm, and switchable norm's BN branch,
  average over the batch: by default their statistics are pooled over every rank's images (:class:`SyncBatchNorm2d`,
  :class:`SyncSwitchNorm2d`, which also work on CPU with gloo, where ``torch.nn.SyncBatchNorm`` refuses to run), so a
  distributed step equals one single-process step on the global batch. ``--no-sync-bn`` keeps per-rank statistics
  (cheaper; each rank normalizes with its own ``batch_size`` images).
* Only rank 0 writes logs, previews, checkpoints and the model file. On resume every rank reads the same checkpoint.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from styler.errors import StylerError
from styler.nn.collectives import all_reduce_sum
from styler.nn.kinds import for_module
from styler.nn.kinds.batch import SyncBatchNorm2d
from styler.nn.kinds.switchable import SyncSwitchNorm2d

__all__ = ["DistContext", "setup", "cleanup", "barrier", "broadcast_object", "gather_objects", "all_reduce_sum",
           "all_ranks_agree",
           "SyncBatchNorm2d", "SyncSwitchNorm2d", "convert_sync_norms", "under_launcher", "launcher_world_size",
           "free_port", "torchrun_command", "strip_option", "launch", "seed_rank"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the run. A single-process run is ``DistContext()`` (rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # True when setup() created the process group (so cleanup() destroys it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        """For the model file: world size, backend and number of nodes (WORLD_SIZE / LOCAL_WORLD_SIZE)."""
        try:
            local = int(os.environ.get("LOCAL_WORLD_SIZE", self.world_size)) or self.world_size
        except ValueError:
            local = self.world_size
        return {"world_size": self.world_size, "backend": self.backend,
                "nnodes": max(1, self.world_size // local) if self.enabled else 1}


def launcher_world_size() -> int:
    """``WORLD_SIZE`` set by torchrun (1 when not launched by it)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def under_launcher() -> bool:
    """True inside a process started by torchrun (or another launcher that sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(device: torch.device) -> tuple[DistContext, torch.device]:
    """Join (or reuse) the process group; returns the context and the device this rank trains on.

    * Already initialized (a caller set the group up): reuse it, do not destroy it at the end.
    * Launched by torchrun with ``WORLD_SIZE > 1``: initialize from the environment (``env://``), gloo on CPU, NCCL
      on CUDA. A CUDA rank trains on ``cuda:LOCAL_RANK``.
    * Otherwise: a single-process run.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        ctx = DistContext(rank, world, local, str(dist.get_backend()), owns_group=False)
    elif under_launcher() and launcher_world_size() > 1:
        if not dist.is_available():
            raise StylerError("this torch build has no torch.distributed support; run without torchrun")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        backend = os.environ.get("STYLER_DIST_BACKEND") or ("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            if torch.cuda.device_count() <= local:
                raise StylerError(f"local rank {local} has no GPU: this node has {torch.cuda.device_count()}; "
                                  "start at most one process per GPU (--nproc_per_node)")
            torch.cuda.set_device(local)
        timeout = timedelta(seconds=float(os.environ.get("STYLER_DIST_TIMEOUT", "1800")))
        dist.init_process_group(backend=backend, init_method="env://", timeout=timeout)
        ctx = DistContext(dist.get_rank(), dist.get_world_size(), local, backend, owns_group=True)
    else:
        return DistContext(), device
    if device.type == "cuda":
        device = torch.device("cuda", ctx.local_rank)
    return ctx, device


def cleanup(ctx: DistContext) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable plain data)."""
    if not ctx.enabled:
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=src)
    return holder[0]


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def all_ranks_agree(flag: bool, device: torch.device) -> bool:
    """True only if ``flag`` is True on every rank (a MIN all-reduce); used for choices that must match, like bf16."""
    import torch.distributed as dist

    value = torch.tensor([1 if flag else 0], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value.item())


def seed_rank(seed: int, rank: int, step: int = 0) -> None:
    """Per-rank RNG streams for ranks > 0 (rank 0 keeps the single-process stream, so a 1-rank run is unchanged)."""
    import random

    value = (seed * 1_000_003 + rank * 7919 + step) % (2 ** 63)
    torch.manual_seed(value)
    random.seed(value)


def convert_sync_norms(model: nn.Module, process_group: Any = None) -> list[str]:
    """Replace every layer whose batch statistics must span the ranks by its synchronized form, in place.

    Which layers, and their synchronized form, is each norm kind's answer (``synchronized`` in
    :mod:`styler.nn.kinds`): today ``BatchNorm2d`` and SN with a BN branch. Call it before building the optimizer
    and before wrapping the model in DDP. Returns the converted modules' names (empty for IN/GN/LN/none nets, which
    need no synchronization). State dict keys do not change.
    """
    converted: list[str] = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            impl = for_module(child)
            replacement = impl.synchronized(child) if impl is not None else None
            if replacement is not None:
                replacement.process_group = process_group
                setattr(module, child_name, replacement)
                converted.append(f"{name}.{child_name}" if name else child_name)
    return converted


# -- launcher ---------------------------------------------------------------------------------------------------------

def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (for a single-node rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def strip_option(argv: Sequence[str], name: str, takes_value: bool = True) -> list[str]:
    """``argv`` without the option ``name`` (``--name VALUE`` or ``--name=VALUE``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == name:
            skip = takes_value
            continue
        if arg.startswith(name + "="):
            continue
        out.append(arg)
    return out


def torchrun_command(nproc: int, args: Sequence[str], *, master_addr: str = "127.0.0.1",
                     master_port: int | None = None) -> list[str]:
    """The single-node torchrun command that runs ``python -m styler <args>`` in ``nproc`` processes."""
    port = master_port if master_port is not None else free_port(master_addr)
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={nproc}",
            f"--master_addr={master_addr}", f"--master_port={port}", "-m", "styler", *args]


def launch(nproc: int, args: Sequence[str], env: dict[str, str] | None = None) -> int:
    """Run ``styler <args>`` under torchrun with ``nproc`` local processes; returns torchrun's exit code."""
    command = torchrun_command(nproc, args)
    environment = {**os.environ, **(env or {})}
    environment.setdefault("OMP_NUM_THREADS", "1")  # N processes × all cores each would oversubscribe the CPU
    proc = subprocess.Popen(command, env=environment)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        # The terminal sent SIGINT to torchrun too: it sends SIGTERM to the ranks, which agree on a step, write the
        # checkpoint (rank 0) and exit. Report "interrupted" like a single-process run does.
        while True:
            try:
                proc.wait()
                return 130
            except KeyboardInterrupt:
                continue
