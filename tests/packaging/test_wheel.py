"""`pip install styler` for real: the wheel, in a fresh venv without torch, from another folder, lists the whole zoo,
stylizes a photo with the default model (the right style: it matches torch), and stays light (≤ 300 MB).

Offline after its first run: the dependencies' wheels (pinned by constraints.txt) are downloaded once into a
wheelhouse (``$STYLER_WHEELHOUSE``, default ``.whl/`` in the repository, git-ignored) and installed from there with
``--no-index``. Prints the numbers the README quotes: wheel size, install time, venv size.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styler.io.zoo import BUNDLED_DIR, read_manifest

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(os.environ.get("STYLER_WHEELHOUSE", REPO / ".whl"))
MAX_VENV_MB = 300


def _run(args: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, cwd=cwd, env=env)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


def _requirements(wheel: Path) -> list[str]:
    """The base Requires-Dist lines of a built wheel (the extras' lines carry a marker)."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode().splitlines()
    return sorted(line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("Requires-Dist:") and "extra ==" not in line)


def _wheelhouse(wheel: Path) -> Path:
    """The dependencies' pinned wheels, downloaded once per (requirements, constraints)."""
    constraints = REPO / "constraints.txt"
    key = hashlib.sha256(json.dumps([_requirements(wheel), constraints.read_text()]).encode()).hexdigest()[:16]
    stamp = WHEELHOUSE / f".complete-{key}"
    if not stamp.is_file():
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--dest", WHEELHOUSE,
              "-c", constraints, *_requirements(wheel)])
        stamp.write_text("\n".join(_requirements(wheel)) + "\n")
    return WHEELHOUSE


def _tree_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_without_torch(tmp_path: Path) -> None:
    dist, source = tmp_path / "dist", tmp_path / "source"
    # Built from a copy: an in-tree build would leave build/ and *.egg-info in the checkout, and a stale build/lib
    # could put deleted modules into the wheel.
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", ".whl", "build", "dist", "*.egg-info",
                                                                "__pycache__", ".*_cache", "demo-output", "runs"))
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, source])
    (wheel,) = dist.glob("styler-*.whl")
    assert not any(req.startswith(("torch", "torchvision", "matplotlib", "onnx ", "onnx>")) for req in
                   _requirements(wheel)), _requirements(wheel)
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
    assert "styler/py.typed" in shipped and "styler/models/MANIFEST.json" in shipped
    house = _wheelhouse(wheel)

    # Nothing of this checkout may leak in: no PYTHONPATH (pip would see the checkout's styler as installed), no
    # model or cache folders, a fresh HOME.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "STYLER_MODEL_DIR",
                                                                          "STYLER_CACHE_DIR", "XDG_CACHE_HOME")}
    env["HOME"] = str(tmp_path / "home")
    venv = tmp_path / "venv"
    started = time.perf_counter()
    _run([sys.executable, "-m", "venv", venv], env=env)
    _run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-index", "--find-links", house,
          "--find-links", dist, "-c", REPO / "constraints.txt", "styler"], env=env)
    install_seconds = time.perf_counter() - started
    probe = "import importlib.util as u; print([m for m in ('torch', 'torchvision', 'onnx') if u.find_spec(m)])"
    assert _run([venv / "bin" / "python", "-c", probe], env=env).stdout.strip() == "[]"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    styler = venv / "bin" / "styler"
    listed = _run([styler, "models"], cwd=elsewhere, env=env).stdout
    names = [entry["name"] for entry in read_manifest(BUNDLED_DIR)["models"]]
    assert len(names) >= 8 and all(name in listed for name in names) and "* starry_night_in" in listed
    assert str(venv) in listed  # the models are the installed package's data, not this checkout's

    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)).resize((160, 120), Image.BICUBIC)
    smooth.save(elsewhere / "photo.jpg", quality=95)
    applied = _run([styler, "apply", "photo.jpg"], cwd=elsewhere, env=env)
    out = elsewhere / "photo_starry_night_in.jpg"
    assert out.is_file(), applied.stderr
    styled = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    assert styled.shape == (120, 160, 3) and styled.std() > 5
    from styler.cli import main  # this checkout, with torch: the reference picture

    with pytest.raises(SystemExit) as exit_code:
        main(["apply", str(elsewhere / "photo.jpg"), "-o", str(tmp_path / "reference.jpg"), "--backend", "torch",
              "-q"])
    assert exit_code.value.code == 0
    reference = np.asarray(Image.open(tmp_path / "reference.jpg").convert("RGB"), dtype=np.float32)
    assert np.abs(styled - reference).mean() < 2.0  # the default model's style, up to JPEG rounding

    refused = subprocess.run([styler, "train", "-s", "a.jpg", "-d", "photos"], capture_output=True, text=True,
                             cwd=elsewhere, env=env, timeout=120)
    assert refused.returncode == 2 and "pip install 'styler[train]'" in refused.stderr
    assert "Traceback" not in refused.stderr

    venv_mb = _tree_bytes(venv) / 1e6
    print(f"\nwheel {wheel.stat().st_size / 1e6:.1f} MB; fresh venv + install {install_seconds:.1f} s; "
          f"apply-only venv {venv_mb:.0f} MB (limit {MAX_VENV_MB} MB)")
    assert venv_mb <= MAX_VENV_MB
