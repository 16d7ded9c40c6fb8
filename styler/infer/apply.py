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
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from styler.errors import StylerError
from styler.infer.options import StylizeOptions

if TYPE_CHECKING:  # pragma: no cover
    from styler.infer.stylizer import Stylizer, StylizeResult
    from styler.io.images import InputItem, RGBImage

__all__ = ["FORMAT_SUFFIX", "ApplyOptions", "ApplyRecord", "ApplyUsageError", "OutputClaim", "OutputPolicy",
           "apply_files"]

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


class OutputClaim(NamedTuple):
    """An output as :meth:`OutputPolicy.claim_output` decided it: the name shown to the user, the resolved path
    written, and why it may not be written (None: reserved for this input)."""

    shown: str
    path: str
    refusal: str | None


class OutputPolicy:
    """Names each input's output and decides whether it may be written.

    The suffix defaults to ``_<model name>``; folder and glob expansion skip files that already carry it, so a
    second run does not stylize the first run's outputs. The model name comes from a file, so it is reduced to a
    file-name-safe token (:func:`styler.io.names.safe_name`) here as well as where it is read.

    Every check runs on the resolved path (symlinks and ``..`` resolved), and that resolved path is what gets
    written: ``--out-dir new/../keep`` is ``keep``, for the exists check as for the write. An output must land in the
    folder it was meant for (``--out-dir``, or the input's own folder); a name that would leave it is refused.
    """

    def __init__(self, options: ApplyOptions, model_name: str) -> None:
        from styler.io.names import safe_name

        self.options = options
        self.suffix = f"_{safe_name(model_name)}" if options.suffix is None else options.suffix
        self._inputs: set[str] = set()
        self._written: set[str] = set()
        self._cleaned: set[str] = set()

    def is_earlier_output(self, path: Path) -> bool:
        return bool(self.suffix) and path.stem.endswith(self.suffix)

    def protect(self, items: Sequence[InputItem]) -> None:
        """Remember the inputs of this run: no output may overwrite one of them."""
        self._inputs |= {os.path.realpath(i.path) for i in items if not i.is_stdin and i.error is None}

    def _folder_and_name(self, item: InputItem) -> tuple[Path, str]:
        """The folder an input's output belongs in and its file name (before any check)."""
        options = self.options
        src = Path(item.path)
        ext = FORMAT_SUFFIX[options.fmt] if options.fmt else _REMAP_SUFFIX.get(src.suffix.lower(), src.suffix or ".png")
        name = f"{src.stem}{self.suffix}{ext}"
        if options.out_dir:
            rel = src.parent.relative_to(item.root) if item.root is not None else Path()
            return Path(options.out_dir) / rel, name
        return src.parent, name

    def path_for(self, item: InputItem) -> str:
        """The output of ``item`` as the user would spell it (``-o``, ``--out-dir``/name, or beside the input)."""
        if self.options.output:
            return self.options.output
        if item.is_stdin:
            return _STDOUT
        folder, name = self._folder_and_name(item)
        return str(folder / name)

    def claim(self, item: InputItem) -> tuple[str, str | None]:
        """``(output, None)`` with the output reserved for ``item``, or ``(output, why it may not be written)``."""
        claim = self.claim_output(item)
        return claim.shown, claim.refusal

    def claim_output(self, item: InputItem) -> OutputClaim:
        """Decide ``item``'s output: where it is written (resolved) and whether it may be."""
        shown = self.path_for(item)
        if shown == _STDOUT:
            return OutputClaim(shown, shown, None)
        target = _resolve(shown)
        refusal = self._placement_refusal(item, shown, target) or self._refusal(item, shown, target)
        if refusal is None:
            self._written |= {str(target), os.path.realpath(target)}
            self._clean_folder(target.parent)
        return OutputClaim(shown, str(target), refusal)

    def _placement_refusal(self, item: InputItem, shown: str, target: Path) -> str | None:
        """Why an output named from the input and the suffix would leave the folder it belongs in, if it would."""
        if self.options.output:
            return None  # -o names the file itself
        folder, name = self._folder_and_name(item)
        if os.sep in name or (os.altsep and os.altsep in name) or name in (".", ".."):
            return f"{item.path}: output name {name!r} is not a plain file name (check --suffix)"
        base = _resolve(folder)
        if not _inside(target.parent, base):
            where = "--out-dir " + str(self.options.out_dir) if self.options.out_dir else "the input's folder"
            return f"{item.path}: output {shown} resolves to {target}, outside {where}; refused"
        return None

    def _refusal(self, item: InputItem, shown: str, target: Path) -> str | None:
        real = os.path.realpath(target)
        if real in self._inputs:
            return f"{item.path}: output {shown} would overwrite an input; choose --suffix or --out-dir"
        if str(target) in self._written or real in self._written:
            return f"{item.path}: output {shown} was already written by another input in this run"
        if target.is_dir():
            return (f"{item.path}: output {shown} is a directory; name a file to write (or use --out-dir "
                    f"{shown} to write into it)")
        if os.path.lexists(target) and not self.options.force:
            return f"{item.path}: output {shown} exists (use --force to overwrite)"
        return None

    def _clean_folder(self, folder: Path) -> None:
        """Remove temporary images that killed earlier runs left in an output folder (once per folder)."""
        key = str(folder)
        if key not in self._cleaned:
            self._cleaned.add(key)
            from styler.io.tempfiles import clean_stale_temp_files

            clean_stale_temp_files(folder)


def _resolve(path: str | os.PathLike) -> Path:
    """``path`` with its folder fully resolved (symlinks, ``..``) and its last component kept as it is.

    Why not resolve the last component too: if the output name is an existing symlink, ``--force`` replaces the
    link, never the file it points to, so the link is what the checks must look at.
    """
    path = Path(path)
    return Path(os.path.realpath(path.parent)) / path.name


def _inside(path: Path, folder: Path) -> bool:
    try:
        return os.path.commonpath([path, folder]) == str(folder)
    except ValueError:  # different drives
        return False


RecordFn = Callable[[ApplyRecord], None]


class _Batches:
    """Images waiting for the network, stylized ``batch_size`` at a time; every outcome becomes a record."""

    def __init__(self, stylizer: Stylizer, options: ApplyOptions, on_record: RecordFn | None) -> None:
        self.stylizer, self.options, self._on_record = stylizer, options, on_record
        self.records: list[ApplyRecord] = []
        self._pending: list[tuple[InputItem, OutputClaim, RGBImage]] = []

    def _emit(self, record: ApplyRecord) -> None:
        self.records.append(record)
        if self._on_record is not None:
            self._on_record(record)

    def fail(self, item: InputItem, message: str, output: str | None = None) -> None:
        self._emit(ApplyRecord(item.path, output, "error", message))

    def add(self, item: InputItem, output: OutputClaim, image: RGBImage) -> bool:
        """Queue a decoded image; True once a batch is full (the caller then drops its reference and flushes)."""
        self._pending.append((item, output, image))
        return len(self._pending) >= self.options.batch_size

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        try:
            results = self.stylizer.stylize_many([image for _, _, image in pending], self.options.stylize,
                                                 batch_size=self.options.batch_size)
        except StylerError as exc:
            for item, out, _ in pending:
                self.fail(item, f"{item.path}: {exc}", out.shown)
            return
        except (RuntimeError, MemoryError, ValueError) as exc:  # e.g. out of memory in the network
            for item, out, _ in pending:
                self.fail(item, f"{item.path}: {type(exc).__name__}: {exc}", out.shown)
            return
        # Only the photos' notes and profiles are needed from here on: let their pixels go before the outputs are
        # encoded (a 48 MP photo is 0.6 GB of float32).
        done = [(item, out, list(image.warnings), image.profile) for item, out, image in pending]
        del pending
        for (item, out, notes, profile), result in zip(done, results):
            self._write(item, out, notes, profile is not None, result)

    def _write(self, item: InputItem, out: OutputClaim, notes: list[str], srgb: bool, result: StylizeResult) -> None:
        """Write one result where its claim says: exclusively unless ``--force`` (another process may have created
        the file since the claim), with the sRGB profile (``srgb``) when the photo had a colour profile."""
        from styler.io.images import write_image

        options = self.options
        try:
            notes = notes + write_image(result.image.rgb, out.path, alpha=result.image.alpha,
                                        fmt=options.fmt or ("png" if out.path == _STDOUT else None),
                                        quality=options.quality, overwrite=options.force, srgb_profile=srgb)
        except StylerError as exc:
            self.fail(item, str(exc).replace(out.path, out.shown), out.shown)
            return
        height, width = result.image.rgb.shape[:2]
        self._emit(ApplyRecord(item.path, out.shown, "ok", size=(width, height), seconds=result.seconds,
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
        out = policy.claim_output(item)
        if out.refusal is not None:
            batches.fail(item, out.refusal, out.shown)
            continue
        try:
            image = read_image(item.path, max_pixels=limit)
        except StylerError as exc:
            batches.fail(item, str(exc), out.shown)
            continue
        full = batches.add(item, out, image)
        del image  # the batch holds the only reference, so the pixels go once stylized
        if full:
            batches.flush()
    batches.flush()
    return batches.records
