"""The norm studies' measurements (styler.evidence.studies): curves in images seen, thresholds, Ulyanov's batch-of-one
remark, intensity and batch-mate sensitivity, and SN weight histories, each with a control that must fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import SIZE, make_tiny_model, smooth_photo
from styler.evidence.photos import Photo
from styler.evidence.studies import (
    batch_mate_sensitivity,
    batch_one_instance_norm_check,
    images_to_reach,
    instance_norm_twin,
    intensity_sensitivity,
    loss_curve,
    sn_weight_history,
    tail_mean,
)
from styler.io.modelfile import load_model

pytestmark = pytest.mark.usefixtures("single_thread")


def _photo(seed: int) -> Photo:
    array = smooth_photo(seed, SIZE)
    return Photo(name=f"p{seed}", tensor=torch.from_numpy(array).permute(2, 0, 1)[None].float())


def test_loss_curve_counts_images_and_smooths_over_a_window_of_images() -> None:
    records = [{"step": s, "loss": float(100 - s)} for s in range(10, 60, 10)]
    at_batch_2 = loss_curve(records, 2, window_images=1)
    assert [images for images, _ in at_batch_2] == [20, 40, 60, 80, 100]
    assert [value for _, value in at_batch_2] == [90, 80, 70, 60, 50]
    smoothed = loss_curve(records, 2, window_images=40)  # each point averages itself and the one before
    assert smoothed[1] == (40, 85.0) and smoothed[-1] == (100, 55.0)
    assert images_to_reach(at_batch_2, 70) == 60
    assert images_to_reach(at_batch_2, 49.9) is None  # never reached
    assert tail_mean(at_batch_2, 0.4) == 55.0
    with pytest.raises(ValueError):
        tail_mean([])


def test_batch_norm_at_batch_one_in_train_mode_is_instance_norm(tmp_path: Path) -> None:
    bn = load_model(make_tiny_model(tmp_path / "bn.safetensors", "bn"))
    photos = [_photo(i) for i in range(3)]
    check = batch_one_instance_norm_check(bn, photos)
    assert check["train_batch1_vs_in_relative"] < 1e-10
    # Control: eval mode uses the running statistics, which the tiny model warmed up on other images.
    assert check["eval_vs_in_relative"] > 1e-2
    twin = instance_norm_twin(bn.net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in twin.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bn.net.modules())  # the model itself is untouched


def test_intensity_and_batch_mate_sensitivity_separate_instance_from_batch_norm(tmp_path: Path) -> None:
    target = _photo(0)
    mates = {f"m{i}": _photo(i).tensor for i in (1, 2, 3)}
    instance = load_model(make_tiny_model(tmp_path / "in.safetensors", "in"))
    batch = load_model(make_tiny_model(tmp_path / "bn.safetensors", "bn"))
    in_intensity, bn_intensity = intensity_sensitivity(instance, target), intensity_sensitivity(batch, target)
    assert in_intensity["brightness_relative_max"] < 1e-3 and in_intensity["contrast_relative_max"] < 1e-2
    assert bn_intensity["brightness_relative_max"] > 1e-2 and bn_intensity["contrast_relative_max"] > 1e-2
    in_mates, bn_mates = batch_mate_sensitivity(instance, target, mates), batch_mate_sensitivity(batch, target, mates)
    assert in_mates["train_relative_max"] < 1e-5 and in_mates["eval_relative_max"] < 1e-5  # fp32 batched-conv rounding
    assert bn_mates["eval_relative_max"] < 1e-5 and bn_mates["train_relative_max"] > 1e-2


def test_sn_weight_history_follows_the_log() -> None:
    weights = [{"mean": {"in": 0.2 + 0.1 * k, "ln": 0.4, "bn": 0.4 - 0.1 * k}, "var": {"in": 0.5, "ln": 0.5}}
               for k in range(3)]
    records = [{"step": 10 * (k + 1), "loss": 1.0, "sn_weights": {"encoder.0.norm": w}} for k, w in enumerate(weights)]
    records.insert(1, {"step": 15, "loss": 1.0})  # a record without weights (not an SN run) is skipped
    history = sn_weight_history(records)
    assert [s for s, _ in history["encoder.0.norm"]["mean"]] == [10, 20, 30]
    assert history["encoder.0.norm"]["mean"][-1][1]["bn"] == pytest.approx(0.2)
    assert sn_weight_history([{"step": 1, "loss": 2.0}]) == {}
