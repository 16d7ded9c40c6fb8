"""Measurements of the norm studies (batch size, group sweep, convergence, style normalization, SN over training).

The studies train many small networks on identical settings (``scripts/norm_studies.py`` runs them); this module
holds what is measured on their logs and models, so that each number has one definition with a test beside it:

* :func:`loss_curve` / :func:`images_to_reach`: training loss against *images seen* (not steps), because runs at
  different batch sizes take different numbers of steps for the same data;
* :func:`heldout_terms`: the perceptual loss terms on held-out photos, in a given forward mode;
* :func:`batch_one_instance_norm_check`: Ulyanov's remark made numerical: batch norm in train mode on a batch of
  one computes instance norm, and eval mode replaces those statistics with running averages;
* :func:`batch_mate_sensitivity` and :func:`intensity_sensitivity`: how much an output moves with its batch-mates,
  and with a brightness or contrast change of its own photo;
* :func:`sn_weight_history`: switchable norm's learned IN/LN/BN weights per layer against steps, from the run log.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from styler.evidence.contrast import DEFAULT_TRANSFORMS, contrast_sensitivity
from styler.evidence.forward import diff_stats, forward
from styler.evidence.independence import measure_independence
from styler.evidence.models import ModelRef, as_loaded
from styler.evidence.photos import Photo
from styler.loss.losses import PerceptualLoss, evaluate_terms

__all__ = ["loss_curve", "images_to_reach", "tail_mean", "heldout_terms", "batch_one_instance_norm_check",
           "batch_mate_sensitivity", "intensity_sensitivity", "sn_weight_history", "instance_norm_twin",
           "median_seconds"]


def loss_curve(records: Sequence[Mapping[str, Any]], batch_size: int, term: str = "loss", *,
               window_images: int = 200) -> list[tuple[int, float]]:
    """``(images seen, loss)`` points of a run log, each a trailing mean over ``window_images`` images.

    Why a window in images: a log record is the mean over its logging interval, which holds 10 images at batch 1
    and 80 at batch 8; averaging the same number of images makes curves of different batch sizes comparable and
    takes out most of the per-batch noise before a threshold is looked for.
    """
    points = [(int(r["step"]) * batch_size, float(r[term])) for r in records if term in r and "step" in r]
    curve = []
    for i, (images, _) in enumerate(points):
        window = [value for seen, value in points[: i + 1] if seen > images - window_images]
        curve.append((images, sum(window) / len(window)))
    return curve


def images_to_reach(curve: Sequence[tuple[int, float]], threshold: float) -> int | None:
    """The first images-seen count at which a smoothed curve is at or below ``threshold`` (None: never)."""
    for images, value in curve:
        if value <= threshold:
            return images
    return None


def tail_mean(curve: Sequence[tuple[int, float]], fraction: float = 0.25) -> float:
    """Mean of the last ``fraction`` of a curve's points: a run's final loss without the last batch's noise."""
    if not curve:
        raise ValueError("empty curve")
    tail = curve[-max(1, round(len(curve) * fraction)):]
    return sum(value for _, value in tail) / len(tail)


@torch.no_grad()
def heldout_terms(model: ModelRef, loss: PerceptualLoss, photos: Sequence[Photo], *, mode: str = "eval"
                  ) -> dict[str, float]:
    """Mean perceptual-loss terms of the model's outputs on held-out photos, each stylized alone in ``mode``."""
    net = as_loaded(model).net
    contents = [p.tensor for p in photos]
    outputs = [forward(net, x, mode) for x in contents]
    return evaluate_terms(loss, outputs, contents)


class _InstanceStatistics(nn.Module):
    """Instance normalization with the affine of the batch-norm layer it replaces."""

    def __init__(self, batch_norm: nn.BatchNorm2d) -> None:
        super().__init__()
        self.eps = batch_norm.eps
        self.weight = batch_norm.weight
        self.bias = batch_norm.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


def instance_norm_twin(net: nn.Module) -> nn.Module:
    """A copy of ``net`` whose batch-norm layers normalize each image by its own statistics (same γ, β)."""
    twin = copy.deepcopy(net)
    for module in list(twin.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, child_name, _InstanceStatistics(child))
    return twin.eval()


@torch.no_grad()
def batch_one_instance_norm_check(model: ModelRef, photos: Sequence[Photo], *, dtype: torch.dtype = torch.float64
                                  ) -> dict[str, float]:
    """Batch norm's three faces on the same photos, each photo alone: train mode (its own batch-of-one
    statistics), the same network with instance norm in every BN layer, and eval mode (running statistics).

    Returns the worst max |Δ| of train-mode-at-batch-1 against the IN twin (zero up to rounding if the remark
    holds) and of eval mode against the IN twin (the gap eval mode opens), both also relative to the output's
    largest value.
    """
    loaded = as_loaded(model)
    net = copy.deepcopy(loaded.net).to(dtype)
    twin = instance_norm_twin(net)
    worst_train = worst_eval = scale = 0.0
    for photo in photos:
        x = photo.tensor.to(dtype)
        reference = twin(x)
        scale = max(scale, float(reference.abs().max()))
        worst_train = max(worst_train, diff_stats(forward(net, x, "train"), reference)[0])
        worst_eval = max(worst_eval, diff_stats(forward(net, x, "eval"), reference)[0])
    scale = scale or 1.0
    return {"train_batch1_vs_in_max_abs": worst_train, "train_batch1_vs_in_relative": worst_train / scale,
            "eval_vs_in_max_abs": worst_eval, "eval_vs_in_relative": worst_eval / scale}


def batch_mate_sensitivity(model: ModelRef, target: Photo, companions: Mapping[str, torch.Tensor]
                           ) -> dict[str, float]:
    """Worst change of the target's output when it shares a batch (the default plans), relative to the output's
    largest value, per forward mode; 0 means batch-independent."""
    rows = measure_independence(model, target, companions, modes=("eval", "train"))
    result: dict[str, float] = {}
    for mode in ("eval", "train"):
        picked = [r for r in rows if r.mode.startswith(mode)]
        result[f"{mode}_relative_max"] = max(r.max_abs / (r.output_max or 1.0) for r in picked)
    return result


def intensity_sensitivity(model: ModelRef, photo: Photo) -> dict[str, float]:
    """How much the output moves when the photo is brightened/darkened (``A + b``) or its contrast scaled
    (``a·A``): the worst relative max |Δ| of each kind over the report's standard changes, in eval mode."""
    rows = contrast_sensitivity(model, photo, DEFAULT_TRANSFORMS)
    brightness = [r.relative_max for r in rows if r.a == 1.0 and r.b != 0.0]
    contrast = [r.relative_max for r in rows if r.b == 0.0 and r.a != 1.0]
    return {"brightness_relative_max": max(brightness), "contrast_relative_max": max(contrast),
            "any_relative_max": max(r.relative_max for r in rows)}


def sn_weight_history(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[int, dict[str, float]]]]]:
    """``{layer: {"mean"|"var": [(step, {"in": w, "ln": w, "bn": w}), ...]}}`` from a switchable-norm run log."""
    history: dict[str, dict[str, list[tuple[int, dict[str, float]]]]] = {}
    for record in records:
        for layer, weights in (record.get("sn_weights") or {}).items():
            for kind in ("mean", "var"):
                history.setdefault(layer, {}).setdefault(kind, []).append((int(record["step"]), dict(weights[kind])))
    return history


def median_seconds(function: Any, repeats: int = 7) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
