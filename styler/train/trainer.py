"""Training a style model: resumable, observable, and reproducible.

One run trains one :class:`~styler.nn.network.TransformerNet` against one style image with the perceptual loss.
Everything a run produces lives beside the model file::

    starry_night.pth            the model (self-describing, see styler.io.modelfile)
    starry_night.loss.png       loss curves (written at the end)
    starry_night.run/
        checkpoint.pth          model + optimizer + step + RNG + config, written atomically
        log.jsonl               one JSON record per logged step (loss terms, lr, images/s, SN weights)
        previews/step_000200.png  fixed photos stylized in eval mode every N steps; latest.png is the newest

Why the data order is a function of (seed, step) and not of a loader's internal state: a run resumed from step *k*
then sees exactly the batches an uninterrupted run would, so resuming reproduces the uninterrupted weights.

Distributed training (``torchrun --nproc_per_node=N -m styler train ...``, or ``styler train --nproc N``) runs this
same loop on every rank; see :mod:`styler.train.distributed`. ``batch_size`` is per rank, the global batch is
``batch_size · world_size``; only rank 0 writes files.

The pieces live beside this module: the configuration (:mod:`~styler.train.config`), the log
(:mod:`~styler.train.runlog`), previews (:mod:`~styler.train.previews`), the model file's metadata
(:mod:`~styler.train.metadata`), checkpoints and the resume state (:mod:`~styler.train.checkpoints`) and the stop
flag (:mod:`~styler.train.signals`). The order of construction in :class:`Trainer` is part of the contract: the
loss network is built before the transformer net, so both draw the same random numbers as in every earlier run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from styler.devices import bf16_is_fast, resolve_device
from styler.errors import TrainingError
from styler.io.modelfile import save_model
from styler.loss.criterion import build_style_criteria
from styler.loss.lossnet import resolve_lossnet_spec
from styler.nn.network import TransformerNet, count_parameters
from styler.nn.norms import finalize_switchable_statistics, switchable_layers
from styler.train import distributed as dist_utils
from styler.train.checkpoints import ResumeState, load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from styler.train.config import PRESETS, RESUMABLE_OVERRIDES, TrainConfig, iterations_for_epochs, resumed_config
from styler.train.data import BatchSchedule, PhotoFolder
from styler.train.metadata import RunFacts, model_metadata
from styler.train.previews import preview_photos, save_preview
from styler.train.runlog import RunLog, StepWindow, final_losses, read_log
from styler.train.signals import StopFlag, TrainingInterrupted
from styler.train.styles import StylePlan

__all__ = ["Trainer", "TrainConfig", "TrainResult", "TrainingInterrupted", "train", "PRESETS",
           "RESUMABLE_OVERRIDES", "make_optimizer", "read_log"]

#: Called after every step with the step number and the loss terms (global-batch means in a distributed run).
StepCallback = Callable[[int, dict[str, float]], None]

#: Training batches that SN's batch-average statistics are finalized over (docs/norms.md §5.3).
_FINALIZE_BATCHES = 50


@dataclass
class TrainResult:
    model_path: Path
    steps: int
    wall_seconds: float
    images_per_second: float
    final_losses: dict[str, float]
    log_path: Path
    loss_curve: Path | None
    skipped_images: int
    metadata: dict[str, Any] = field(default_factory=dict)
    #: The trained network (on the CPU, eval mode), on every rank; only rank 0 writes it to ``model_path``.
    net: Any = None
    rank: int = 0
    world_size: int = 1


def make_optimizer(net: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam; SN mixture logits get their own group, without weight decay toward uniform (docs/norms.md §5.3)."""
    logits = [p for n, p in net.named_parameters() if n.endswith("_logits")]
    others = [p for n, p in net.named_parameters() if not n.endswith("_logits")]
    groups: list[dict[str, Any]] = [{"params": others, "name": "weights"}]
    if logits:
        groups.append({"params": logits, "name": "sn_logits", "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=lr)


def _reduce_step_values(values: dict[str, float], stop: bool, device: torch.device) -> tuple[dict[str, float], bool]:
    """Mean of the loss terms over the ranks (equal per-rank batches: the global-batch mean) and any rank's stop."""
    import torch.distributed as dist

    keys = list(values)
    packed = torch.tensor([values[k] for k in keys] + [1.0 if stop else 0.0], dtype=torch.float64,
                          device=device if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(packed)
    world = dist.get_world_size()
    reduced = {k: float(packed[i]) / world for i, k in enumerate(keys)}
    return reduced, bool(packed[-1] > 0)


class Trainer:
    """One training run on this rank: everything is built on construction, :meth:`run` trains and writes the model.

    Construction seeds the RNGs, decides the precision, reads the resume state, scans the dataset, builds the
    criterion, the network (synchronized norms and DDP in a distributed run) and the optimizer, restores a
    checkpoint, and prepares the run folder. :meth:`run` then repeats :meth:`step`, :meth:`log`, :meth:`preview` and
    :meth:`checkpoint` until the last step, and :meth:`finish` writes the model file.

    Args:
        config: the run's settings (already merged with a checkpoint's, see :func:`train`).
        ctx, device: this rank's process-group context and device, from :func:`styler.train.distributed.setup`
            (default: a single process on ``config.device``).
        checkpoint: a loaded checkpoint to continue from.
        on_step: called after every step with the step number and the loss terms.
        stop_after: stop as if interrupted (checkpoint written) after this many steps of this process; for tests.
    """

    def __init__(self, config: TrainConfig, ctx: dist_utils.DistContext | None = None,
                 device: torch.device | None = None, *, checkpoint: dict[str, Any] | None = None,
                 on_step: StepCallback | None = None, stop_after: int | None = None) -> None:
        self.config = config
        self.ctx = ctx or dist_utils.DistContext()
        self.device = device or torch.device(resolve_device(config.device))
        ctx, device = self.ctx, self.device
        self.main = ctx.is_main
        self.on_step, self.stop_after = on_step, stop_after
        self.global_batch = config.batch_size * ctx.world_size
        self._seed()
        self.use_amp = self._decide_precision(checkpoint)
        self.channels_last = config.channels_last if config.channels_last is not None else device.type == "cuda"
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.resume = ResumeState.start(checkpoint, world_size=ctx.world_size, batch_size=config.batch_size,
                                        warn=self.main)
        self.dataset = PhotoFolder(Path(config.dataset), config.image_size)
        self.schedule = BatchSchedule(self.dataset, config.batch_size, config.seed, rank=ctx.rank,
                                      world_size=ctx.world_size, origin_step=self.resume.step,
                                      origin_position=self.resume.images_seen)
        self.styles = StylePlan.for_config(config)
        self.criteria = build_style_criteria(
            resolve_lossnet_spec(config.vgg_source, config.vgg_weights, config.vgg_convention), config.style_list,
            style_weights=[config.style_weight_for(i) for i in range(len(config.style_list))],
            style_size=config.style_size, content_weight=config.content_weight, style_weight=config.style_weight,
            tv_weight=config.tv_weight, content_layer=config.content_layer, style_layers=config.style_layers,
            device=device, bf16=self.use_amp)
        self.criterion = self.criteria[0]
        self.net, self.synced = self._build_net()
        self.styles.prepare(self.net)
        self.optimizer = make_optimizer(self.net, config.lr)
        self._restore(checkpoint)
        self.model = self._wrap_ddp()
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.loss_forwards = [torch.compile(c.loss) if config.compile else c.loss for c in self.criteria]
        self._style_windows: dict[int, list[dict[str, float]]] = {}
        self.run_log = RunLog(config.log_path)
        self._preview_images = self._prepare_run_folder(resumed=checkpoint is not None)
        self.current_step = self.resume.step
        self.last_saved: int | None = self.resume.step if checkpoint is not None else None
        self._window: StepWindow | None = None
        self._started = time.perf_counter()

    # -- construction ------------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        # The same seed on every rank: identical initialization (DDP also broadcasts rank 0's weights at wrap time).
        torch.manual_seed(self.config.seed)
        random.seed(self.config.seed)

    def _decide_precision(self, checkpoint: dict[str, Any] | None) -> bool:
        """bf16 autocast only where it is fast; a resumed run keeps the precision it started with (its steps are
        not a mix) as long as bf16 is still fast here; every rank computes in the same precision."""
        fast = bf16_is_fast(self.device.type)
        use_amp = self.config.amp and fast
        if checkpoint is not None:
            use_amp = bool(checkpoint.get("bf16_autocast", use_amp)) and fast
        if self.ctx.enabled:
            use_amp = dist_utils.all_ranks_agree(use_amp, self.device)
        return use_amp

    def _build_net(self) -> tuple[TransformerNet, list[str]]:
        net = TransformerNet(self.styles.arch).to(self.device)
        synced = dist_utils.convert_sync_norms(net) if (self.ctx.enabled and self.config.sync_bn) else []
        if self.channels_last:
            net = net.to(memory_format=torch.channels_last)
            for criterion in self.criteria:
                criterion.loss = criterion.loss.to(memory_format=torch.channels_last)
        return net, synced

    def _restore(self, checkpoint: dict[str, Any] | None) -> None:
        """Load a checkpoint's weights and optimizer; continue its RNG on rank 0 and reseed the other ranks."""
        if checkpoint is not None:
            self.net.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.main:
                restore_rng_state(checkpoint["rng"], self.device)
            else:
                dist_utils.seed_rank(self.config.seed, self.ctx.rank, self.resume.step)
        elif self.ctx.enabled and not self.main:
            dist_utils.seed_rank(self.config.seed, self.ctx.rank)
        self.net.train()

    def _wrap_ddp(self) -> nn.Module:
        if not self.ctx.enabled:
            return self.net
        from torch.nn.parallel import DistributedDataParallel

        # broadcast_buffers: rank 0's BN running statistics are copied to all ranks before each forward, so every
        # rank holds the same buffers (they are equal anyway when the statistics are synchronized).
        return DistributedDataParallel(self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                                       broadcast_buffers=True)

    def _prepare_run_folder(self, resumed: bool) -> list[torch.Tensor]:
        """Create the run folder and log (rank 0) and load the preview photos."""
        if not self.main:
            return []
        self.config.run_path.mkdir(parents=True, exist_ok=True)
        self.run_log.prepare(self.resume.step if resumed else None)
        return preview_photos(self.config, self.dataset)

    # -- the loop ----------------------------------------------------------------------------------------------------

    @property
    def style_name(self) -> str:
        return Path(self.config.style).stem

    def images_seen(self, at_step: int) -> int:
        return self.resume.images_seen + (at_step - self.resume.step) * self.global_batch

    def elapsed(self) -> float:
        """Training seconds so far, earlier (resumed) parts of the run included."""
        return self.resume.elapsed + time.perf_counter() - self._started

    def run(self) -> TrainResult:
        """Train up to ``config.iterations`` and write the model; raises :class:`TrainingInterrupted` on a signal."""
        with self._progress_bar() as bar, StopFlag() as stop:
            self._started = time.perf_counter()
            if self.main and self.config.log_interval:
                self._window = StepWindow(self._started)
            while self.current_step < self.config.iterations:
                values, stop_requested = self.step(stop)
                if self.on_step is not None:
                    self.on_step(self.current_step, values)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{values['loss']:.3g}", content=f"{values['content']:.3g}",
                                    style=f"{values['style']:.3g}", tv=f"{values['tv']:.2g}", refresh=False)
                elapsed = self.elapsed()
                self.log(elapsed)
                self.preview()
                if self._due(self.config.checkpoint_interval):
                    self.checkpoint(elapsed)
                if self._stop_due(stop_requested):
                    self.checkpoint(elapsed)
                    dist_utils.barrier(self.ctx)  # the checkpoint exists before any rank reports it
                    raise TrainingInterrupted(self.current_step, self.config.checkpoint_path)
        return self.finish()

    def _progress_bar(self) -> contextlib.AbstractContextManager[Any]:
        if not (self.config.progress and self.main):
            return contextlib.nullcontext()
        from tqdm import tqdm

        label = self.config.norm_spec.short_name
        ranks = f" ×{self.ctx.world_size} ranks" if self.ctx.enabled else ""
        return tqdm(total=self.config.iterations, initial=self.resume.step, unit="step", dynamic_ncols=True,
                    desc=f"train {self.style_name}/{label}{ranks}")

    def _due(self, interval: int) -> bool:
        return bool(interval) and self.current_step % interval == 0

    def _stop_due(self, requested: bool) -> bool:
        """A signal (on any rank) or ``stop_after``; one during the last step lets the run finish normally."""
        if self.current_step >= self.config.iterations:
            return False
        done_here = self.current_step - self.resume.step
        return requested or (self.stop_after is not None and done_here >= self.stop_after)

    def step(self, stop: StopFlag) -> tuple[dict[str, float], bool]:
        """One optimizer step; returns the loss terms and whether a stop was requested (on any rank)."""
        batch = self.schedule.batch(self.current_step).to(self.device, non_blocking=True)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        style = self.styles.criterion_for(self.current_step)
        self.styles.select(self.net, style)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.use_amp):
            output = self.forward(batch)
            terms = self.loss_forwards[style](output.float(), batch)
        values = terms.as_floats()
        stop_requested = stop.raised
        if self.ctx.enabled:
            # Global-batch means for the log and the NaN guard (every rank takes the same decision), and a signal
            # seen by any rank stops all of them at the same step.
            values, stop_requested = _reduce_step_values(values, stop_requested, self.device)
        if not math.isfinite(values["loss"]):
            raise self._diverged(values)
        terms.total.backward()
        rate = self.config.lr_at(self.current_step)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        self.optimizer.step()
        self.current_step += 1
        if self._window is not None:
            self._window.add(values, batch.shape[0] * self.ctx.world_size)
            if self.config.multi_style:
                self._style_windows.setdefault(style, []).append(values)
        return values, stop_requested

    def _diverged(self, values: dict[str, float]) -> TrainingError:
        weights, config = self.criterion.weights, self.config
        kept = (f"the last good checkpoint {config.checkpoint_path} (step {self.last_saved}) was kept"
                if self.last_saved is not None else "no checkpoint had been written yet")
        return TrainingError(
            f"loss became {values['loss']} at step {self.current_step} (content {values['content']:.4g}, style "
            f"{values['style']:.4g}, tv {values['tv']:.4g}). The usual cause is loss weights that are too high "
            f"(style weight {weights.style:g}, content {weights.content:g}, tv {weights.tv:g}) or a learning rate "
            f"that is too high ({config.lr:g}): lower --style-weight or --lr. {kept}.")

    def log(self, elapsed: float) -> None:
        """Append the record of the steps since the last one, every ``log_interval`` steps and at the last step."""
        window, step = self._window, self.current_step
        if window is None or not (self._due(self.config.log_interval) or step == self.config.iterations):
            return
        now = time.perf_counter()
        record: dict[str, Any] = {"step": step, "epoch": round(self.schedule.epoch_of(step), 4), **window.means(),
                                  "lr": self.optimizer.param_groups[0]["lr"],
                                  "images_per_s": window.images_per_second(now), "elapsed_s": round(elapsed, 2)}
        if self.ctx.enabled:
            record["world_size"] = self.ctx.world_size
        sn = {name: layer.mixture_weights() for name, layer in switchable_layers(self.net)}
        if sn:
            record["sn_weights"] = sn
        if self._style_windows:
            record["styles"] = {Path(self.config.style_list[i]).stem: {k: sum(v[k] for v in vs) / len(vs)
                                                                       for k in vs[0]}
                                for i, vs in sorted(self._style_windows.items())}
            self._style_windows = {}
        self.run_log.append(record)
        window.reset(now)

    def preview(self) -> None:
        if self.main and self._due(self.config.preview_interval):
            arch = self.styles.arch
            title = f"{self.style_name} · {arch.norm.short_name} · width {arch.width}"
            styles: list[tuple[str, Callable[[], None]]] | None = None
            if self.styles.conditional:
                styles = [(Path(path).stem, functools.partial(self.styles.select, self.net, i))
                          for i, path in enumerate(self.config.style_list)]
            save_preview(self.net, self._preview_images, self.device, self.current_step,
                         self.config.run_path / "previews", title, styles=styles)

    def checkpoint(self, elapsed: float) -> None:
        """Write the checkpoint of the current step (rank 0); every rank remembers it as the last good one."""
        step = self.current_step
        self.last_saved = step
        if not self.main:
            return
        save_checkpoint(self.config.checkpoint_path, {
            "config": self.config.to_dict(), "model": self.net.state_dict(), "optimizer": self.optimizer.state_dict(),
            "step": step, "elapsed": elapsed, "rng": rng_state(self.device), "bf16_autocast": self.use_amp,
            "skipped_images": len(self.dataset.bad_files), "world_size": self.ctx.world_size,
            "global_batch": self.global_batch, "images_seen": self.images_seen(step), "history": self.resume.history})

    # -- the end -----------------------------------------------------------------------------------------------------

    def finish(self) -> TrainResult:
        """Final checkpoint, SN statistics, then the model file, loss curve and result (files on rank 0 only)."""
        wall = self.elapsed()
        self.checkpoint(wall)
        self._finalize_statistics()
        self.net.eval()
        bad_files: dict[str, str] = {}
        for part in dist_utils.gather_objects(dict(self.dataset.bad_files), self.ctx):
            bad_files.update(part)
        records = self.run_log.records() if self.main else []
        facts = RunFacts(
            steps=self.current_step, images_seen=self.images_seen(self.current_step), wall_seconds=wall,
            run_images=self.images_seen(self.current_step) - self.resume.images_seen,
            run_wall_seconds=wall - self.resume.elapsed, dataset_images=len(self.dataset),
            skipped_images=len(bad_files), history=self.resume.history, synchronized_layers=self.synced,
            final_losses=final_losses(records),
            parameters=count_parameters(self.net), use_amp=self.use_amp)
        metadata: dict[str, Any] = {}
        curve = None
        if self.main:
            self.styles.select(self.net, 0)
            metadata = model_metadata(self.config, self.criterion, facts, self.ctx, self.device, arch=self.styles.arch,
                                      styles=self.styles.style_records(self.config, self.criteria)
                                      if self.styles.conditional else None)
            model_path = save_model(self.config.output, self.net.cpu(), metadata, half=self.config.half_storage)
            curve = self._plot_loss_curve(records)
        else:
            model_path = Path(self.config.output)
            self.net.cpu()
        dist_utils.barrier(self.ctx)  # the model file exists before any rank returns
        return TrainResult(model_path=model_path, steps=facts.steps, wall_seconds=wall,
                           images_per_second=facts.images_per_second, final_losses=facts.final_losses,
                           log_path=self.config.log_path, loss_curve=curve, skipped_images=facts.skipped_images,
                           metadata=metadata, net=self.net, rank=self.ctx.rank, world_size=self.ctx.world_size)

    def _finalize_statistics(self) -> None:
        """SN's batch-average statistics are meaningless until finalized over training batches (docs/norms.md §5.3).
        Every rank takes part: with synchronized SN the finalize forwards pool statistics over the ranks."""
        if any(m.using_bn and not m.using_moving_average for _, m in switchable_layers(self.net)):
            batches = (self.schedule.batch(self.config.iterations + i).to(self.device)
                       for i in range(_FINALIZE_BATCHES))
            finalize_switchable_statistics(self.net, batches)

    def _plot_loss_curve(self, records: list[dict[str, Any]]) -> Path | None:
        if not records:
            return None
        from styler.evidence.figures import plot_loss_curves

        label = self.config.norm_spec.short_name
        return plot_loss_curves({label: records}, self.config.loss_curve_path, title=f"{self.style_name} · {label}")


def train(config: TrainConfig, *, resume: str | os.PathLike | None = None, explicit: set[str] | None = None,
          on_step: StepCallback | None = None,
          stop_after: int | None = None, epochs: float | None = None) -> TrainResult:
    """Run (or resume) training and write the model file; returns what was produced and measured.

    Under torchrun (``WORLD_SIZE > 1``) every rank calls this function; it joins the process group (or reuses one
    the caller set up), trains with DDP on ``batch_size`` images per rank, and only rank 0 writes files.

    Args:
        config: the run's settings. When resuming, the checkpoint's settings are used instead, except those in
            :data:`RESUMABLE_OVERRIDES` that appear in ``explicit`` (the options the user actually passed).
        resume: a checkpoint path to continue from (every rank reads the same file).
        on_step: called after every step with the step number and loss terms (tests and tooling). In a distributed
            run the terms are the means over the global batch, identical on every rank.
        stop_after: stop (as if interrupted, checkpoint written) after this many steps; for tests.
        epochs: train for this many passes over the dataset instead of ``config.iterations``. Computed here, after
            a resumed run's settings are known, from the dataset, per-rank batch and world size actually used.
    """
    checkpoint = None
    if resume is not None:
        checkpoint = load_checkpoint(resume)
        config = resumed_config(TrainConfig.from_dict(checkpoint["config"]), config, explicit or set(),
                                step=int(checkpoint["step"]))
    ctx, device = dist_utils.setup(torch.device(resolve_device(config.device)))
    try:
        if epochs is not None:
            images = len(PhotoFolder(Path(config.dataset), config.image_size))
            iterations = iterations_for_epochs(epochs, images, config.batch_size, ctx.world_size)
            config = dataclasses.replace(config, iterations=iterations)
        return Trainer(config, ctx, device, checkpoint=checkpoint, on_step=on_step, stop_after=stop_after).run()
    finally:
        dist_utils.cleanup(ctx)
