"""Training data: any folder tree of photos, reshuffled every epoch, resized and randomly cropped.

Determinism is by construction rather than by saved loader state: the image shown at global sample position
``p = step · batch + i`` is ``permutation(seed, epoch)[p mod n]`` with ``epoch = p // n``, and its crop offsets come
from a generator seeded with ``(seed, epoch, index)``. A run resumed at step *k* therefore sees exactly the batches
an uninterrupted run would have seen, on any number of loader workers.

Unreadable files are skipped (replaced by the next image in the epoch's order) and counted; near-constant crops are
skipped too, because instance norm amplifies the noise of a flat image into huge gradients (docs/norms.md §8.2).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from styler.errors import DatasetError, ImageError
from styler.io.images import find_images, open_rgb

__all__ = ["PhotoFolder", "BatchSchedule", "StyleSchedule", "load_style_image", "resize_short_side"]

#: Crops whose per-channel standard deviation is below this (0–255 units) are treated as blank.
FLAT_STD_THRESHOLD = 2.0


def resize_short_side(img: Image.Image, size: int) -> Image.Image:
    """Resize so that the shorter side equals ``size`` (aspect kept), with a high-quality filter."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img if new == (w, h) else img.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)


def load_style_image(path: str | os.PathLike, long_side: int | None) -> torch.Tensor:
    """The style image as a 1×3×H×W tensor in [0, 1], its long side resized to ``long_side`` (None: as is).

    Decoded and resized in float precision by the same code as ``styler apply`` (16-bit and CMYK styles included);
    transparent areas are composited on white.
    """
    from styler.io.images import read_image, resize_image

    image = read_image(path)
    if long_side:
        w, h = image.size
        scale = long_side / max(w, h)
        image = resize_image(image, (max(1, round(w * scale)), max(1, round(h * scale))))
    rgb = image.rgb if image.alpha is None else image.rgb * image.alpha[..., None] + (1 - image.alpha[..., None])
    return torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)


@dataclass
class PhotoFolder:
    """All images below ``root``, served as ``size``×``size`` random crops of the short-side-resized photo."""

    root: Path
    size: int
    files: list[Path] = field(default_factory=list)
    bad_files: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if not self.root.is_dir():
            raise DatasetError(f"dataset folder not found: {self.root}")
        if not self.files:
            self.files = find_images(self.root)
        if not self.files:
            raise DatasetError(f"no images (jpg, png, webp, ...) found below {self.root}")

    def __len__(self) -> int:
        return len(self.files)

    def load_crop(self, index: int, rng: np.random.Generator) -> torch.Tensor | None:
        """A random crop of image ``index`` as a 3×size×size uint8 tensor, or None if unusable (and recorded)."""
        path = self.files[index]
        if str(path) in self.bad_files:
            return None
        try:
            img = resize_short_side(open_rgb(path), self.size)
        except ImageError as exc:
            self.bad_files[str(path)] = str(exc)
            return None
        w, h = img.size
        left = int(rng.integers(0, w - self.size + 1))
        top = int(rng.integers(0, h - self.size + 1))
        arr = np.asarray(img.crop((left, top, left + self.size, top + self.size)), dtype=np.uint8)
        if arr.reshape(-1, 3).std(axis=0).max() < FLAT_STD_THRESHOLD:
            self.bad_files[str(path)] = "near-constant image (blank crops destabilize instance norm)"
            return None
        return torch.from_numpy(arr.copy()).permute(2, 0, 1)


class BatchSchedule:
    """Maps a global step to its batch of images; deterministic in (seed, step), so resuming is exact.

    With ``world_size > 1`` each rank takes an interleaved share of every global batch (rank r gets positions
    r, r + world_size, ...), so the union over ranks is exactly the single-process batch of ``batch_size·world_size``.
    This is what a ``DistributedSampler`` with ``set_epoch`` does for a DataLoader: a deterministic reshuffle per
    epoch and disjoint per-rank shares, but keyed on the global sample position instead of loader state.

    ``origin_step``/``origin_position`` anchor the schedule for a run resumed with a *different* global batch (another
    world size or per-rank batch): step ``s`` then starts at sample position
    ``origin_position + (s − origin_step)·global_batch``, i.e. the data continues with the first image not yet seen.
    With the default origin (0, 0) the position is simply ``step·global_batch``.
    """

    def __init__(self, dataset: PhotoFolder, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 origin_step: int = 0, origin_position: int = 0) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.origin_step = origin_step
        self.origin_position = origin_position
        self._perm_cache: dict[int, np.ndarray] = {}

    def position(self, step: int) -> int:
        """Global sample position of the first image of ``step`` (= images seen before it)."""
        return self.origin_position + (step - self.origin_step) * self.global_batch

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perm_cache:
            self._perm_cache = {epoch: np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))}
        return self._perm_cache[epoch]

    def epoch_of(self, step: int) -> float:
        """Fractional epoch reached at the start of ``step``."""
        return self.position(step) / len(self.dataset)

    def batch(self, step: int) -> torch.Tensor:
        """This rank's images for ``step`` as a B×3×size×size float tensor in [0, 1]."""
        n = len(self.dataset)
        images = []
        for slot in range(self.rank, self.global_batch, self.world_size):
            position = self.position(step) + slot
            epoch, offset = divmod(position, n)
            perm = self.permutation(epoch)
            crop = None
            for attempt in range(n):  # skip unusable files: take the next image of this epoch's order
                index = int(perm[(offset + attempt) % n])
                crop = self.dataset.load_crop(index, np.random.default_rng([self.seed, epoch, index]))
                if crop is not None:
                    break
            if crop is None:
                raise DatasetError(f"none of the {n} images below {self.dataset.root} could be used: "
                                   + "; ".join(list(self.dataset.bad_files.values())[:3]))
            images.append(crop)
        return torch.stack(images).float().div_(255.0)



class StyleSchedule:
    """Which style a multi-style step trains: a function of (seed, step) alone, so a resumed run is exact.

    Every cycle of ``num_styles`` steps visits each style once, in an order reshuffled per cycle: the styles get equal
    training, and no style is trained on the same photos' positions in every cycle. With one style every step is
    style 0.
    """

    def __init__(self, num_styles: int, seed: int) -> None:
        if num_styles < 1:
            raise ValueError("a style schedule needs at least one style")
        self.num_styles = num_styles
        self.seed = seed
        self._cycle: tuple[int, np.ndarray] | None = None

    def style(self, step: int) -> int:
        if self.num_styles == 1:
            return 0
        cycle, slot = divmod(step, self.num_styles)
        if self._cycle is None or self._cycle[0] != cycle:
            self._cycle = (cycle, np.random.default_rng([self.seed, 7, cycle]).permutation(self.num_styles))
        return int(self._cycle[1][slot])
