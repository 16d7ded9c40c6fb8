"""Helpers of the scripts' tests: import a script as a module, and tiny multi-style models."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[2]


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` as a module (the scripts are files, not a package); loaded once per test session."""
    key = f"_script_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, REPO / "scripts" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def tiny_cin_net(styles: int, seed: int = 0) -> torch.nn.Module:
    """Width-8, one-block conditional-norm net whose styles' (γ, β) differ a lot, with outputs of O(1)."""
    from styler.nn.kinds.conditional import ConditionalInstanceNorm2d
    from styler.nn.network import TransformerNet
    from styler.nn.spec import ArchSpec, NormSpec

    torch.manual_seed(seed)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1, norm=NormSpec.parse(f"cin:{styles}"))).eval()
    with torch.no_grad():
        for layer in net.modules():
            if isinstance(layer, ConditionalInstanceNorm2d):
                layer.weight.uniform_(0.2, 3.0)
                layer.bias.uniform_(-1.0, 1.0)
        net.decoder[2].conv.weight.mul_(50)
    return net


def save_cin_model(path: Path, records: list[dict[str, Any]], *, seed: int = 0, half: bool = False,
                   **metadata: Any) -> Path:
    """A tiny multi-style model file whose ``styles`` are ``records`` (and ``style`` the first of them)."""
    from styler.io.modelfile import save_model

    net = tiny_cin_net(len(records), seed)
    first = {k: v for k, v in records[0].items() if k != "style_weight"}
    return save_model(path, net, {"name": path.stem, "style": first, "styles": records, **metadata}, half=half)
