"""What a trained model file says about the run that produced it.

Why so much: a model file is the only thing that survives a run, and the norm ablation compares models trained on
different machines, precisions and numbers of processes. Each one therefore records its style image (with a
checksum), norm, loss network and weights, every training setting, and how it was measured — hardware, precision,
images seen, how batch statistics were computed across ranks — so that two files can be compared without the logs.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from styler.io.files import sha256_file
from styler.nn.spec import ArchSpec
from styler.train.config import TrainConfig

if TYPE_CHECKING:
    from styler.loss.criterion import Criterion
    from styler.train.distributed import DistContext

__all__ = ["RunFacts", "batch_statistics_mode", "hardware_description", "model_metadata",
           "precision_description"]

#: Settings that describe where files went or how the run looked, not what was trained: left out of the metadata.
_NOT_RECORDED = ("progress", "preview_images", "run_dir", "log_file", "output")


def hardware_description(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name and torch's thread count (throughput means nothing without it)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {threads} thread{'' if threads == 1 else 's'}"


def precision_description(use_amp: bool) -> str:
    return "bf16 autocast (fp32 weights, fp32 Gram matrices and losses)" if use_amp else "fp32"


def batch_statistics_mode(config: TrainConfig, ctx: DistContext, synced: list[str]) -> str:
    """How batch statistics were computed, in words: per-rank and synchronized BN train different models."""
    if not config.norm_spec.batch_dependent_in_training:
        return "not applicable: the norm's statistics are per image, so they never cross images or ranks"
    if not ctx.enabled:
        return f"single process: statistics over the batch of {config.batch_size}"
    if synced:
        return (f"synchronized: statistics pooled over all {ctx.world_size} ranks, i.e. over the global batch of "
                f"{config.batch_size * ctx.world_size}")
    return (f"per rank: each of the {ctx.world_size} ranks normalized with its own {config.batch_size} images; "
            "running statistics are rank 0's")


@dataclass(frozen=True)
class RunFacts:
    """What a finished run measured (all ranks together).

    Attributes:
        steps: optimizer steps done, resumed parts included.
        images_seen: training images consumed over the whole run.
        wall_seconds: training time over the whole run.
        run_images, run_wall_seconds: the same for this process's part only (a resumed run's throughput).
        dataset_images: photos found in the dataset.
        skipped_images: unreadable or blank photos, over every rank.
        history: the (world size, per-rank batch) segments of the run, from the checkpoint.
        synchronized_layers: names of the norm layers whose batch statistics were pooled over the ranks.
        final_losses: mean loss terms of the last log records.
        parameters: parameters of the network.
        use_amp: whether training ran under bf16 autocast.
    """

    steps: int
    images_seen: int
    wall_seconds: float
    run_images: int
    run_wall_seconds: float
    dataset_images: int
    skipped_images: int
    history: list[dict[str, Any]]
    synchronized_layers: list[str]
    final_losses: dict[str, float]
    parameters: int
    use_amp: bool

    @property
    def images_per_second(self) -> float:
        return self.run_images / self.run_wall_seconds if self.run_wall_seconds > 0 else 0.0


def _training_record(config: TrainConfig, facts: RunFacts, ctx: DistContext, device: torch.device
                     ) -> dict[str, Any]:
    world = ctx.world_size
    return {
        **{k: v for k, v in config.to_dict().items() if k not in _NOT_RECORDED},
        "steps": facts.steps, "images_seen": facts.images_seen, "wall_seconds": round(facts.wall_seconds, 1),
        "images_per_second": round(facts.images_per_second, 3) if facts.run_wall_seconds > 0 else None,
        "hardware": hardware_description(device), "device": device.type,
        "precision": precision_description(facts.use_amp),
        "dataset_images": facts.dataset_images, "skipped_images": facts.skipped_images,
        "world_size": world, "global_batch": config.batch_size * world, "batch_size_is": "per rank",
        "distributed": {**ctx.describe(), "history": facts.history,
                        "batch_statistics": batch_statistics_mode(config, ctx, facts.synchronized_layers),
                        "synchronized_norm_layers": len(facts.synchronized_layers)},
    }


def model_metadata(config: TrainConfig, criterion: Criterion, facts: RunFacts, ctx: DistContext,
                   device: torch.device, *, arch: ArchSpec | None = None,
                   styles: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The metadata block of the model file (see :mod:`styler.io.modelfile`); the key order is the file's.

    A multi-style (conditional norm) model also lists ``styles``, one record per (γ, β) row, in row order; its
    ``style`` is the first of them, so tools that show one style per model keep working.
    """
    norm = (arch or config.arch).norm
    data: dict[str, Any] = {"name": config.name or Path(config.output).stem}
    if styles:  # the records already hold each style's hash: the first style's file is not read twice
        data["style"] = {k: v for k, v in styles[0].items() if k != "style_weight"}
        data["styles"] = styles
    else:
        data["style"] = {"name": Path(config.style).stem, "file": Path(config.style).name,
                         "sha256": sha256_file(config.style), "size": list(criterion.style_image.shape[-2:])}
    return {
        **data,
        "norm": norm.to_dict(),
        "inference_statistics": norm.inference_statistics,
        "loss_network": criterion.lossnet.describe(),
        "loss_weights": criterion.weights.to_dict(),
        "training": _training_record(config, facts, ctx, device),
        "final_losses": facts.final_losses,
        "parameters": facts.parameters,
    }
