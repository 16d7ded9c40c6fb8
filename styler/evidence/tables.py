"""How measured rows are written down: aligned text or Markdown tables, and JSON-safe dicts.

One formatter for every number keeps the CLI's tables, the report's tables and its prose in agreement: a value
printed by ``styler independence`` reads the same in ``report.md``. Torch-free, so it can be used anywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection, Iterable, Sequence
from typing import Any, Protocol

__all__ = ["format_value", "format_table", "jsonable", "row_dict", "rows_to_dicts"]


class _Row(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


def format_value(value: Any) -> str:
    """A table cell: ``yes``/``NO`` for verdicts (the failure shouts), ``∞`` for identical outputs' PSNR, and floats
    in scientific notation when they are tiny or huge (differences near 1e-6 must not print as 0.00)."""
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if value == 0.0:
            return "0"
        if abs(value) >= 1000 or abs(value) < 1e-2:
            return f"{value:.2e}"
        return f"{value:.3g}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], markdown: bool = False) -> str:
    """A plain-text (aligned) or Markdown table of already chosen columns."""
    cells = [[format_value(v) for v in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as strings: strict JSON has no infinity, and PSNR is ``inf`` whenever the
    outputs are identical, which is exactly the case the measurements exist to show."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return value


def row_dict(row: Any, exclude: Collection[str] = ()) -> dict[str, Any]:
    """The fields of a measurement dataclass as JSON-safe values, leaving out ``exclude`` (kept output tensors)."""
    return {f.name: jsonable(getattr(row, f.name)) for f in dataclasses.fields(row) if f.name not in exclude}


def rows_to_dicts(rows: Iterable[_Row]) -> list[dict[str, Any]]:
    return [row.to_dict() for row in rows]
