"""Names that come from files and end up in file names: reduced to one safe token.

Why: a model file's metadata ``name`` is chosen by whoever wrote the file, and styler puts it into output file names
(``photo_<name>.png``, comparison cells, ...). A name such as ``x/../../victim`` or ``../.bashrc`` must not steer where
an output lands, and a name with control characters or a leading dot must not produce odd or hidden files. Every
consumer reads the model name through :func:`safe_name`, so none of them has to remember to check it.
"""

from __future__ import annotations

import re

__all__ = ["MAX_NAME_LENGTH", "safe_name"]

#: Longest token kept (characters): long enough for any real model name, short enough that ``stem_<name>.ext`` stays
#: far below the 255-byte file-name limit of common file systems.
MAX_NAME_LENGTH = 64

# Anything but letters, digits (Unicode ones too), '_', '.', '+' and '-' becomes '_': path separators, '..' as a
# component, whitespace, control characters, quotes, wildcards and drive colons are all outside that set.
_UNSAFE = re.compile(r"[^\w.+-]")


def safe_name(name: object, fallback: str = "model") -> str:
    """``name`` as a file-name-safe token: no separators, no leading dot or dash, at most :data:`MAX_NAME_LENGTH`.

    Names that are already tokens (``starry_night_in``, ``cpu-quick``) come back unchanged; anything that reduces
    to nothing (``..``, ``///``, ``""``, None) becomes ``fallback``.
    """
    text = "" if name is None else str(name)
    token = _UNSAFE.sub("_", text).lstrip(".-")[:MAX_NAME_LENGTH].rstrip(".")
    return token if token.strip("._-+") else fallback
