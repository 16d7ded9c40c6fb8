"""``styler apply``, ``styler info`` and ``styler models``: thin click commands over :mod:`styler.infer.apply`.

``apply`` parses its options, builds a :class:`~styler.infer.stylizer.Stylizer`, hands the inputs to
:func:`~styler.infer.apply.apply_files` and turns the records it returns into messages, a summary or JSON, and an
exit code. No torch import at module level: with a cached ONNX export, ``styler apply`` runs without importing
torch at all, and it never imports torchvision.

Exit codes of ``styler apply``: 0 every input was written; 1 at least one input failed (unreadable, corrupt, too
large, output exists, ...; the other inputs are still processed) or the model could not be loaded (then nothing
runs, since every input needs it); 2 usage error (bad option, no input).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import click

from styler.cli.signals import handles_sigterm
from styler.infer.apply import FORMAT_SUFFIX, ApplyUsageError
from styler.infer.backends import BACKENDS, PRECISIONS

if TYPE_CHECKING:  # pragma: no cover
    from styler.infer.apply import ApplyRecord
    from styler.infer.stylizer import Stylizer

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE_OR_DIR...")
@click.option("-m", "--model", help="Model file (.safetensors or .pth) or the name of a model in $STYLER_MODEL_DIR "
              "or the bundled zoo [default: the bundled default model].")
@click.option("-o", "--output", help="Output file for a single input ('-' for stdout).")
@click.option("--out-dir", type=click.Path(file_okay=False), help="Write outputs here (folder structure of "
              "directory inputs is kept) instead of next to each input.")
@click.option("--suffix", help="Output name suffix: photo.jpg → photo<SUFFIX>.jpg [default: _<model name>].")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMAT_SUFFIX)), help="Output format [default: the "
              "input's; PNG for GIF/PGM and stdout].")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG/WebP quality.")
@click.option("-f", "--force", is_flag=True, help="Overwrite existing output files (never an input).")
@click.option("--max-size", type=click.IntRange(min=8), help="Cap the long side (pixels) of processing and output.")
@click.option("--scale", type=click.FloatRange(min=0, min_open=True), help="Resize factor for processing and "
              "output (before --max-size). Default: the input's size.")
@click.option("--preserve-color", is_flag=True, help="Keep the photo's colours; take luminance from the stylized "
              "image.")
@click.option("--color-space", type=click.Choice(["ycbcr", "lab"]), default="ycbcr", show_default=True,
              help="Space for --preserve-color.")
@click.option("--strength", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Blend with the photo: 0 = photo, 1 = fully stylized.")
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Images of the same size run together.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="auto", show_default=True,
              help="auto: on CPU, OpenVINO in the fastest precision the CPU runs natively (int8 where it passed its "
              "quality gate, else bf16 where native, else fp32; graphs cached once), else ONNX Runtime, else torch. "
              "compiled: torch.compile, bf16 where the hardware has it; each new image size compiles first "
              "(~20-50 s on a small CPU): for many images of one size.")
@click.option("--precision", type=click.Choice(list(PRECISIONS)), default="auto", show_default=True,
              help="auto = the backend's choice (openvino: per model and CPU; compiled: bf16 on CUDA or CPUs with "
              "AMX/AVX512-BF16; else fp32). bf16 needs --backend openvino, compiled or torch; int8 needs --backend "
              "openvino (calibrated once; PSNR >= 40 dB against fp32, else a warning).")
@click.option("--style", "style", default=None, metavar="NAME[:W],...",
              help="Multi-style models: the style to apply, or a blend such as great_wave:0.6,starry_night:0.4 "
              "(weights are normalized) [default: the model's first style]. `styler info MODEL` lists the styles.")
@click.option("--tile-size", type=click.IntRange(min=0), default=None, help="Tile size in pixels for large "
              "images; 0 never tiles [default: automatic from --memory-budget].")
@click.option("--memory-budget", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="GiB of network activations allowed before tiling.")
@click.option("--max-pixels", type=click.IntRange(min=0), default=None, help="Decompression-bomb limit in pixels "
              "(0: none) [default: 268 MP].")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads [default: runtime's].")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary (stdout; stderr when the "
              "image goes to stdout).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or warnings.")
@handles_sigterm
def apply(inputs: tuple[str, ...], model: str | None, output: str | None, out_dir: str | None, suffix: str | None,
          fmt: str | None, quality: int, force: bool, max_size: int | None, scale: float | None,
          preserve_color: bool, color_space: str, strength: float, batch_size: int, device: str, backend: str,
          precision: str, style: str | None, tile_size: int | None, memory_budget: float, max_pixels: int | None,
          threads: int | None, as_json: bool, quiet: bool) -> None:
    """Stylize photos: files, directories (recursive), glob patterns, or '-' for stdin.

    Outputs go next to each input as NAME_<model>.EXT (or into --out-dir); an input is never overwritten and an
    existing output only with --force. Animated/multi-frame images: the first frame is stylized (with a warning);
    alpha is kept. Exit codes: 0 all written, 1 some input failed (the others are still processed), 2 usage error.
    """
    from styler.infer.apply import ApplyOptions, apply_files
    from styler.infer.stylizer import StylizeOptions, Stylizer

    with _usage_errors():
        options = ApplyOptions(output=output, out_dir=out_dir, suffix=suffix, fmt=fmt, quality=quality, force=force,
                               max_pixels=max_pixels, batch_size=batch_size,
                               stylize=StylizeOptions(max_size=max_size, scale=scale,
                                                      preserve_color=color_space if preserve_color else None,
                                                      strength=strength, tile_size=tile_size,
                                                      memory_budget=memory_budget))
    if output and len(inputs) != 1:
        raise click.UsageError("-o/--output takes a single input; use --out-dir for several")
    if precision == "bf16" and backend in ("auto", "onnx"):
        raise click.UsageError("--precision bf16 needs --backend openvino, compiled or torch (ONNX Runtime runs fp32)")
    if precision == "int8" and backend != "openvino":
        raise click.UsageError("--precision int8 needs --backend openvino")
    if inputs.count("-") > 1:
        raise click.UsageError("'-' (stdin) can be given only once")
    started = time.perf_counter()
    to_stdout = output == "-" or (output is None and inputs == ("-",))
    stylizer = Stylizer(model, device=device, backend=backend, threads=threads, precision=precision, style=style)
    _warn(stylizer.notes, quiet)
    notes_seen = len(stylizer.notes)
    progress = _Progress(quiet)
    try:
        with _usage_errors():
            records = apply_files(inputs, stylizer, options, on_start=progress.start, on_record=progress.record)
    finally:
        progress.close()
    _warn(stylizer.notes[notes_seen:], quiet)  # e.g. a compile failure met on the first image
    failed = sum(not r.ok for r in records)
    if to_stdout and failed:
        _detach_stdout()
    if as_json:
        click.echo(json.dumps(_summary(stylizer, records, started), indent=2), err=to_stdout)
    elif not quiet and not to_stdout:
        backend_label = stylizer.backend + (f", {stylizer.precision}" if stylizer.backend != "onnx" else "")
        click.echo(f"{len(records) - failed} written, {failed} failed ({backend_label}, "
                   f"{time.perf_counter() - started:.2f} s)", err=True)
    if failed:
        sys.exit(EXIT_FAILED)


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    """The library's :class:`~styler.infer.apply.ApplyUsageError` as click's usage error (exit code 2)."""
    try:
        yield
    except ApplyUsageError as exc:
        raise click.UsageError(str(exc)) from exc


def _detach_stdout() -> None:
    """Point stdout at the null device after a failed image write to it.

    Why: the bytes of the failed write may still sit in Python's stdout buffer, and the interpreter flushes it once
    more at exit; into a closed pipe that prints a second, confusing ``BrokenPipeError`` and changes the exit code
    to 120. The error has been reported; nothing more should reach the broken stdout.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a descriptor (captured in tests): nothing to do
        pass


def _warn(notes: Sequence[str], quiet: bool) -> None:
    if not quiet:
        for note in notes:
            click.echo(f"warning: {note}", err=True)


class _Progress:
    """The progress bar on stderr, with each input's error (always) or warnings (unless quiet) printed above it.

    The bar is shown only for two inputs or more on a terminal (unless quiet); otherwise tqdm is not imported at
    all (it costs ~5 ms with the multiprocessing lock it creates: a one-shot ``styler apply photo.jpg`` has no bar),
    and the messages go straight to stderr, as tqdm's ``write`` would put them.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._bar: Any = None

    def start(self, total: int) -> None:
        isatty = getattr(sys.stderr, "isatty", None)
        if self.quiet or total < 2 or not (isatty and isatty()):  # tqdm's disable=None: no bar off a terminal
            return
        from tqdm import tqdm

        self._bar = tqdm(total=total, unit="img", file=sys.stderr, leave=False)

    def record(self, record: ApplyRecord) -> None:
        if record.status == "error":
            self._write(f"error: {record.error}")
        elif not self.quiet:
            for note in record.warnings:
                self._write(f"warning: {note}")
        if self._bar is not None:
            self._bar.update(1)

    def _write(self, message: str) -> None:
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            sys.stderr.write(message + "\n")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _summary(stylizer: Stylizer, records: Sequence[ApplyRecord], started: float) -> dict[str, Any]:
    """The ``--json`` document (keys in this order; ``results`` as :meth:`ApplyRecord.to_json`)."""
    failed = sum(not r.ok for r in records)
    return {"model": stylizer.name, "model_path": str(stylizer.model_path), "backend": stylizer.backend,
            "precision": stylizer.precision, "device": stylizer.device,
            "selection": getattr(stylizer.engine, "selection", None), "ok": len(records) - failed,
            "failed": failed, "seconds": round(time.perf_counter() - started, 3),
            "exit_code": EXIT_FAILED if failed else EXIT_OK, "results": [r.to_json() for r in records]}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
@handles_sigterm
def info(model: str, as_json: bool) -> None:
    """Print a model file's metadata: norm, style, training settings, size, checksum."""
    from styler.infer.backends.openvino import describe
    from styler.io.modelfile import read_model_info
    from styler.io.zoo import find_model

    data = read_model_info(find_model(model))
    # what `apply` (--backend auto) runs on this CPU, from the caches only: nothing is exported, calibrated or
    # compiled, and torch is not imported
    data["cpu_runtime"] = describe(data["path"], norm_kind=(data["arch"].get("norm") or {}).get("kind"))
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    arch = data["arch"]
    norm = arch.get("norm", {})
    lines = [
        f"path:        {data['path']}",
        f"size:        {data['size_bytes'] / 1e6:.2f} MB ({data['storage_dtype']}), {data['parameters']:,} parameters",
        f"sha256:      {data['sha256']}",
        f"network:     width {arch.get('width')}, {arch.get('residual_blocks')} residual blocks",
        f"norm:        {norm.get('kind')} ({', '.join(f'{k}={v}' for k, v in norm.items() if k != 'kind')})",
        f"inference:   {data['inference_statistics']}",
        f"cpu runtime: {_runtime_text(data['cpu_runtime'])}",
    ]
    styles = data["metadata"].get("styles")
    if isinstance(styles, list) and styles:
        lines.append(f"styles:      {len(styles)}: " + ", ".join(
            f"{s.get('name')}" + (f" (style weight {s['style_weight']:g})" if s.get("style_weight") else "")
            for s in styles if isinstance(s, dict)) + "  (apply --style NAME or NAME:W,NAME:W)")
    for key, value in sorted(data["metadata"].items()):
        text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else str(value)
        lines.append(f"{key + ':':<12} {text}")
    click.echo("\n".join(lines))


def _runtime_text(runtime: dict[str, Any]) -> str:
    """The ``cpu runtime:`` line of ``styler info``: what auto runs, the int8 gate's verdict when known, the CPU."""
    runs = runtime.get("runs") or "not known yet (the first apply measures the int8 quality gate)"
    gate = runtime.get("int8_gate")
    details = []
    if isinstance(gate, dict) and isinstance(gate.get("psnr_db"), (int, float)):
        details.append(f"int8 gate: {gate['psnr_db']:.1f} dB PSNR against fp32, "
                       f"{'passed' if gate.get('passed') else 'failed'}")
    elif runtime.get("int8_error"):
        details.append(f"int8 unavailable: {runtime['int8_error']}")
    details.append(f"CPU {runtime.get('cpu_capabilities')}")
    return f"{runs} ({'; '.join(details)})"
