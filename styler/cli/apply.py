"""``styler apply``, ``styler info`` and ``styler models``: thin click commands over :mod:`styler.infer.stylizer`.

No torch import at module level: with a cached ONNX export, ``styler apply`` runs without importing torch at all,
and it never imports torchvision.

Exit codes of ``styler apply``: 0 every input was written; 1 at least one input failed (unreadable, corrupt, too
large, output exists, ...; the other inputs are still processed) or the model could not be loaded (then nothing
runs, since every input needs it); 2 usage error (bad option, no input).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from styler.errors import StylerError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_FORMAT_SUFFIX = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "tiff": ".tiff"}
# Sources whose format is a poor output (GIF's 256 colours, grey-only PGM) are written as PNG.
_REMAP_SUFFIX = {".gif": ".png", ".pgm": ".png"}


def _output_path(item: Any, model_name: str, output: str | None, out_dir: str | None, suffix: str,
                 fmt: str | None) -> str:
    if output:
        return output
    if item.is_stdin:
        return "-"
    src = Path(item.path)
    ext = _FORMAT_SUFFIX[fmt] if fmt else _REMAP_SUFFIX.get(src.suffix.lower(), src.suffix or ".png")
    name = f"{src.stem}{suffix}{ext}"
    if out_dir:
        rel = src.parent.relative_to(item.root) if item.root is not None else Path()
        return str(Path(out_dir) / rel / name)
    return str(src.with_name(name))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, required=True, metavar="IMAGE_OR_DIR...")
@click.option("-m", "--model", help="Model file (.pth) or the name of a model in $STYLER_MODEL_DIR or weights/ "
              "[default: the bundled default model].")
@click.option("-o", "--output", help="Output file for a single input ('-' for stdout).")
@click.option("--out-dir", type=click.Path(file_okay=False), help="Write outputs here (folder structure of "
              "directory inputs is kept) instead of next to each input.")
@click.option("--suffix", help="Output name suffix: photo.jpg → photo<SUFFIX>.jpg [default: _<model name>].")
@click.option("--format", "fmt", type=click.Choice(sorted(_FORMAT_SUFFIX)), help="Output format [default: the "
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
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "compiled"]), default="auto",
              show_default=True, help="auto: ONNX Runtime on CPU when available (export cached once), else torch. "
              "compiled: torch.compile, bf16 where the hardware has it; fastest per image, but each new image size "
              "compiles first (~20-50 s on a small CPU): for many images of one size.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="torch/compiled backends: auto = bf16 for compiled on CUDA or CPUs with AMX/AVX512-BF16, else "
              "fp32 (bf16: PSNR 51-58 dB against fp32, the same picture).")
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
def apply(inputs: tuple[str, ...], model: str | None, output: str | None, out_dir: str | None, suffix: str | None,
          fmt: str | None, quality: int, force: bool, max_size: int | None, scale: float | None,
          preserve_color: bool, color_space: str, strength: float, batch_size: int, device: str, backend: str,
          precision: str, tile_size: int | None, memory_budget: float, max_pixels: int | None,
          threads: int | None, as_json: bool, quiet: bool) -> None:
    """Stylize photos: files, directories (recursive), glob patterns, or '-' for stdin.

    Outputs go next to each input as NAME_<model>.EXT (or into --out-dir); an input is never overwritten and an
    existing output only with --force. Animated/multi-frame images: the first frame is stylized (with a warning);
    alpha is kept. Exit codes: 0 all written, 1 some input failed (the others are still processed), 2 usage error.
    """
    from styler.io.images import DEFAULT_MAX_PIXELS, expand_inputs, read_image, write_image
    from styler.infer.stylizer import StylizeOptions, Stylizer

    if output and out_dir:
        raise click.UsageError("use either -o/--output or --out-dir, not both")
    if output and len(inputs) != 1:
        raise click.UsageError("-o/--output takes a single input; use --out-dir for several")
    if precision == "bf16" and backend in ("auto", "onnx"):
        raise click.UsageError("--precision bf16 needs --backend compiled or torch (ONNX Runtime runs fp32)")
    if inputs.count("-") > 1:
        raise click.UsageError("'-' (stdin) can be given only once")
    started = time.perf_counter()
    to_stdout = output == "-" or (output is None and inputs == ("-",))
    say = (lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True))
    stylizer = Stylizer(model, device=device, backend=backend, threads=threads, precision=precision)
    for note in stylizer.notes:
        say(f"warning: {note}")
    notes_seen = len(stylizer.notes)
    model_name = stylizer.name
    suffix = f"_{model_name}" if suffix is None else suffix
    skip_outputs = (lambda p: bool(suffix) and p.stem.endswith(suffix))
    items = expand_inputs(inputs, skip=skip_outputs)
    if output and len(items) != 1:
        raise click.UsageError(f"-o/--output takes a single input, but {inputs[0]} expands to {len(items)} files")
    if any(item.is_stdin for item in items) and not output and len(items) > 1:
        raise click.UsageError("stdin ('-') cannot be mixed with other inputs; stylize it in a call of its own")
    options = StylizeOptions(max_size=max_size, scale=scale, preserve_color=color_space if preserve_color else None,
                             strength=strength, tile_size=tile_size, memory_budget=memory_budget)
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    input_paths = {os.path.realpath(i.path) for i in items if not i.is_stdin and i.error is None}
    written: set[str] = set()
    records: list[dict[str, Any]] = []

    from tqdm import tqdm

    bar = tqdm(total=len(items), unit="img", disable=quiet or len(items) < 2 or None, file=sys.stderr,
               leave=False)
    pending: list[tuple[Any, str, Any]] = []

    def fail(item: Any, message: str, out: str | None = None) -> None:
        records.append({"input": item.path, "output": out, "status": "error", "error": message})
        bar.write(f"error: {message}", file=sys.stderr)
        bar.update(1)

    def flush() -> None:
        if not pending:
            return
        try:
            results = stylizer.stylize_many([img for _, _, img in pending], options, batch_size=batch_size)
        except StylerError as exc:
            for item, out, _ in pending:
                fail(item, f"{item.path}: {exc}", out)
            pending.clear()
            return
        except (RuntimeError, MemoryError, ValueError) as exc:  # e.g. out of memory in the network
            for item, out, _ in pending:
                fail(item, f"{item.path}: {type(exc).__name__}: {exc}", out)
            pending.clear()
            return
        for (item, out, img), result in zip(pending, results):
            try:
                notes = list(img.warnings) + write_image(result.image.rgb, out, alpha=result.image.alpha,
                                                         fmt=(fmt or ("png" if out == "-" else None)),
                                                         quality=quality)
            except StylerError as exc:
                fail(item, str(exc), out)
                continue
            for note in notes:
                if not quiet:
                    bar.write(f"warning: {note}", file=sys.stderr)
            height, width = result.image.rgb.shape[:2]
            records.append({"input": item.path, "output": out, "status": "ok", "width": width, "height": height,
                            "seconds": round(result.seconds, 4), "tiled": result.tiled, "backend": result.backend,
                            "warnings": notes})
            bar.update(1)
        pending.clear()

    for item in items:
        if item.error is not None:
            fail(item, item.error)
            continue
        out = _output_path(item, model_name, output, out_dir, suffix, fmt)
        if out != "-":
            real = os.path.realpath(out)
            if real in input_paths:
                fail(item, f"{item.path}: output {out} would overwrite an input; choose --suffix or --out-dir", out)
                continue
            if real in written:
                fail(item, f"{item.path}: output {out} was already written by another input in this run", out)
                continue
            if os.path.exists(out) and not force:
                fail(item, f"{item.path}: output {out} exists (use --force to overwrite)", out)
                continue
            written.add(real)
        try:
            image = read_image(item.path, max_pixels=limit)
        except StylerError as exc:
            fail(item, str(exc), out)
            continue
        pending.append((item, out, image))
        if len(pending) >= batch_size:
            flush()
    flush()
    bar.close()
    failed = sum(r["status"] != "ok" for r in records)
    for note in stylizer.notes[notes_seen:]:  # e.g. a compile failure met on the first image
        say(f"warning: {note}")
    if as_json:
        summary = {"model": model_name, "model_path": str(stylizer.model_path), "backend": stylizer.backend,
                   "precision": stylizer.precision, "device": stylizer.device, "ok": len(records) - failed,
                   "failed": failed, "seconds": round(time.perf_counter() - started, 3),
                   "exit_code": EXIT_FAILED if failed else EXIT_OK,
                   "results": records}
        click.echo(json.dumps(summary, indent=2), err=to_stdout)
    elif not quiet and not to_stdout:
        ok = len(records) - failed
        backend_label = stylizer.backend + (f", {stylizer.precision}" if stylizer.backend != "onnx" else "")
        say(f"{ok} written, {failed} failed ({backend_label}, {time.perf_counter() - started:.2f} s)")
    if failed:
        sys.exit(EXIT_FAILED)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(model: str, as_json: bool) -> None:
    """Print a model file's metadata: norm, style, training settings, size, checksum."""
    from styler.io.modelfile import read_model_info
    from styler.infer.stylizer import find_model

    data = read_model_info(find_model(model))
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
    ]
    for key, value in sorted(data["metadata"].items()):
        text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) else str(value)
        lines.append(f"{key + ':':<12} {text}")
    click.echo("\n".join(lines))


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
def models(as_json: bool) -> None:
    """List the models found in $STYLER_MODEL_DIR and weights/ (the default is marked with *)."""
    from styler.infer.stylizer import default_model, model_search_dirs

    default = default_model()
    rows = []
    for folder in model_search_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.pth")):
                rows.append({"name": path.stem, "path": str(path), "size_bytes": path.stat().st_size,
                             "default": default is not None and path.resolve() == default.resolve()})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no models installed (looked in: " + ", ".join(str(d) for d in model_search_dirs()) + ")")
        return
    for row in rows:
        click.echo(f"{'*' if row['default'] else ' '} {row['name']:<24} {row['size_bytes'] / 1e6:6.2f} MB  "
                   f"{row['path']}")
