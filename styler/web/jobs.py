"""The bounded inference pool: a fixed number of worker threads and a fixed number of waiting places.

Why threads in one process: every model is then loaded once and shared (ONNX Runtime and torch release the GIL
while they compute), and the memory a burst of requests can take is bounded by the pool, not by the clients.
Why a count of places instead of an executor's own queue: an executor queue never refuses, so a burst would wait
forever; here a request either gets a place at once or is told the server is busy (503), and its place is given
back only when its job has really finished, even if the client left meanwhile (a cancelled request must not let
more jobs in than there are places).

Why priorities: the page asks for a thumbnail of every model when it opens, and the first use of a model can take
seconds (an export to ONNX); a user's own photo must not wait behind them, so background jobs (thumbnails) run
only when no foreground job (a photo, the Norms view) is waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["Busy", "JobPool", "Place", "FOREGROUND", "BACKGROUND"]

T = TypeVar("T")

#: Job priorities: lower runs first.
FOREGROUND, BACKGROUND = 0, 1


class Busy(Exception):
    """Every worker is busy and every waiting place is taken."""


class Place:
    """One reserved place in the pool, released exactly once: by its job when the job ends, or, when no job was
    started with it (the request failed before, or was cancelled), by :meth:`abandon`."""

    def __init__(self, pool: JobPool) -> None:
        self._pool = pool
        self._released = False
        self.running = False  # a job owns the place now; only the job releases it
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._pool._give_back()

    def abandon(self) -> None:
        """Give the place back unless a job holds it (the request's ``finally``)."""
        if not self.running:
            self.release()


class _Workers:
    """Threads taking jobs from one priority queue (lowest priority first, then first come, first served)."""

    def __init__(self, count: int) -> None:
        self._queue: queue.PriorityQueue[tuple[float, int, Future[Any] | None, Callable[[], Any] | None]] = (
            queue.PriorityQueue())
        self._order = itertools.count()
        self._threads = [threading.Thread(target=self._work, name=f"styler-worker-{i}", daemon=True)
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((priority, next(self._order), future, fn))
        return future

    def _work(self) -> None:
        while True:
            _, _, future, fn = self._queue.get()
            if future is None or fn is None:  # the stop signal, queued behind every job
                return
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the awaiting request, which answers for it
                future.set_exception(exc)

    def stop(self) -> None:
        for _ in self._threads:
            self._queue.put((math.inf, next(self._order), None, None))


class JobPool:
    """``workers`` threads; at most ``workers + queue`` jobs reserved, running or waiting, at any time."""

    def __init__(self, workers: int, queue: int) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self._workers = _Workers(workers)
        self._lock = threading.Lock()
        self._taken = 0
        self.refused = 0
        self.released = 0

    @property
    def in_flight(self) -> int:
        """Places taken now (jobs running, waiting, or requests still reading their upload)."""
        return self._taken

    def reserve(self) -> Place:
        """A place, or :class:`Busy` at once when none is free (the caller answers 503)."""
        with self._lock:
            if self._taken >= self.capacity:
                self.refused += 1
                raise Busy(f"the server is busy ({self._taken} requests in progress); try again in a moment")
            self._taken += 1
        return Place(self)

    def _give_back(self) -> None:
        with self._lock:
            self._taken -= 1
            self.released += 1

    async def run(self, place: Place, fn: Callable[..., T], *args: Any, priority: int = FOREGROUND) -> T:
        """Run ``fn(*args)`` on a worker; ``place`` is released when ``fn`` returns or raises (one job per place).

        The job is shielded from the request's cancellation: a client that disconnects does not stop a job that is
        already queued (it would then never release its place); the job finishes and its result is dropped.
        """
        def job() -> T:
            try:
                return fn(*args)
            finally:
                place.release()

        future = self._workers.submit(priority, job)
        place.running = True
        return await asyncio.shield(asyncio.wrap_future(future))

    def stats(self) -> dict[str, int]:
        return {"workers": self.workers, "capacity": self.capacity, "in_flight": self._taken,
                "released": self.released, "refused": self.refused}

    def shutdown(self) -> None:
        """Let the workers finish the queued jobs, then stop (called when the server stops)."""
        self._workers.stop()
