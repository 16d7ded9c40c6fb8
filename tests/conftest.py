"""Shared fixtures: the reference material (../shared or $STYLER_SHARED) and small helpers."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from PIL import Image

if TYPE_CHECKING:
    from styler.train.trainer import TrainConfig

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path | None:
    """The reference material folder, or None when it is absent (tests that need it are skipped with a reason)."""
    candidate = Path(os.environ.get("STYLER_SHARED", REPO.parent / "shared"))
    return candidate if (candidate / "weights").is_dir() else None


SHARED = shared_dir()
needs_shared = pytest.mark.skipif(SHARED is None, reason="reference material ../shared (or $STYLER_SHARED) absent")


@pytest.fixture(scope="session")
def shared() -> Path:
    if SHARED is None:
        pytest.skip("reference material ../shared (or $STYLER_SHARED) absent")
    return SHARED


@pytest.fixture(scope="session")
def vgg_weights(shared: Path) -> Path:
    return shared / "weights" / "vgg16-imagenet-caffe-features.pth"


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's many tiny-tensor tests on one intra-op thread, restoring the previous count afterwards.

    On the shared 2-core machine, two OpenMP threads on tiny convolutions spend most of their time waiting for
    each other under load (measured ~25x slower than one thread); the results do not depend on the thread count.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- training fixtures (shared by the training and distributed tests) ---------------------------------------

@pytest.fixture(scope="session")
def photos(tmp_path_factory, shared) -> Path:
    """Six real training photos, downscaled so that each step is cheap."""
    folder = tmp_path_factory.mktemp("photos")
    sources = sorted((shared / "data" / "content" / "train").rglob("*.jpg"))[::97][:6]
    for i, src in enumerate(sources):
        img = Image.open(src).convert("RGB")
        img.thumbnail((120, 120))
        (folder / ("sub" if i % 2 else "")).mkdir(exist_ok=True)
        img.save(folder / ("sub" if i % 2 else "") / f"p{i}.jpg", quality=92)
    return folder


@pytest.fixture(scope="session")
def style(shared) -> Path:
    return shared / "data" / "style" / "starry_night.jpg"


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
