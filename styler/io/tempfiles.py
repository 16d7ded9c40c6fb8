"""styler's temporary files: how they are named, and removing the ones a killed process left behind.

Every file styler writes goes to a hidden temporary name beside its target first and is renamed into place, so a
reader never sees half a file. A process that dies without running its clean-up (``kill -9``, power loss, OOM
killer) leaves that temporary file behind. Two namings exist:

* ``.NAME.PID.tmp`` (images, :func:`temp_path`): the writer's process id is in the name, so a leftover is recognised
  as *unowned* when no process with that id is alive.
* ``.NAME.XXXXXXXX.tmp`` (model files and checkpoints, written through :func:`tempfile.mkstemp`):
  no process id, so a leftover is one that was last modified before this process started.

:func:`clean_stale_temp_files` removes only files that match one of these patterns exactly, are regular files (not
symlinks) owned by the current user, and are stale by the rule of their naming; anything else in the folder is left
alone. Runs and output folders call it when they open a folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PROCESS_STARTED", "temp_path", "pid_alive", "clean_stale_temp_files", "IMAGE_TEMP", "ARCHIVE_TEMP"]


def _process_start_time() -> float:
    """Wall-clock start of this process (Linux: from /proc; elsewhere: when this module was imported)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


#: When this process started; a mkstemp-named temporary file last modified before it cannot be one of ours.
PROCESS_STARTED = _process_start_time()

#: ``.NAME.PID.tmp`` where NAME is an image file name (the extensions styler writes).
IMAGE_TEMP = re.compile(r"^\.(?P<name>.+\.(?:jpe?g|png|webp|bmp|tiff?|gif|ppm|pgm))\.(?P<pid>\d+)\.tmp$",
                        re.IGNORECASE)
#: ``.NAME.XXXXXXXX.tmp`` where NAME is a model file or checkpoint (``.pth``, ``.safetensors``) and XXXXXXXX
#: mkstemp's 8 random characters.
ARCHIVE_TEMP = re.compile(r"^\.(?P<name>.+\.(?:pth|safetensors))\.[a-z0-9_]{8}\.tmp$")


def temp_path(target: Path) -> Path:
    """The temporary file an image is written to before it is renamed to ``target``: ``.NAME.PID.tmp`` beside it."""
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive: its files are not ours)."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:  # e.g. a platform without signal 0: be safe, treat it as alive
        return True
    return True


def _is_stale(entry: os.DirEntry, names: Iterable[str] | None) -> bool:
    name = entry.name
    image, archive = IMAGE_TEMP.match(name), ARCHIVE_TEMP.match(name)
    match = image or archive
    if match is None or (names is not None and match.group("name") not in names):
        return False
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or (hasattr(os, "geteuid") and info.st_uid != os.geteuid()):
        return False
    if image is not None:
        return not pid_alive(int(image.group("pid")))
    return info.st_mtime < PROCESS_STARTED


def clean_stale_temp_files(folder: str | os.PathLike, names: Iterable[str] | None = None) -> list[Path]:
    """Remove styler's stale temporary files directly in ``folder``; returns what was removed.

    ``names``: only temporary files of these targets (e.g. ``{"checkpoint.pth"}``); None: of any target. A folder
    that does not exist or cannot be listed is not an error: there is nothing to clean.
    """
    wanted = None if names is None else set(names)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(os.fspath(folder)))
    except OSError:
        return removed
    for entry in entries:
        if _is_stale(entry, wanted):
            with contextlib.suppress(FileNotFoundError, PermissionError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
