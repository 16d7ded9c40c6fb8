"""Helpers of the video tests: frames whose index survives a lossy codec, textured frames, a tiny model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Size of the test clips.
WIDTH, HEIGHT = 64, 48


def numbered_frames(count: int, width: int = WIDTH, height: int = HEIGHT) -> list[np.ndarray]:
    """Frame i is flat grey at level 20 + 8·(i mod 29) with a white marker in its top-left corner (orientation)."""
    frames = []
    for index in range(count):
        frame = np.full((height, width, 3), 20 + 8 * (index % 29), dtype=np.uint8)
        frame[:8, :12] = 255
        frames.append(frame)
    return frames


def frame_index(frame: np.ndarray) -> int:
    """The index :func:`numbered_frames` drew into a decoded frame (read away from the marker)."""
    return round((float(np.median(frame[frame.shape[0] // 2:, frame.shape[1] // 2:])) - 20) / 8)


def textured_scene(seed: int = 0, width: int = 160, height: int = 120) -> np.ndarray:
    """Smooth random texture (bicubic-upsampled noise): something optical flow can follow."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, size=(height // 6, width // 6, 3)).astype(np.uint8))
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


def tiny_model(path: Path, norm: str = "instance", seed: int = 0, styles: tuple[str, ...] = ()) -> Path:
    """A width-8, one-block network with non-trivial norm affines, saved as a model file (``styles``: the style
    names a conditional model records)."""
    import torch

    from styler.io.modelfile import save_model
    from styler.nn.network import ArchSpec, TransformerNet
    from styler.nn.spec import NormSpec

    torch.manual_seed(seed)
    spec = NormSpec.parse(norm)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1, norm=spec))
    with torch.no_grad():
        for module in net.modules():
            if not isinstance(module, torch.nn.Conv2d) and getattr(module, "weight", None) is not None:
                module.weight.uniform_(0.5, 1.5)  # IN's affine, or every style's (γ, β) rows of a conditional norm
                module.bias.uniform_(-0.5, 0.5)
        net.decoder[2].conv.weight.mul_(255)  # the net divides by 255 at the end: O(1) outputs
        net.decoder[2].conv.bias.mul_(255)
    meta = {"name": path.stem, "style": {"name": "random"}, "norm": spec.to_dict()}
    if styles:
        meta["styles"] = [{"name": name} for name in styles]
    return save_model(path, net.eval(), meta)
