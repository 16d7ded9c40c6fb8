"""Helpers the tests import by name (plain functions, not fixtures).

Why not in conftest.py: pytest imports every folder's conftest.py under the module name ``conftest``, so a second
conftest (tests/web/ has one) can shadow this folder's, and ``from conftest import ...`` then finds the wrong module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from styler.train.config import TrainConfig

__all__ = ["base_config", "SIZE", "make_tiny_model", "smooth_photo"]


def base_config(tmp_path: Path, photos: Path, style: Path, vgg: Path, **overrides) -> TrainConfig:
    """A tiny, fast training configuration (width 8, 64 px, 6 steps, fp32) for the training tests."""
    from styler.train.trainer import TrainConfig

    options = dict(style=str(style), dataset=str(photos), output=str(tmp_path / "model.pth"), width=8,
                   residual_blocks=1, image_size=64, batch_size=2, style_size=96, iterations=6, log_interval=1,
                   checkpoint_interval=0, preview_interval=0, vgg_weights=str(vgg), progress=False,
                   amp=False)  # fp32 everywhere: the equivalence tests compare to tight tolerances
    options.update(overrides)
    return TrainConfig(**options)


# --- tiny random-weight models and smooth photos (shared by the ablation and report tests) ---------------------

#: Side of the synthetic photos of the ablation tests.
SIZE = 32


def make_tiny_model(path: Path, norm: str, seed: int = 0) -> Path:
    """Width-8, one-block net with perturbed γ/β/SN logits, BN/SN running stats warmed up, O(1) output."""
    from styler.io.modelfile import save_model
    from styler.nn.network import ArchSpec, TransformerNet
    from styler.nn.norms import NormSpec, SwitchNorm2d

    torch.manual_seed(seed)
    spec = NormSpec.parse(norm)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1, norm=spec))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                continue
            if getattr(module, "weight", None) is not None:
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
            if isinstance(module, SwitchNorm2d):
                module.mean_logits.normal_()
                module.var_logits.normal_()
        # The net divides by 255 at the end; scale the last conv so outputs are O(1) like norms.md's test net.
        net.decoder[2].conv.weight.mul_(255)
        net.decoder[2].conv.bias.mul_(255)
        net.train()
        for _ in range(4):
            net(torch.rand(2, 3, SIZE, SIZE))
    net.eval()
    return save_model(path, net, {"name": path.stem, "style": {"name": "random"}, "norm": spec.to_dict(),
                                  "training": {"steps": 7}})


def smooth_photo(seed: int, size: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((4, 4, 3))
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return np.clip(arr + 0.05 * rng.standard_normal(arr.shape), 0, 1)
