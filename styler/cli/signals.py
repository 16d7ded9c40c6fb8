"""SIGTERM handled like Ctrl-C by every command: exit code 130, temporary files removed.

Why: ``kill``, ``timeout``, systemd, Docker and CI runners stop a process with SIGTERM, whose default action ends it
at once: no ``finally`` runs, so a half-written ``.NAME.PID.tmp`` stays behind, and the exit status is 143 where the
README promises 130 for an interrupted command. Raising :class:`KeyboardInterrupt` from the handler makes SIGTERM
take the path Ctrl-C takes: clean-up code runs while the exception unwinds, and :func:`styler.cli.main` reports
"Interrupted." with 130. Training replaces the handler with its own while it runs (:class:`styler.train.signals.
StopFlag`: finish the step, write a checkpoint) and puts this one back afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypeVar

__all__ = ["terminate_like_interrupt", "sigterm_as_interrupt", "handles_sigterm"]

F = TypeVar("F", bound=Callable[..., Any])


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def terminate_like_interrupt() -> bool:
    """Make SIGTERM raise :class:`KeyboardInterrupt` in the main thread; returns whether the handler is installed.

    A handler somebody else chose (an embedding application's, or SIG_IGN inherited from a parent that wants this
    process to survive SIGTERM) is left alone: only the default action is replaced. Idempotent; a no-op outside the
    main thread, where Python cannot install signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    current = signal.getsignal(signal.SIGTERM)
    if current is _interrupt:
        return True
    if current is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGTERM, _interrupt)
    return True


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """:func:`terminate_like_interrupt` for the duration of a block, the previous handler restored afterwards.

    Why restore: commands also run inside other programs (tests call :func:`styler.cli.main` in-process), which
    should get their own SIGTERM behaviour back once the command returns.
    """
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    installed = previous is not _interrupt and terminate_like_interrupt()
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def handles_sigterm(command: F) -> F:
    """Decorator for a command's function: it runs under :func:`sigterm_as_interrupt`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with sigterm_as_interrupt():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
