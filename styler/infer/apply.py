"""Applying a stylizer to image files: what ``styler apply`` does, as a library call.

:func:`apply_files` expands the inputs, names every output, refuses outputs it must not write, reads the images,
stylizes them in batches and writes the results, and returns one :class:`ApplyRecord` per input. A bad input
never stops the others: it becomes an error record. Callers (the CLI) only print records and pick an exit code.

Where outputs go and which may be written is decided in one place, :class:`OutputPolicy`: an input is never
overwritten, no output is written twice in one run, and an existing file only with ``force``.

This module imports numpy, Pillow and the stylizer only when it runs, so the CLI can read :data:`FORMAT_SUFFIX`
for its option declarations without slowing ``styler apply --help``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from styler.errors import StylerError
from styler.infer.options import StylizeOptions

if TYPE_CHECKING:  # pragma: no cover
    from styler.infer.stylizer import Stylizer, StylizeResult
    from styler.io.images import InputItem, RGBImage

__all__ = ["FORMAT_SUFFIX", "ApplyOptions", "ApplyRecord", "ApplyUsageError", "OutputPolicy", "apply_files"]

#: ``--format`` choices and the suffix each writes.
FORMAT_SUFFIX = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tiff": ".tiff"}
# Sources whose format is a poor output (GIF's 256 colours, grey-only PGM) are written as PNG.
_REMAP_SUFFIX = {".gif": ".png", ".pgm": ".png"}
_STDOUT = "-"  # as styler.io.images.STDIO: write_image sends it to stdout


class ApplyUsageError(StylerError):
    """The inputs do not fit the options (e.g. one output file for a folder); the CLI reports a usage error."""


@dataclass(frozen=True)
class ApplyOptions:
    """Everything :func:`apply_files` does around the stylizer; the ``styler apply`` options of the same names.

    ``output``: the output file of a single input (``-``: stdout). ``out_dir``: write outputs there, keeping the
    folder structure of directory inputs. ``suffix``: photo.jpg → photo<suffix>.jpg (None: ``_<model name>``).
    ``fmt``: a key of :data:`FORMAT_SUFFIX` (None: the input's format; PNG for GIF/PGM and stdout). ``max_pixels``:
    decompression-bomb limit (None: :data:`styler.io.images.DEFAULT_MAX_PIXELS`; 0: none).
    """

    output: str | None = None
    out_dir: str | None = None
    suffix: str | None = None
    fmt: str | None = None
    quality: int = 95
    force: bool = False
    max_pixels: int | None = None
    batch_size: int = 1
    stylize: StylizeOptions = field(default_factory=StylizeOptions)

    def __post_init__(self) -> None:
        if self.output and self.out_dir:
            raise ApplyUsageError("use either -o/--output or --out-dir, not both")


@dataclass
class ApplyRecord:
    """What became of one input: written (``ok``, with size, time, tiling, backend and warnings) or ``error``."""

    input: str
    output: str | None
    status: Literal["ok", "error"]
    error: str | None = None
    size: tuple[int, int] | None = None  # (width, height) as written
    seconds: float | None = None
    tiled: bool | None = None
    backend: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_json(self) -> dict[str, Any]:
        """The record as ``styler apply --json`` lists it under ``results`` (keys in this order)."""
        if not self.ok:
            return {"input": self.input, "output": self.output, "status": self.status, "error": self.error}
        width, height = self.size or (0, 0)
        return {"input": self.input, "output": self.output, "status": self.status, "width": width, "height": height,
                "seconds": round(self.seconds or 0.0, 4), "tiled": self.tiled, "backend": self.backend,
                "warnings": self.warnings}


class OutputPolicy:
    """Names each input's output and decides whether it may be written.

    The suffix defaults to ``_<model name>``; folder and glob expansion skip files that already carry it, so a
    second run does not stylize the first run's outputs.
    """

    def __init__(self, options: ApplyOptions, model_name: str) -> None:
        self.options = options
        self.suffix = f"_{model_name}" if options.suffix is None else options.suffix
        self._inputs: set[str] = set()
        self._written: set[str] = set()

    def is_earlier_output(self, path: Path) -> bool:
        return bool(self.suffix) and path.stem.endswith(self.suffix)

    def protect(self, items: Sequence[InputItem]) -> None:
        """Remember the inputs of this run: no output may overwrite one of them."""
        self._inputs |= {os.path.realpath(i.path) for i in items if not i.is_stdin and i.error is None}

    def path_for(self, item: InputItem) -> str:
        options = self.options
        if options.output:
            return options.output
        if item.is_stdin:
            return _STDOUT
        src = Path(item.path)
        ext = FORMAT_SUFFIX[options.fmt] if options.fmt else _REMAP_SUFFIX.get(src.suffix.lower(), src.suffix or ".png")
        name = f"{src.stem}{self.suffix}{ext}"
        if options.out_dir:
            rel = src.parent.relative_to(item.root) if item.root is not None else Path()
            return str(Path(options.out_dir) / rel / name)
        return str(src.with_name(name))

    def claim(self, item: InputItem) -> tuple[str, str | None]:
        """``(output, None)`` with the output reserved for ``item``, or ``(output, why it may not be written)``."""
        out = self.path_for(item)
        if out == _STDOUT:
            return out, None
        real = os.path.realpath(out)
        if real in self._inputs:
            return out, f"{item.path}: output {out} would overwrite an input; choose --suffix or --out-dir"
        if real in self._written:
            return out, f"{item.path}: output {out} was already written by another input in this run"
        if os.path.exists(out) and not self.options.force:
            return out, f"{item.path}: output {out} exists (use --force to overwrite)"
        self._written.add(real)
        return out, None


RecordFn = Callable[[ApplyRecord], None]


class _Batches:
    """Images waiting for the network, stylized ``batch_size`` at a time; every outcome becomes a record."""

    def __init__(self, stylizer: Stylizer, options: ApplyOptions, on_record: RecordFn | None) -> None:
        self.stylizer, self.options, self._on_record = stylizer, options, on_record
        self.records: list[ApplyRecord] = []
        self._pending: list[tuple[InputItem, str, RGBImage]] = []

    def _emit(self, record: ApplyRecord) -> None:
        self.records.append(record)
        if self._on_record is not None:
            self._on_record(record)

    def fail(self, item: InputItem, message: str, output: str | None = None) -> None:
        self._emit(ApplyRecord(item.path, output, "error", message))

    def add(self, item: InputItem, output: str, image: RGBImage) -> None:
        self._pending.append((item, output, image))
        if len(self._pending) >= self.options.batch_size:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            results = self.stylizer.stylize_many([image for _, _, image in pending], self.options.stylize,
                                                 batch_size=self.options.batch_size)
        except StylerError as exc:
            for item, out, _ in pending:
                self.fail(item, f"{item.path}: {exc}", out)
            return
        except (RuntimeError, MemoryError, ValueError) as exc:  # e.g. out of memory in the network
            for item, out, _ in pending:
                self.fail(item, f"{item.path}: {type(exc).__name__}: {exc}", out)
            return
        for (item, out, image), result in zip(pending, results):
            self._write(item, out, image, result)

    def _write(self, item: InputItem, out: str, image: RGBImage, result: StylizeResult) -> None:
        from styler.io.images import write_image

        options = self.options
        try:
            notes = list(image.warnings) + write_image(result.image.rgb, out, alpha=result.image.alpha,
                                                       fmt=options.fmt or ("png" if out == _STDOUT else None),
                                                       quality=options.quality)
        except StylerError as exc:
            self.fail(item, str(exc), out)
            return
        height, width = result.image.rgb.shape[:2]
        self._emit(ApplyRecord(item.path, out, "ok", size=(width, height), seconds=result.seconds,
                               tiled=result.tiled, backend=result.backend, warnings=notes))


def _check_expanded(inputs: Sequence[str], items: Sequence[InputItem], options: ApplyOptions) -> None:
    if options.output and len(items) != 1:
        raise ApplyUsageError(f"-o/--output takes a single input, but {' '.join(inputs)} expands to {len(items)} "
                              "files")
    if any(item.is_stdin for item in items) and not options.output and len(items) > 1:
        raise ApplyUsageError("stdin ('-') cannot be mixed with other inputs; stylize it in a call of its own")


def apply_files(inputs: Sequence[str], stylizer: Stylizer, options: ApplyOptions | None = None, *,
                on_start: Callable[[int], None] | None = None, on_record: RecordFn | None = None
                ) -> list[ApplyRecord]:
    """Stylize files, directories (recursive), glob patterns or ``-`` (stdin); one record per input.

    Records come in the order inputs finish: one refused or unreadable comes before the inputs of the batch it would
    have joined (with ``batch_size`` 1, that is the input order).

    ``on_start(total)`` is called once the inputs are expanded, ``on_record(record)`` as each input finishes (for
    progress and messages while a long run goes on). Raises :class:`ApplyUsageError` before anything is read when
    the expanded inputs do not fit the options.
    """
    from styler.io.images import DEFAULT_MAX_PIXELS, expand_inputs, read_image

    options = options or ApplyOptions()
    policy = OutputPolicy(options, stylizer.name)
    items = expand_inputs(inputs, skip=policy.is_earlier_output)
    _check_expanded(inputs, items, options)
    policy.protect(items)
    if on_start is not None:
        on_start(len(items))
    batches = _Batches(stylizer, options, on_record)
    limit = DEFAULT_MAX_PIXELS if options.max_pixels is None else options.max_pixels
    for item in items:
        if item.error is not None:
            batches.fail(item, item.error)
            continue
        out, refusal = policy.claim(item)
        if refusal is not None:
            batches.fail(item, refusal, out)
            continue
        try:
            image = read_image(item.path, max_pixels=limit)
        except StylerError as exc:
            batches.fail(item, str(exc), out)
            continue
        batches.add(item, out, image)
    batches.flush()
    return batches.records
