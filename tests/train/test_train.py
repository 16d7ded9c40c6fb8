"""Training pipeline: end-to-end CLI runs per norm, exact resume, Ctrl-C checkpoints, bad datasets, NaN guard,
and the Trainer's parts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from helpers import base_config
from styler.cli import cli
from styler.errors import DatasetError, StylerError, TrainingError
from styler.io.modelfile import load_model
from styler.nn.norms import NormSpec
from styler.train.data import BatchSchedule, PhotoFolder
from styler.train.runlog import read_log
from styler.train.signals import TrainingInterrupted
from styler.train.trainer import Trainer, train

TINY = ["--width", "8", "--residual-blocks", "1", "--image-size", "64", "--batch-size", "2", "--style-size", "96",
        "--log-interval", "1", "--quiet"]


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["in", "bn", "gn", "ln", "sn", "none"])
def test_cli_train_every_norm(tmp_path, photos, style, vgg_weights, norm):
    out = tmp_path / f"m_{norm}.pth"
    args = ["train", "-s", str(style), "-d", str(photos), "-o", str(out), "--norm", norm, "-i", "3",
            "--preview-interval", "3", "--checkpoint-interval", "2", "--vgg-weights", str(vgg_weights), *TINY]
    if norm == "gn":
        args += ["--groups", "4"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "model written to" in result.output
    model = load_model(out)
    assert model.arch.norm.kind == load_model(out).metadata["norm"]["kind"]
    assert model.arch.norm.kind == NormSpec.parse(norm).kind  # the requested norm, not just self-consistent
    if norm == "gn":
        assert model.arch.norm.groups == 4
    assert model.metadata["training"]["steps"] == 3
    assert model.metadata["loss_network"]["sha256"].startswith("927a3f71")
    records = [json.loads(line) for line in (tmp_path / f"m_{norm}.run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor([r["loss"], r["content"], r["style"], r["tv"]])).all() for r in records)
    preview = tmp_path / f"m_{norm}.run" / "previews" / "step_000003.png"
    assert preview.is_file() and Image.open(preview).size[0] > 64
    assert (tmp_path / f"m_{norm}.loss.png").is_file()
    assert (tmp_path / f"m_{norm}.run" / "checkpoint.pth").is_file()
    if norm in ("bn",):
        # running statistics were tracked during training and stored in the model file
        bn = model.net.encoder[0].norm
        assert int(bn.num_batches_tracked) == 3 and not torch.equal(bn.running_var, torch.ones_like(bn.running_var))


@pytest.mark.parametrize("amp", [False, True])
def test_resume_reproduces_uninterrupted_run(tmp_path, photos, style, vgg_weights, amp):
    """Stop after 3 of 6 steps, resume, and end with the same weights as an uninterrupted run (CPU; with amp, bf16
    on CPUs that have it, and the resumed half keeps the precision of the first)."""
    straight = base_config(tmp_path / "a", photos, style, vgg_weights, norm="bn", amp=amp)
    train(straight)
    interrupted = base_config(tmp_path / "b", photos, style, vgg_weights, norm="bn", amp=amp)
    with pytest.raises(TrainingInterrupted) as info:
        train(interrupted, stop_after=3)
    assert info.value.step == 3
    train(interrupted, resume=info.value.checkpoint)
    a = load_model(straight.output).net.state_dict()
    b = load_model(interrupted.output).net.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)
    # and the resumed log continues the original one without duplicates
    steps = [json.loads(line)["step"] for line in interrupted.log_path.read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_refuses_changed_settings_but_allows_more_iterations(tmp_path, photos, style, vgg_weights):
    config = base_config(tmp_path, photos, style, vgg_weights, iterations=2)
    with pytest.raises(TrainingInterrupted) as info:
        train(config, stop_after=1)
    changed = base_config(tmp_path, photos, style, vgg_weights, lr=0.5)
    with pytest.raises(StylerError, match="cannot change these settings when resuming: --lr"):
        train(changed, resume=info.value.checkpoint, explicit={"lr"})
    longer = base_config(tmp_path, photos, style, vgg_weights, iterations=3)
    result = train(longer, resume=info.value.checkpoint, explicit={"iterations"})
    assert result.steps == 3


def test_a_learning_rate_drop_added_on_resume_equals_one_planned_from_the_start(tmp_path, photos, style,
                                                                                vgg_weights):
    """The schedule is a function of the step: a run that stops at step 3 and resumes with ``--lr-drop 3:0.1``
    ends bit for bit where a run planned with that drop ends, and the log records the rate of every step."""
    planned = base_config(tmp_path / "a", photos, style, vgg_weights, lr_drops=((3, 0.1),))
    train(planned)
    later = base_config(tmp_path / "b", photos, style, vgg_weights)
    with pytest.raises(TrainingInterrupted) as info:
        train(later, stop_after=3)
    dropped = base_config(tmp_path / "b", photos, style, vgg_weights, lr_drops=((3, 0.1),))
    train(dropped, resume=info.value.checkpoint, explicit={"lr_drops"})
    a, b = load_model(planned.output), load_model(dropped.output)
    for key, value in a.net.state_dict().items():
        torch.testing.assert_close(b.net.state_dict()[key], value, rtol=0, atol=1e-6, msg=key)
    assert b.metadata["training"]["lr_drops"] == [[3, 0.1]]
    rates = [json.loads(line)["lr"] for line in dropped.log_path.read_text().splitlines()]
    assert rates == pytest.approx([1e-3] * 3 + [1e-4] * 3)
    # negative control: without the drop the resumed run ends elsewhere
    plain = base_config(tmp_path / "c", photos, style, vgg_weights)
    train(plain)
    differs = [k for k, v in load_model(plain.output).net.state_dict().items()
               if v.is_floating_point() and not torch.allclose(v, a.net.state_dict()[k], rtol=0, atol=1e-6)]
    assert differs


def test_resume_with_epochs_uses_the_checkpoint_dataset(tmp_path, photos, style, vgg_weights):
    """`--resume CKPT --epochs E` takes the dataset and batch size from the checkpoint (6 photos, batch 2)."""
    config = base_config(tmp_path, photos, style, vgg_weights, iterations=2)
    with pytest.raises(TrainingInterrupted) as info:
        train(config, stop_after=1)
    result = CliRunner().invoke(cli, ["train", "--resume", str(info.value.checkpoint), "--epochs", "1", "--quiet"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert load_model(config.output).metadata["training"]["steps"] == 3  # 1 epoch = 6 photos / batch 2


def test_nan_guard_names_the_cause_and_keeps_checkpoint(tmp_path, photos, style, vgg_weights):
    config = base_config(tmp_path, photos, style, vgg_weights, style_weight=1e38, checkpoint_interval=1)
    with pytest.raises(TrainingError, match=r"too high .*--style-weight") as info:
        train(config)
    assert "no checkpoint had been written yet" in str(info.value) or "was kept" in str(info.value)
    assert not Path(config.output).exists()


def test_nan_after_checkpoint_keeps_last_good_one(tmp_path, photos, style, vgg_weights, monkeypatch):
    config = base_config(tmp_path, photos, style, vgg_weights, checkpoint_interval=2)
    import styler.loss.losses as losses

    original = losses.LossTerms.as_floats
    calls = {"n": 0}

    def poisoned(self):
        calls["n"] += 1
        values = original(self)
        if calls["n"] == 4:
            self.total = self.total * float("nan")
            values["loss"] = float("nan")
        return values

    monkeypatch.setattr(losses.LossTerms, "as_floats", poisoned)
    with pytest.raises(TrainingError, match=r"checkpoint .* \(step 2\) was kept"):
        train(config)
    from styler.train.checkpoints import load_checkpoint

    assert load_checkpoint(config.checkpoint_path)["step"] == 2


def test_empty_and_broken_datasets(tmp_path, style, vgg_weights):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        PhotoFolder(empty, 64)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.jpg").write_bytes(b"not a jpeg at all")
    (broken / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("RGB", (80, 80), (40, 40, 40)).save(broken / "flat.png")
    schedule = BatchSchedule(PhotoFolder(broken, 64), 2, seed=0)
    with pytest.raises(DatasetError, match="none of the 3 images"):
        schedule.batch(0)
    result = CliRunner().invoke(cli, ["train", "-s", str(style), "-d", str(empty), "-o", str(tmp_path / "x.pth"),
                                      "--vgg-weights", str(vgg_weights), *TINY])
    assert result.exit_code == 1 and "no images" in result.output


def test_broken_files_are_skipped_and_counted(tmp_path, photos, style, vgg_weights):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for p in sorted(photos.rglob("*.jpg"))[:3]:
        (mixed / p.name).write_bytes(p.read_bytes())
    (mixed / "zz_broken.jpg").write_bytes(b"garbage")
    config = base_config(tmp_path, mixed, style, vgg_weights, iterations=3)
    result = train(config)
    assert result.skipped_images == 1
    assert load_model(config.output).metadata["training"]["skipped_images"] == 1


def test_batch_schedule_is_deterministic_and_reshuffles(photos):
    folder = PhotoFolder(photos, 48)
    a, b = BatchSchedule(folder, 2, seed=3), BatchSchedule(folder, 2, seed=3)
    for step in range(5):
        assert torch.equal(a.batch(step), b.batch(step))
    assert not (a.permutation(0) == a.permutation(1)).all()
    # ranks of a 2-process run see disjoint halves whose union is the single-process batch of 4
    single = BatchSchedule(folder, 4, seed=3).batch(1)
    r0 = BatchSchedule(folder, 2, seed=3, rank=0, world_size=2).batch(1)
    r1 = BatchSchedule(folder, 2, seed=3, rank=1, world_size=2).batch(1)
    assert torch.equal(single[0::2], r0) and torch.equal(single[1::2], r1)


def test_missing_style_and_usage_errors(tmp_path, photos):
    result = CliRunner().invoke(cli, ["train", "-d", str(photos)])
    assert result.exit_code == 2 and "missing --style" in result.output
    result = CliRunner().invoke(cli, ["train", "-s", str(tmp_path / "nope.jpg"), "-d", str(photos)])
    assert result.exit_code == 2 and "style image not found" in result.output


def test_invalid_network_settings_are_user_errors(tmp_path):
    """A group count that does not divide every width is a clear error before any data or VGG is loaded."""
    from styler.train.config import TrainConfig

    common = dict(style="s.jpg", dataset=str(tmp_path), output=str(tmp_path / "m.pth"))
    with pytest.raises(StylerError, match="32 channels are not divisible by 3 groups"):
        TrainConfig(**common, norm="gn", groups=3)
    with pytest.raises(StylerError, match="groups must be >= 1"):
        TrainConfig(**common, norm="gn", groups=0)
    with pytest.raises(StylerError, match="invalid architecture"):
        TrainConfig(**common, width=0)
    assert TrainConfig(**common, norm="gn", groups=16).norm_spec.groups == 16
    style = tmp_path / "style.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(style)
    result = CliRunner().invoke(cli, ["train", "-s", str(style), "-d", str(tmp_path), "--norm", "gn",
                                      "--groups", "3", "-o", str(tmp_path / "m.pth")])
    assert result.exit_code == 1 and "not divisible by 3 groups" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.slow
def test_ctrl_c_writes_checkpoint_and_resume_finishes(tmp_path, photos, style, vgg_weights):
    out = tmp_path / "model.pth"
    args = [sys.executable, "-m", "styler", "train", "-s", str(style), "-d", str(photos), "-o", str(out),
            "-i", "400", "--checkpoint-interval", "0", "--preview-interval", "0",
            "--vgg-weights", str(vgg_weights), *TINY]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = tmp_path / "model.run" / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "checkpoint saved to" in stderr and "--resume" in stderr
    checkpoint = tmp_path / "model.run" / "checkpoint.pth"
    from styler.train.checkpoints import load_checkpoint

    stopped_at = load_checkpoint(checkpoint)["step"]
    assert 2 <= stopped_at < 400
    assert not out.exists()
    resumed = CliRunner().invoke(cli, ["train", "--resume", str(checkpoint), "-i", str(stopped_at + 2), "--quiet"],
                                 catch_exceptions=False)
    assert resumed.exit_code == 0, resumed.output
    assert load_model(out).metadata["training"]["steps"] == stopped_at + 2


def test_native_bf16_detection_reads_cpu_flags(tmp_path):
    from styler.devices import cpu_has_native_bf16

    def cpuinfo(flags: str) -> str:
        path = tmp_path / f"cpuinfo_{len(list(tmp_path.iterdir()))}"
        path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse2 {flags}\n\n")
        return str(path)

    assert cpu_has_native_bf16(cpuinfo("avx512f avx512_vnni amx_tile amx_bf16 amx_int8"))
    assert cpu_has_native_bf16(cpuinfo("avx512f avx512_bf16"))
    assert not cpu_has_native_bf16(cpuinfo("avx512f avx512_vnni"))  # the reference CPU: bf16 would be emulated
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))


@pytest.mark.parametrize("amp", [True, False])
def test_training_precision_follows_the_hardware_and_is_recorded(tmp_path, photos, style, vgg_weights, amp):
    """bf16 autocast only where it is fast (never on a CPU that would emulate it), and the model file says which."""
    from styler.devices import bf16_is_fast

    result = train(base_config(tmp_path, photos, style, vgg_weights, iterations=2, amp=amp))
    precision = load_model(result.model_path).metadata["training"]["precision"]
    expect_bf16 = amp and bf16_is_fast("cpu")
    assert precision.startswith("bf16") == expect_bf16, precision
    assert all(torch.isfinite(torch.tensor(v)) for v in result.final_losses.values())
    assert all(p.dtype == torch.float32 for p in result.net.parameters())  # master weights stay fp32


def test_trainer_builds_everything_on_construction_and_runs(tmp_path, photos, style, vgg_weights):
    """Construction builds the criterion, net, optimizer and run folder; run() trains, logs and writes the model."""
    config = base_config(tmp_path, photos, style, vgg_weights, iterations=2, norm="sn", sn_using_bn=True)
    trainer = Trainer(config)
    assert trainer.current_step == 0 and trainer.last_saved is None
    assert trainer.model is trainer.net and trainer.net.training  # one process: no DDP wrapper
    assert [g["name"] for g in trainer.optimizer.param_groups] == ["weights", "sn_logits"]
    assert trainer.criterion.weights.style == 5.0 and trainer.criterion.lossnet.sha256.startswith("927a3f71")
    assert config.run_path.is_dir() and not config.log_path.exists()
    steps = []
    trainer.on_step = lambda step, values: steps.append(step)
    result = trainer.run()
    assert steps == [1, 2] and result.steps == 2 and trainer.last_saved == 2
    records = read_log(config.log_path)
    assert [r["step"] for r in records] == [1, 2] and "sn_weights" in records[0]
    assert load_model(result.model_path).metadata["training"]["steps"] == 2
