"""Package metadata: one version, the Pythons tested, a light base install, the typing marker, the zoo as data."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

import styler

REPO = Path(__file__).resolve().parents[2]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+; the wheel test checks the built metadata on any Python


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_one_source_for_the_version(project: dict) -> None:
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "styler.__version__"}
    assert metadata.version("styler") == styler.__version__


def test_pythons_tested_and_classifiers(project: dict) -> None:
    meta = project["project"]
    assert meta["requires-python"] == ">=3.10,<3.13"
    versions = sorted(c.rsplit(" ", 1)[1] for c in meta["classifiers"]
                      if c.startswith("Programming Language :: Python :: 3.") and c.count("::") == 2)
    assert versions == ["3.10", "3.11", "3.12"] and "Typing :: Typed" in meta["classifiers"]
    assert (3, 10) <= sys.version_info[:2] <= (3, 12)


def test_the_base_install_has_no_torch(project: dict) -> None:
    names = {dep.split(">")[0].split("=")[0].split("<")[0].strip() for dep in project["project"]["dependencies"]}
    assert names == {"pillow", "click", "tqdm", "numpy", "onnxruntime", "safetensors"}
    train = {dep.split(">")[0].split("=")[0].split("<")[0].strip()
             for dep in project["project"]["optional-dependencies"]["train"]}
    assert train == {"torch", "torchvision", "matplotlib", "onnx"}
    pins = {line.split("==")[0] for line in (REPO / "constraints.txt").read_text().splitlines() if "==" in line}
    assert names | train <= pins  # every dependency is pinned for `make install`


def test_typing_marker_and_zoo_are_package_data(project: dict) -> None:
    assert (REPO / "styler" / "py.typed").is_file()
    data = project["tool"]["setuptools"]["package-data"]["styler"]
    assert "py.typed" in data and "models/*.safetensors" in data and "models/*.onnx" in data
    assert "models/*.onnx.json" in data and "models/MANIFEST.json" in data
