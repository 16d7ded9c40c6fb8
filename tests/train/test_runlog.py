"""The training log and the stop flag: torn lines, truncation on resume, final losses, signals between steps."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from styler.train.runlog import RunLog, StepWindow, final_losses, read_log, truncate_log
from styler.train.signals import StopFlag, TrainingInterrupted


def _write(path: Path, steps: list[int], torn: bool = False) -> None:
    lines = [json.dumps({"step": s, "loss": float(s), "content": 1.0, "style": 2.0, "tv": 0.5}) for s in steps]
    path.write_text("\n".join(lines) + "\n" + ('{"step": 9, "lo' if torn else ""))


def test_read_log_skips_a_torn_last_line(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    assert read_log(log) == []  # no log yet
    _write(log, [1, 2, 3], torn=True)
    assert [r["step"] for r in read_log(log)] == [1, 2, 3]


def test_resume_truncates_and_a_fresh_run_starts_over(tmp_path: Path) -> None:
    log = tmp_path / "run" / "log.jsonl"
    log.parent.mkdir()
    _write(log, [1, 2, 3, 4])
    RunLog(log).prepare(resumed_at=2)
    assert [r["step"] for r in read_log(log)] == [1, 2]
    RunLog(log).append({"step": 3})
    assert [r["step"] for r in RunLog(log).records()] == [1, 2, 3]
    truncate_log(log, 0)
    assert read_log(log) == []
    RunLog(log).prepare(resumed_at=None)
    assert not log.exists()
    RunLog(tmp_path / "new" / "log.jsonl").prepare(resumed_at=None)  # creates the folder
    assert (tmp_path / "new").is_dir()


def test_final_losses_average_the_last_records() -> None:
    records = [{"step": s, "loss": float(s), "content": 1.0, "style": 2.0, "tv": 0.5, "lr": 1e-3} for s in range(1, 8)]
    assert final_losses(records) == {"loss": 5.0, "content": 1.0, "style": 2.0, "tv": 0.5}  # steps 3..7
    assert final_losses(records, last=1)["loss"] == 7.0
    assert final_losses([]) == {}


def test_step_window_means_and_throughput() -> None:
    window = StepWindow(start=10.0)
    window.add({"loss": 1.0}, images=4)
    window.add({"loss": 3.0}, images=4)
    assert window.means() == {"loss": 2.0}
    assert window.images_per_second(now=12.0) == 4.0
    window.reset(now=12.0)
    assert (window.values, window.images, window.start) == ([], 0, 12.0)


def test_stop_flag_turns_signals_into_a_flag_and_restores_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopFlag() as stop:
        assert not stop.raised
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.raised and stop.signal == signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C stops at once
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before


def test_interruption_names_the_checkpoint_and_how_to_resume() -> None:
    exc = TrainingInterrupted(7, Path("run/checkpoint.pth"))
    assert exc.step == 7 and "styler train --resume run/checkpoint.pth" in str(exc)
