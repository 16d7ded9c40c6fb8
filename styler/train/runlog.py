"""The training log: one JSON record per logged step in ``<run>/log.jsonl``, and what is read back from it.

Why JSON lines: a record is appended with one write, so a run killed mid-write loses at most its last, torn line
(:func:`read_log` skips it), and a resumed run can cut the log back to its checkpoint's step
(:func:`truncate_log`) so the redone steps are not logged twice. Loss curves, the final losses of the model file
and the ablation report (:mod:`styler.evidence.report`) are all read from these records.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["RunLog", "StepWindow", "final_losses", "read_log", "truncate_log"]


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Records of a training log (JSON lines); unreadable lines (e.g. a torn last line) are skipped."""
    records: list[dict[str, Any]] = []
    path = Path(path)
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_log(path: str | os.PathLike[str], step: int) -> None:
    """On resume, drop log records written after the checkpoint's step (they will be redone)."""
    kept = [r for r in read_log(path) if r.get("step", 0) <= step]
    Path(path).write_text("".join(json.dumps(r) + "\n" for r in kept))


def final_losses(records: list[dict[str, Any]], last: int = 5) -> dict[str, float]:
    """Mean loss terms over the last ``last`` records: one record is too noisy to compare two models by."""
    tail = records[-last:]
    if not tail:
        return {}
    return {k: sum(r[k] for r in tail) / len(tail) for k in ("loss", "content", "style", "tv") if k in tail[0]}


class RunLog:
    """The JSON-lines log file of one run (written by rank 0 only)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def prepare(self, resumed_at: int | None) -> None:
        """A fresh run starts a fresh log; a resumed one keeps the records up to its checkpoint's step."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            return
        if resumed_at is None:
            self.path.unlink()
        else:
            truncate_log(self.path, resumed_at)

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def records(self) -> list[dict[str, Any]]:
        return read_log(self.path)


class StepWindow:
    """The loss terms and image count of the steps since the last record.

    Why a window: a record reports the mean of every step since the previous one (not a single noisy step), and
    throughput over the same span.
    """

    def __init__(self, start: float) -> None:
        self.start = start
        self.values: list[dict[str, float]] = []
        self.images = 0

    def add(self, values: dict[str, float], images: int) -> None:
        self.values.append(values)
        self.images += images

    def means(self) -> dict[str, float]:
        return {k: sum(v[k] for v in self.values) / len(self.values) for k in self.values[0]}

    def images_per_second(self, now: float) -> float:
        return self.images / max(now - self.start, 1e-9)

    def reset(self, now: float) -> None:
        self.start, self.values, self.images = now, [], 0
