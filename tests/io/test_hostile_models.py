"""Hostile and broken model files (issue #19): every one is a clear ModelFileError (exit code 1 in the CLI), random
bytes are "not a styler model file", and no file ever runs code."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import read_v2, trained_net, write_v2
from PIL import Image

from styler.cli import main
from styler.errors import ModelFileError
from styler.io.modelfile import load_model, read_model_info, save_model
from styler.io.modelformat import MAX_HEADER_BYTES

pytestmark = pytest.mark.usefixtures("single_thread")

MARKER = "styler-hostile-marker"


class RunsCode:
    """Unpickling this would create a marker file: the proof that a loader ran code from the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle's protocol
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def good(tmp_path: Path) -> Path:
    return save_model(tmp_path / "good.safetensors", trained_net("in"), {"name": "good"})


def _with_header(path: Path, header: bytes, body: bytes = b"", length: int | None = None) -> Path:
    path.write_bytes((len(header) if length is None else length).to_bytes(8, "little") + header + body)
    return path


def _both_refuse(path: Path, *fragments: str) -> str:
    for reader in (read_model_info, load_model):
        with pytest.raises(ModelFileError) as info:
            reader(path)
        for fragment in fragments:
            assert fragment in str(info.value), str(info.value)
    return str(info.value)


def _split(good: Path) -> tuple[dict, bytes]:
    data = good.read_bytes()
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + length]), data[8 + length:]


def test_oversized_header_is_refused_before_reading_it(tmp_path: Path, good: Path) -> None:
    header, body = _split(good)
    path = _with_header(tmp_path / "big.safetensors", json.dumps(header).encode(), body, length=1 << 40)
    _both_refuse(path, "header claims", f"{MAX_HEADER_BYTES:,}")
    claims_more = _with_header(tmp_path / "short.safetensors", b'{"a": 1}', b"", length=5000)
    _both_refuse(claims_more, "truncated")


def test_tampered_offsets_dtypes_and_json(tmp_path: Path, good: Path) -> None:
    header, body = _split(good)
    key = next(k for k in header if k != "__metadata__")
    overlapping = json.loads(json.dumps(header))
    overlapping[key]["data_offsets"] = [0, overlapping[key]["data_offsets"][1] - 4]
    _both_refuse(_with_header(tmp_path / "overlap.safetensors", json.dumps(overlapping).encode(), body),
                 "damaged safetensors")
    unknown = json.loads(json.dumps(header))
    unknown[key]["dtype"] = "Q99"
    _both_refuse(_with_header(tmp_path / "dtype.safetensors", json.dumps(unknown).encode(), body),
                 "damaged safetensors")
    _both_refuse(_with_header(tmp_path / "json.safetensors", b"{not json at all", body), "damaged safetensors header")
    odd = json.loads(json.dumps(header))
    odd["__metadata__"] = ["not", "a", "dict"]
    _both_refuse(_with_header(tmp_path / "meta.safetensors", json.dumps(odd).encode(), body), "damaged")
    offsets = json.loads(json.dumps(header))
    offsets[key]["data_offsets"] = "everywhere"
    _both_refuse(_with_header(tmp_path / "offsets.safetensors", json.dumps(offsets).encode(), body), "data_offsets")


def test_implausible_or_inconsistent_architecture(tmp_path: Path, good: Path) -> None:
    fields, tensors = read_v2(good)
    arch = json.loads(fields["arch"])
    huge = write_v2(tmp_path / "huge.safetensors", {**fields, "arch": json.dumps({**arch, "width": 10**6})}, tensors)
    _both_refuse(huge, "implausible architecture", "width")
    groups = {**arch, "norm": {**arch["norm"], "kind": "group", "groups": 3}}
    bad_groups = write_v2(tmp_path / "groups.safetensors", {**fields, "arch": json.dumps(groups)}, tensors)
    _both_refuse(bad_groups, "inconsistent architecture", "groups")


@pytest.mark.parametrize("wrapper", ["raw pickle", "torch archive"])
def test_code_in_a_pth_never_runs(tmp_path: Path, wrapper: str) -> None:
    marker = tmp_path / MARKER
    path = tmp_path / "evil.pth"
    payload = {"format": "styler-model", "format_version": 1, "arch": "{}", "state_dict": {"x": RunsCode(marker)}}
    if wrapper == "raw pickle":
        path.write_bytes(pickle.dumps(payload, protocol=2))
    else:
        torch.save(payload, path)
    message = _both_refuse(path, "evil.pth", "weights_only")
    assert "not loaded" in message
    assert not marker.exists()


def test_the_container_comes_from_the_content_not_the_name(tmp_path: Path, good: Path) -> None:
    from model_helpers import save_v1

    renamed = tmp_path / "actually_v2.pth"
    renamed.write_bytes(good.read_bytes())
    assert read_model_info(renamed)["format_version"] == 2
    v1 = save_v1(tmp_path / "actually_v1.safetensors", trained_net("in"))
    assert read_model_info(v1)["format_version"] == 1 and load_model(v1).arch.norm.kind == "instance"


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code or 0), capsys.readouterr().err


@pytest.mark.parametrize("content", ["random", "header", "pickle"])
def test_cli_says_one_line_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    monkeypatch.setenv("STYLER_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "bad.safetensors"
    if content == "random":
        bad.write_bytes(np.random.default_rng(0).bytes(2048))
    elif content == "header":
        _with_header(bad, b'{"__metadata__": {"format": "styler-model"}}', length=1 << 33)
    else:
        bad.write_bytes(pickle.dumps({"x": RunsCode(tmp_path / MARKER)}, protocol=2))
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(photo)
    for args in (["info", str(bad)], ["apply", str(photo), "-m", str(bad)]):
        code, err = _cli(args, capsys)
        assert code == 1 and err.startswith("error: ") and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err
        if content == "random":
            assert "not a styler model file" in err and "Python objects" not in err
    assert not (tmp_path / MARKER).exists()
