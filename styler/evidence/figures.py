"""Pictures people would rather look at than read: labelled image grids and loss curves.

Grids are drawn with Pillow alone (no plotting library needed to stylize); curves use matplotlib's Agg backend,
imported only when a curve is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

__all__ = ["fit_into", "image_grid", "plot_loss_curves", "plot_sn_weights", "label_font", "save_figure"]


def label_font(size: int = 14) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A readable TrueType font when one is installed (DejaVu ships with matplotlib), else Pillow's default."""
    candidates = []
    try:
        import matplotlib

        candidates.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf")
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    candidates.append(Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"))
    for candidate in candidates:
        if candidate.is_file():
            return ImageFont.truetype(str(candidate), size)
    return ImageFont.load_default(size=size)


def fit_into(img: Image.Image, cell: int) -> Image.Image:
    """Scale ``img`` so that its long side is ``cell`` pixels (aspect kept)."""
    w, h = img.size
    scale = cell / max(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)


def image_grid(rows: Sequence[Sequence[Image.Image | None]], *, cell: int = 256, row_labels: Sequence[str] = (),
               col_labels: Sequence[str] = (), title: str = "", pad: int = 6, label_width: int | None = None,
               background: str = "white") -> Image.Image:
    """Lay images out in a grid of ``cell``×``cell`` slots, each image centred and fitted into its slot.

    The canvas size is exactly ``label_width + cols·(cell + pad) + pad`` by
    ``title_height + header_height + rows·(cell + pad) + pad``, so callers and tests can predict it.
    """
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    font = label_font(max(11, cell // 16))
    line = int(font.size) + 6 if isinstance(font, ImageFont.FreeTypeFont) else 18
    left = (label_width if label_width is not None else (max(cell // 2, 110) if row_labels else 0))
    top = (line + pad if title else 0) + (line + pad if col_labels else 0)
    width = left + n_cols * (cell + pad) + pad
    height = top + n_rows * (cell + pad) + pad
    canvas = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((pad, pad), title, fill="black", font=font)
    for c, label in enumerate(col_labels):
        x = left + pad + c * (cell + pad)
        draw.text((x, top - line), _shorten(draw, label, font, cell), fill="black", font=font)
    for r, row in enumerate(rows):
        y = top + pad + r * (cell + pad)
        if r < len(row_labels):
            for i, text in enumerate(str(row_labels[r]).split("\n")):
                draw.text((pad, y + i * line), _shorten(draw, text, font, left - 2 * pad), fill="black", font=font)
        for c, img in enumerate(row):
            if img is None:
                continue
            tile = fit_into(img.convert("RGB"), cell)
            x = left + pad + c * (cell + pad)
            canvas.paste(tile, (x + (cell - tile.width) // 2, y + (cell - tile.height) // 2))
    return canvas


def _shorten(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
             width: int) -> str:
    if width <= 0 or draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def plot_loss_curves(runs: dict[str, list[dict]], path: str | os.PathLike, *,
                     terms: Sequence[str] = ("loss", "content", "style", "tv"), title: str = "") -> Path:
    """Plot one panel per loss term (log scale), one line per run; ``runs`` maps a label to JSON log records."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    present = [t for t in terms if any(t in rec for recs in runs.values() for rec in recs)]
    fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.4), squeeze=False)
    for ax, term in zip(axes[0], present):
        for label, records in runs.items():
            pts = [(rec["step"], rec[term]) for rec in records if term in rec and rec[term] > 0]
            if pts:
                ax.plot(*zip(*pts), label=label, linewidth=1.4)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title("total loss" if term == "loss" else f"{term} loss")
        ax.grid(True, alpha=0.3)
    if len(runs) > 1 or title:
        axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_sn_weights(weights: dict[str, dict[str, dict[str, float]]], path: str | os.PathLike, *,
                    title: str = "") -> Path:
    """Stacked bars of a switchable-norm model's learned branch weights, one bar per layer, mean and variance side
    by side. ``weights`` maps a layer name to ``SwitchNorm2d.mixture_weights()`` (``{"mean": {"in": ..}, "var": ..}``).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    layers = list(weights)
    branches = [b for b in ("in", "ln", "bn") if any(b in w[k] for w in weights.values() for k in ("mean", "var"))]
    colours = {"in": "#d62728", "ln": "#1f77b4", "bn": "#7f7f7f"}
    fig, axes = plt.subplots(1, 2, figsize=(max(6.0, 0.45 * len(layers) + 3.0) * 1.6, 3.8), sharey=True,
                             squeeze=False)
    for ax, kind in zip(axes[0], ("mean", "var")):
        bottom = [0.0] * len(layers)
        for branch in branches:
            values = [weights[layer][kind].get(branch, 0.0) for layer in layers]
            ax.bar(range(len(layers)), values, bottom=bottom, color=colours[branch], label=branch.upper())
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels([layer.replace(".norm", "") for layer in layers], rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(f"{'mean' if kind == 'mean' else 'variance'} weights")
    axes[0][0].set_ylabel("softmax weight")
    axes[0][1].legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike,  # noqa: ANN001 - a matplotlib Figure
                rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    """Lay out, write (creating the folder) and close a matplotlib figure; ``rect`` keeps room for a figure legend."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=rect)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
