"""Preview grids: a few fixed photos stylized in eval mode every N steps, written to ``<run>/previews/``.

Why fixed photos in eval mode: the same photos at every step make progress visible at a glance, and eval mode shows
what the saved model will actually do (for batch norm, with running statistics rather than the batch's).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from styler.errors import StylerError
from styler.train.config import TrainConfig
from styler.train.data import PhotoFolder

__all__ = ["preview_photos", "save_preview"]


def preview_photos(config: TrainConfig, dataset: PhotoFolder) -> list[torch.Tensor]:
    """The configured preview photos, or ``preview_count`` spread evenly over the dataset; unreadable ones are
    left out (a preview must never stop a run)."""
    from styler.evidence.figures import fit_into
    from styler.io.images import open_rgb, pil_to_tensor

    paths = [Path(p) for p in config.preview_images]
    if not paths and config.preview_count > 0:
        files = dataset.files
        step = max(1, len(files) // config.preview_count)
        paths = files[::step][: config.preview_count]
    photos = []
    for path in paths:
        try:
            photos.append(pil_to_tensor(fit_into(open_rgb(path), config.preview_size)))
        except StylerError:
            continue
    return photos


def save_preview(net: nn.Module, photos: list[torch.Tensor], device: torch.device, step: int, folder: Path,
                 title: str, styles: list[tuple[str, Callable[[], None]]] | None = None) -> Path | None:
    """Write ``step_NNNNNN.png`` and ``latest.png`` (photos above, outputs below); the net's mode is restored.

    ``styles`` (a multi-style network): one output row per style, each ``(name, select)`` where ``select()`` makes
    the network apply that style.
    """
    if not photos:
        return None
    from styler.evidence.figures import image_grid
    from styler.io.images import tensor_to_pil

    was_training = net.training
    net.eval()
    rows, labels = [], []
    with torch.no_grad():
        for name, select in styles or [(f"step {step}", lambda: None)]:
            select()
            rows.append([tensor_to_pil(net(p.to(device)).cpu()) for p in photos])
            labels.append(f"{name}, step {step}" if styles else name)
    net.train(was_training)
    grid = image_grid([[tensor_to_pil(p) for p in photos], *rows], cell=max(p.shape[-1] for p in photos) // 2 * 2,
                      row_labels=["photo", *labels], title=title)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:06d}.png"
    grid.save(path)
    grid.save(folder / "latest.png")
    return path
