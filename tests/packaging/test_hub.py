"""hubconf.py: torch.hub.load(repo, NAME, source="local") returns the bundled network, offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from styler.io.modelfile import load_model
from styler.io.zoo import BUNDLED_DIR, find_model, read_manifest

REPO = Path(__file__).resolve().parents[2]


def test_hub_loads_bundled_models_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # from another folder: the hub finds the repository by its path alone
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # nothing is downloaded; nothing lands in ~/.cache
    net = torch.hub.load(str(REPO), "starry_night_in", source="local")
    reference = load_model(find_model("starry_night_in")).net
    photo = torch.rand(1, 3, 36, 44, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(net(photo), reference(photo), atol=0, rtol=0)
    assert type(net).__name__ == "TransformerNet" and not net.training
    fresh = torch.hub.load(str(REPO), "starry_night_bn", source="local", pretrained=False)
    assert fresh.arch.norm.kind == "batch" and fresh.arch.width == 16


def test_hubconf_has_one_entry_point_per_bundled_model() -> None:
    """torch.hub offers every public callable of hubconf as a model: exactly the zoo, nothing else."""
    spec = importlib.util.spec_from_file_location("styler_hubconf", REPO / "hubconf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    public = sorted(name for name in dir(module) if not name.startswith("_") and callable(getattr(module, name)))
    assert public == sorted(entry["name"] for entry in read_manifest(BUNDLED_DIR)["models"])
    assert module.dependencies == ["torch", "safetensors"]
    assert "starry_night_in" in (module.starry_night_in.__doc__ or "")
