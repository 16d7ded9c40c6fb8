"""``styler compare``, ``styler independence`` and ``styler report``: parse options, call styler.evidence.ablation/report.

No torch import at module level (``styler --help`` and usage errors stay fast); the library is imported inside each
command.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

STATS_HELP = ("Statistics for BN/SN models: running = eval mode with running averages (what `styler apply` does); "
              "batch = train-mode statistics of all photos as one batch (photos are centre-cropped to squares); "
              "single = train mode with each photo alone (BN then equals IN). Other norms are unaffected.")
MODEL_OPTION = click.option("-m", "--model", "models", multiple=True, required=True,
                            help="Model file (.pth) or model name; repeat for each row (e.g. one per norm).")


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@MODEL_OPTION
@click.argument("photos", nargs=-1, required=True, metavar="PHOTO_OR_DIR...")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="compare.png", help="Grid PNG to write.")
@click.option("--cell", type=click.IntRange(min=32), default=256, help="Size of each grid cell (pixels).")
@click.option("--size", type=click.IntRange(min=8), default=384,
              help="Long side (pixels) the photos are stylized at.")
@click.option("--stats", type=click.Choice(["running", "batch", "single"]), default="running", help=STATS_HELP)
@click.option("--save-images", type=click.Path(file_okay=False),
              help="Also write every stylized cell to this folder as <model>__<photo>.png.")
@click.option("--title", help="Title line of the grid [default: describes the statistics].")
def compare(models: tuple[str, ...], photos: tuple[str, ...], output: str, cell: int, size: int, stats: str,
            save_images: str | None, title: str | None) -> None:
    """Draw a grid: content photos in a header row, then one row per model (labelled norm, style, training steps)."""
    from styler.evidence.ablation import compare_grid, load_photos

    images = load_photos(photos, size, square=stats == "batch")
    grid = compare_grid(list(models), images, cell=cell, stats=stats, title=title, save_dir=save_images)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    grid.save(output)
    click.echo(f"grid written to {output} ({grid.width}×{grid.height}, {len(models)} model(s) × {len(images)} "
               f"photo(s))" + (f"; cells in {save_images}" if save_images else ""))


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@MODEL_OPTION
@click.option("-t", "--target", type=click.Path(dir_okay=False, exists=True), required=True,
              help="The photo whose output is compared alone vs inside batches.")
@click.option("-c", "--companion", "companions", multiple=True, type=click.Path(exists=True),
              help="Other photos (files or folders) used as batch-mates; a dark copy, a flat grey image and noise "
                   "are always added.")
@click.option("--size", type=click.IntRange(min=8), default=256,
              help="Side of the square centre crops every image is resized to (batches need one size).")
@click.option("--fp64/--no-fp64", default=False, help="Also measure in fp64 (exact proof, tolerance 1e-10).")
@click.option("--modes", type=click.Choice(["both", "eval", "train"]), default="both",
              help="Eval mode, train mode (batch statistics for BN/SN) or both.")
@click.option("--contrast/--no-contrast", default=True,
              help="Also run Ulyanov's contrast/brightness experiment on the target.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="independence.png",
              help="Figure: per norm, target alone / in batch A / in batch B / amplified difference.")
@click.option("--contrast-figure", type=click.Path(dir_okay=False),
              help="Also draw the contrast experiment to this PNG.")
@click.option("--amplify", type=click.FloatRange(min=0, min_open=True), default=10.0,
              help="Gain of the difference heat map.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write every measured row as JSON.")
def independence(models: tuple[str, ...], target: str, companions: tuple[str, ...], size: int, fp64: bool,
                 modes: str, contrast: bool, output: str, contrast_figure: str | None, amplify: float,
                 json_path: str | None) -> None:
    """Measure per-instance independence: the target alone vs inside batches, per norm and mode.

    Prints max/mean |difference| and PSNR of the target's output across batch-mates (verdict: within the tolerance
    of norms.md §6.5), the train/eval gap of BN/SN models, and, unless --no-contrast, how much each model's output
    changes when the target's contrast and brightness change.
    """
    import torch

    from styler.evidence import ablation as A

    tgt = A.load_photo(target, size, square=True)
    mates = {p.name: p.tensor for p in (A.load_photos(companions, size, square=True) if companions else [])
             if p.name != tgt.name}
    mode_list = ("eval", "train") if modes == "both" else (modes,)
    dtypes = [torch.float32] + ([torch.float64] if fp64 else [])
    rows, contrast_rows, contrast_by_model, gaps = [], [], [], []
    for model in models:
        loaded = A.as_loaded(model)
        for dtype in dtypes:
            rows += A.measure_independence(loaded, tgt, mates, mode_list, dtype=dtype,
                                           keep_outputs=dtype == torch.float32)
        if contrast:
            measured = A.contrast_sensitivity(loaded, tgt, keep_outputs=contrast_figure is not None)
            contrast_by_model.append(measured)
            contrast_rows += [r for r in measured if (r.a, r.b) != (1.0, 0.0)]
        if loaded.arch.norm.kind in ("batch", "switchable"):
            gaps += A.train_eval_gap(loaded, [tgt, *list(_first(mates.values(), 3))])

    click.echo(f"target {tgt.name} at {size}×{size}; tolerance fp32 atol=rtol=1e-4, fp64 atol=1e-10 (norms.md §6.5)")
    click.echo(A.format_table(
        ["norm", "model", "mode", "dtype", "batch", "size", "pos", "max|Δ|", "mean|Δ|", "PSNR dB", "max|out|",
         "independent"],
        [[r.norm, r.model, r.mode, r.dtype, r.batch, r.batch_size, r.position + 1, r.max_abs, r.mean_abs, r.psnr_db,
          r.output_max, r.independent] for r in rows]))
    notes = sorted({r.note for r in rows if r.note})
    for note in notes:
        click.echo(f"note: train mode, {note}")
    if gaps:
        click.echo("\ntrain/eval gap (eval output vs output with batch statistics)")
        click.echo(A.format_table(["norm", "model", "train-mode reference", "max|Δ|", "mean|Δ|", "PSNR dB"],
                                  [[g.norm, g.model, g.reference, g.max_abs, g.mean_abs, g.psnr_db] for g in gaps]))
    if contrast_rows:
        click.echo("\ncontrast/brightness: max|f(a·A+b) − f(A)| / max|f(A)|, eval mode")
        click.echo(A.format_table(["norm", "model", "change", "relative max|Δ|", "mean|Δ|", "PSNR dB"],
                                  [[r.norm, r.model, r.transform, r.relative_max, r.mean_abs, r.psnr_db]
                                   for r in contrast_rows]))
    figure = A.independence_figure([r for r in rows if r.dtype == "float32"], amplify=amplify)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    figure.save(output)
    click.echo(f"\nfigure written to {output}")
    if contrast_figure and contrast_by_model:
        Path(contrast_figure).parent.mkdir(parents=True, exist_ok=True)
        A.contrast_figure(tgt, contrast_by_model).save(contrast_figure)
        click.echo(f"contrast figure written to {contrast_figure}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"target": tgt.name, "size": size,
                                               "independence": A.rows_to_dicts(rows),
                                               "contrast": A.rows_to_dicts(contrast_rows),
                                               "train_eval_gap": A.rows_to_dicts(gaps)}, indent=1))
        click.echo(f"measurements written to {json_path}")


def _first(values, n: int):  # noqa: ANN001, ANN202 - tiny helper
    for i, value in enumerate(values):
        if i >= n:
            return
        yield value


@click.command(context_settings={"show_default": True, "help_option_names": ["-h", "--help"]})
@MODEL_OPTION
@click.argument("photos", nargs=-1, required=True, metavar="PHOTO_OR_DIR...")
@click.option("-o", "--out-dir", type=click.Path(file_okay=False), default="ablation_report",
              help="Folder for the report and its figures.")
@click.option("-t", "--target", type=click.Path(dir_okay=False, exists=True),
              help="Photo used for the independence and contrast measurements [default: the first photo].")
@click.option("--html", "as_html", is_flag=True, help="Write one self-contained report.html (images embedded) "
              "instead of report.md with PNGs beside it.")
@click.option("--size", type=click.IntRange(min=8), default=256, help="Processing size of the photos (pixels).")
@click.option("--cell", type=click.IntRange(min=32), default=224, help="Grid cell size (pixels).")
@click.option("--stats", type=click.Choice(["running", "batch", "single"]), default="running", help=STATS_HELP)
@click.option("--fp64/--no-fp64", default=False, help="Also measure batch independence in fp64.")
@click.option("--title", default="Normalization ablation", help="Report title.")
def report(models: tuple[str, ...], photos: tuple[str, ...], out_dir: str, target: str | None, as_html: bool,
           size: int, cell: int, stats: str, fp64: bool, title: str) -> None:
    """Build the norm-ablation report: comparison grid, independence figure and table, contrast table, train/eval
    gap, loss curves of the training runs, SN's learned weights, and what each norm normalizes over."""
    from styler.evidence.report import ReportOptions, build_report

    result = build_report(list(models), list(photos), out_dir, target=target,
                          options=ReportOptions(size=size, cell=cell, stats=stats, fp64=fp64, html=as_html,
                                                title=title))
    click.echo(f"report written to {result.path} ({len(result.figures)} figures)")
