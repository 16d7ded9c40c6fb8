"""Fixtures for the web tests: a model folder of tiny networks and a test client on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

pytest.importorskip("fastapi", reason="the web extra (fastapi, uvicorn, python-multipart, httpx) is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from web_helpers import make_config  # noqa: E402

from styler.io.modelfile import save_model  # noqa: E402
from styler.nn.kinds.conditional import ConditionalInstanceNorm2d  # noqa: E402
from styler.nn.network import ArchSpec, TransformerNet  # noqa: E402
from styler.nn.spec import NormSpec  # noqa: E402
from styler.web.app import create_app  # noqa: E402

#: The tiny models of the test folder: name -> norm.
TINY = {"tiny_in": "instance", "tiny_bn": "batch"}


def _tiny_net(norm: str, seed: int) -> TransformerNet:
    """A small network whose norm parameters (and BN's running statistics) are not the identity."""
    torch.manual_seed(seed)
    net = TransformerNet(ArchSpec(width=8, residual_blocks=1, norm=NormSpec.parse(norm)))
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in net.modules():
            weight = getattr(module, "weight", None)
            if isinstance(module, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d, ConditionalInstanceNorm2d)) \
                    and weight is not None:
                weight.add_(0.3 * torch.randn(weight.shape, generator=gen))
                module.bias.add_(0.3 * torch.randn(module.bias.shape, generator=gen))
        net.train()
        for _ in range(5):
            net(torch.rand(2, 3, 24, 24, generator=gen))
    return net.eval()


@pytest.fixture(scope="session")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_in, tiny_bn and duo (a two-style conditional-instance-norm model with styles red and blue)."""
    folder = tmp_path_factory.mktemp("models")
    for i, (name, norm) in enumerate(TINY.items()):
        save_model(folder / f"{name}.safetensors", _tiny_net(norm, 10 + i),
                   {"name": name, "style": {"name": f"{name}_style"}})
    save_model(folder / "duo.safetensors", _tiny_net("cin:2", 30),
               {"name": "duo", "style": {"name": "red"}, "styles": [{"name": "red"}, {"name": "blue"}]})
    (folder / "broken.safetensors").write_bytes(b"not a model at all")
    return folder


@pytest.fixture
def models_env(model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STYLER_MODEL_DIR", str(model_folder))
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    return model_folder


@pytest.fixture
def client(models_env: Path) -> Iterator[TestClient]:
    with TestClient(create_app(make_config())) as test_client:
        yield test_client
