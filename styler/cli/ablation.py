"""``styler compare``, ``styler independence`` and ``styler report``: parse options, call :mod:`styler.evidence`,
print what it returns.

No torch import at module level (``styler --help`` and usage errors stay fast); the library is imported inside each
command.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from styler.cli.signals import handles_sigterm

STATS_HELP = ("Statistics for BN/SN models: running = eval mode with running averages (what `styler apply` does); "
              "batch = train-mode statistics of all photos as one batch (photos are centre-cropped to squares); "
              "single = train mode with each photo alone (BN then equals IN). Other norms are unaffected.")
MODEL_OPTION = click.option("-m", "--model", "models", multiple=True, required=True,
                            help="Model file (.pth) or model name; repeat for each row (e.g. one per norm).")


def _make_parent_dir(path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)


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
@handles_sigterm
def compare(models: tuple[str, ...], photos: tuple[str, ...], output: str, cell: int, size: int, stats: str,
            save_images: str | None, title: str | None) -> None:
    """Draw a grid: content photos in a header row, then one row per model (labelled norm, style, training steps)."""
    from styler.evidence.compare import compare_grid
    from styler.evidence.photos import load_photos

    images = load_photos(photos, size, square=stats == "batch")
    grid = compare_grid(list(models), images, cell=cell, stats=stats, title=title, save_dir=save_images)
    _make_parent_dir(output)
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
@handles_sigterm
def independence(models: tuple[str, ...], target: str, companions: tuple[str, ...], size: int, fp64: bool,
                 modes: str, contrast: bool, output: str, contrast_figure: str | None, amplify: float,
                 json_path: str | None) -> None:
    """Measure per-instance independence: the target alone vs inside batches, per norm and mode.

    Prints max/mean |difference| and PSNR of the target's output across batch-mates (verdict: within the tolerance
    of norms.md §6.5), the train/eval gap of BN/SN models, and, unless --no-contrast, how much each model's output
    changes when the target's contrast and brightness change.
    """
    from styler.evidence.photos import load_photo, load_photos
    from styler.evidence.suite import format_suite, measure_suite

    tgt = load_photo(target, size, square=True)
    mates = load_photos(companions, size, square=True) if companions else []
    result = measure_suite(list(models), tgt, mates, modes=("eval", "train") if modes == "both" else (modes,),
                           fp64=fp64, contrast=contrast)
    click.echo(format_suite(result, size))
    _make_parent_dir(output)
    result.independence_figure(amplify=amplify).save(output)
    click.echo(f"\nfigure written to {output}")
    if contrast_figure and result.contrast_by_model:
        _make_parent_dir(contrast_figure)
        result.contrast_figure().save(contrast_figure)
        click.echo(f"contrast figure written to {contrast_figure}")
    if json_path:
        _make_parent_dir(json_path)
        Path(json_path).write_text(json.dumps({"target": tgt.name, "size": size, **result.to_dict()}, indent=1))
        click.echo(f"measurements written to {json_path}")


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
@handles_sigterm
def report(models: tuple[str, ...], photos: tuple[str, ...], out_dir: str, target: str | None, as_html: bool,
           size: int, cell: int, stats: str, fp64: bool, title: str) -> None:
    """Build the norm-ablation report: comparison grid, independence figure and table, contrast table, train/eval
    gap, loss curves of the training runs, SN's learned weights, and what each norm normalizes over."""
    from styler.evidence.report import ReportOptions, build_report

    result = build_report(list(models), list(photos), out_dir, target=target,
                          options=ReportOptions(size=size, cell=cell, stats=stats, fp64=fp64, html=as_html,
                                                title=title))
    click.echo(f"report written to {result.path} ({len(result.figures)} figures)")
