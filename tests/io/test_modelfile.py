"""Model files: exact round trips for every norm in both formats, fp16 storage, v1 compatibility, refusal of broken or
foreign files, legacy keys (T25). Hostile inputs in detail: test_hostile_models.py."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest
import torch
from model_helpers import edit_v2, probe, read_v2, save_v1, trained_net, write_v2
from torch import nn

from styler.errors import ModelFileError
from styler.io.modelfile import load_model, read_model_info, save_model
from styler.nn.network import ArchSpec, TransformerNet
from styler.train.checkpoints import save_checkpoint

pytestmark = pytest.mark.usefixtures("single_thread")

NORMS = ["in", "bn", "gn", "ln", "sn", "sn+bn", "none"]
WRITERS = {"v2": save_model, "v1": save_v1}


class NotPlainData:
    """A custom object: a weights_only load must refuse to unpickle it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


@pytest.mark.parametrize("version", list(WRITERS))
@pytest.mark.parametrize("norm", NORMS)
def test_round_trip_identical_outputs(norm, version, tmp_path):
    net = trained_net(norm)
    path = WRITERS[version](tmp_path / f"{norm}.pth", net, {"name": f"test-{norm}", "style": "starry"})
    loaded = load_model(path)
    assert loaded.arch == net.arch
    assert loaded.metadata["name"] == f"test-{norm}" and loaded.metadata["style"] == "starry"
    assert "styler_version" in loaded.metadata and loaded.dropped_keys == []
    assert not loaded.net.training
    for key, value in net.state_dict().items():
        assert torch.equal(loaded.net.state_dict()[key], value), key
    x = probe()
    with torch.no_grad():
        expected, got = net(x), loaded.net(x)
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    assert read_model_info(path)["format_version"] == int(version[1])
    if norm in ("bn", "sn+bn"):
        # The running statistics matter: a net with the same parameters but fresh buffers computes something else.
        fresh = TransformerNet(net.arch).eval()
        fresh.load_state_dict({k: v for k, v in net.state_dict().items() if "running" not in k and
                               "num_batches" not in k}, strict=False)
        with torch.no_grad():
            assert (fresh(x) - expected).abs().max() > 1e-2 * expected.abs().max()


def test_v1_file_loads_with_plain_weights_only_torch_load(tmp_path):
    path = save_v1(tmp_path / "m.pth", trained_net("sn+bn"), {"name": "x"})
    data = torch.load(path, map_location="cpu", weights_only=True)
    assert data["format"] == "styler-model" and data["format_version"] == 1
    assert json.loads(data["arch"])["norm"]["using_bn"] is True
    assert all(isinstance(v, torch.Tensor) for v in data["state_dict"].values())
    info = read_model_info(path)
    assert info["arch"]["norm"]["kind"] == "switchable" and info["storage_dtype"] == "float32"
    assert info["parameters"] > 0 and len(info["sha256"]) == 64 and info["size_bytes"] == os.path.getsize(path)
    assert "running" in info["inference_statistics"]


def test_v2_file_is_plain_safetensors_readable_with_numpy(tmp_path):
    """save_model writes safetensors whatever the name; numpy and the header alone read it (no torch needed)."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    net = trained_net("sn+bn")
    path = save_model(tmp_path / "m.pth", net, {"name": "x"})
    assert path.read_bytes()[8:9] == b"{"
    with safe_open(str(path), framework="numpy") as handle:
        fields = handle.metadata()
    assert fields["format"] == "styler-model" and fields["format_version"] == "2"
    assert json.loads(fields["arch"])["norm"]["using_bn"] is True and json.loads(fields["metadata"])["name"] == "x"
    arrays = load_file(str(path))
    assert sorted(arrays) == sorted(net.state_dict()) and all(isinstance(a, np.ndarray) for a in arrays.values())
    info = read_model_info(path)
    assert info["arch"]["norm"]["kind"] == "switchable" and info["storage_dtype"] == "float32"
    assert info["parameters"] == sum(p.numel() for p in net.parameters())
    assert len(info["sha256"]) == 64 and info["size_bytes"] == os.path.getsize(path)
    assert "running" in info["inference_statistics"] and info["format_version"] == 2


@pytest.mark.parametrize("version", list(WRITERS))
@pytest.mark.parametrize("norm", ["in", "bn", "sn+bn"])
def test_fp16_storage_matches_fp32(norm, version, tmp_path):
    """fp16 weights (2^-11 relative rounding) change outputs by well under 1 % of their scale."""
    net = trained_net(norm, width=16)
    full = WRITERS[version](tmp_path / "full.pth", net)
    half = WRITERS[version](tmp_path / "half.pth", net, half=True)
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    if version == "v1":
        raw = torch.load(half, weights_only=True)
        storage, state = raw["storage_dtype"], raw["state_dict"]
    else:
        fields, state = read_v2(half)
        storage = fields["storage_dtype"]
    assert storage == "float16"
    assert state["encoder.0.conv.weight"].dtype == torch.float16
    if norm == "bn":
        assert state["encoder.0.norm.running_var"].dtype == torch.float32
        assert state["encoder.0.norm.num_batches_tracked"].dtype == torch.int64
    loaded = load_model(half).net
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = probe()
    with torch.no_grad():
        expected, got = net(x), loaded(x)
    error = (got - expected).abs().max().item()
    assert 0 < error < 5e-3 * expected.abs().max().item()
    assert read_model_info(half)["storage_dtype"] == "float16"


@pytest.fixture
def good_file(tmp_path):
    return save_model(tmp_path / "good.safetensors", trained_net("in"), {"name": "good"})


@pytest.fixture
def good_v1(tmp_path):
    return save_v1(tmp_path / "good.pth", trained_net("in"), {"name": "good"})


def expect_error(path, *fragments):
    for reader in (load_model, read_model_info):
        with pytest.raises(ModelFileError) as info:
            reader(path)
        message = str(info.value)
        for fragment in fragments:
            assert fragment in message, message
    return message


def test_missing_and_empty_files(tmp_path):
    expect_error(tmp_path / "absent.pth", "not found", "absent.pth")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    expect_error(empty, "empty", "empty.pth")
    expect_error(tmp_path, "directory")


@pytest.mark.parametrize("which", ["good_file", "good_v1"])
def test_truncated_file(which, tmp_path, request):
    data = request.getfixturevalue(which).read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    expect_error(cut, "truncated", "cut.pth")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(os.urandom(4096))
    message = expect_error(path, "cannot read", "noise.pth", "not a styler model file")
    assert "Python objects" not in message


def test_raw_state_dict(tmp_path):
    path = tmp_path / "raw.pth"
    torch.save(trained_net("in").state_dict(), path)
    expect_error(path, "not a styler model file", "bare state_dict")
    foreign = write_v2(tmp_path / "foreign.safetensors", {}, trained_net("in").state_dict())
    expect_error(foreign, "not a styler model file", "bare state_dict")


def test_training_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, {"step": 10, "model": trained_net("in").state_dict()})
    expect_error(path, "training checkpoint", "--resume")


def test_state_does_not_match_declared_arch(good_v1, tmp_path):
    data = torch.load(good_v1, weights_only=True)
    arch = json.loads(data["arch"])
    arch["width"] = 16
    data["arch"] = json.dumps(arch)
    wider = tmp_path / "wider.pth"
    torch.save(data, wider)
    with pytest.raises(ModelFileError) as info:
        load_model(wider)
    for fragment in ("do not match the architecture", "width 16", "shape mismatch", "wider.pth"):
        assert fragment in str(info.value)
    # Declared BN but holding IN weights: the running statistics are missing.
    data = torch.load(good_v1, weights_only=True)
    arch = json.loads(data["arch"])
    arch["norm"]["kind"] = "batch"
    data["arch"] = json.dumps(arch)
    declared_bn = tmp_path / "declared_bn.pth"
    torch.save(data, declared_bn)
    with pytest.raises(ModelFileError, match=r"missing \d+ tensors .*running_mean"):
        load_model(declared_bn)
    # An unknown extra tensor.
    data = torch.load(good_v1, weights_only=True)
    data["state_dict"]["encoder.9.conv.weight"] = torch.zeros(1)
    extra = tmp_path / "extra.pth"
    torch.save(data, extra)
    with pytest.raises(ModelFileError, match="unexpected tensors"):
        load_model(extra)


def test_v2_state_does_not_match_declared_arch(good_file, tmp_path):
    arch = json.loads(read_v2(good_file)[0]["arch"])
    wider = edit_v2(good_file, tmp_path / "wider.safetensors", arch_dict={**arch, "width": 16})
    for fragment in ("do not match the architecture", "width 16", "shape mismatch", "wider.safetensors"):
        assert fragment in expect_error(wider, fragment)
    declared_bn = edit_v2(good_file, tmp_path / "bn.safetensors", arch_dict={**arch, "norm": {**arch["norm"],
                                                                                          "kind": "batch"}})
    with pytest.raises(ModelFileError, match=r"missing \d+ tensors .*running_mean"):
        read_model_info(declared_bn)
    fields, tensors = read_v2(good_file)
    extra = write_v2(tmp_path / "extra.safetensors", fields, {**tensors, "encoder.9.conv.weight": torch.zeros(1)})
    expect_error(extra, "unexpected tensors")
    ints = write_v2(tmp_path / "ints.safetensors", fields,
                    {**tensors, "encoder.0.conv.weight": tensors["encoder.0.conv.weight"].to(torch.int32)})
    expect_error(ints, "dtype mismatch", "encoder.0.conv.weight")


def test_damaged_header_and_newer_format(good_v1, good_file, tmp_path):
    data = torch.load(good_v1, weights_only=True)
    data["arch"] = "{not json"
    broken = tmp_path / "broken.pth"
    torch.save(data, broken)
    expect_error(broken, "damaged model header")
    data = torch.load(good_v1, weights_only=True)
    data["format_version"] = 99
    newer = tmp_path / "newer.pth"
    torch.save(data, newer)
    expect_error(newer, "newer styler")
    other = tmp_path / "list.pth"
    torch.save([1, 2, 3], other)
    expect_error(other, "not a styler model")
    expect_error(edit_v2(good_file, tmp_path / "b.safetensors", arch="{not json"), "damaged model header")
    expect_error(edit_v2(good_file, tmp_path / "m.safetensors", metadata="[1, 2]"), "damaged model header")
    expect_error(edit_v2(good_file, tmp_path / "n.safetensors", format_version="99"), "newer styler")
    expect_error(edit_v2(good_file, tmp_path / "v.safetensors", format_version="two"), "damaged model header")


def test_pickled_custom_object_is_refused(good_v1, tmp_path):
    data = torch.load(good_v1, weights_only=True)
    data["metadata_object"] = NotPlainData()
    path = tmp_path / "pickled.pth"
    torch.save(data, path)
    expect_error(path, "weights_only", "pickled.pth")


@pytest.mark.parametrize("version", list(WRITERS))
def test_legacy_instance_norm_keys_are_stripped_and_reported(version, tmp_path):
    """T25: pre-0.4 IN checkpoints carry running_* keys; they are dropped, reported and the outputs are unchanged."""
    net = trained_net("in")
    path = WRITERS[version](tmp_path / "m.pth", net)
    if version == "v1":
        data = torch.load(path, weights_only=True)
        state = data["state_dict"]
    else:
        fields, state = read_v2(path)
    assert not any("running" in k or "num_batches" in k for k in state)
    in_modules = [name for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(in_modules) == 7  # 3 encoder + 2 per residual block + 2 decoder
    added = []
    for name in in_modules:
        channels = state[f"{name}.weight"].shape[0]
        for suffix, value in (("running_mean", torch.randn(channels)), ("running_var", torch.rand(channels) + 1),
                              ("num_batches_tracked", torch.tensor(5))):
            state[f"{name}.{suffix}"] = value
            added.append(f"{name}.{suffix}")
    legacy = tmp_path / "legacy.pth"
    if version == "v1":
        torch.save(data, legacy)
    else:
        write_v2(legacy, fields, state)
    loaded = load_model(legacy)
    assert sorted(loaded.dropped_keys) == sorted(added)
    x = probe()
    with torch.no_grad():
        torch.testing.assert_close(loaded.net(x), net(x), atol=0, rtol=0)
    assert read_model_info(legacy)["parameters"] == read_model_info(path)["parameters"]


def test_bn_running_stats_are_not_treated_as_legacy(tmp_path):
    net = trained_net("bn")
    path = save_model(tmp_path / "bn.pth", net)
    loaded = load_model(path)
    assert loaded.dropped_keys == []
    torch.testing.assert_close(loaded.net.encoder[0].norm.running_var, net.encoder[0].norm.running_var)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    net = trained_net("in")
    target = tmp_path / "sub" / "model.pth"
    save_model(target, net)
    save_model(target, copy.deepcopy(net))  # overwrite in place
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.pth"]
    load_model(target)


def test_info_refuses_weights_that_do_not_match_the_declared_network(tmp_path):
    path = tmp_path / "m.pth"
    save_v1(path, TransformerNet(ArchSpec(width=8, residual_blocks=1)))
    data = torch.load(path, weights_only=True)
    data["arch"] = data["arch"].replace('"width": 8', '"width": 16')
    torch.save(data, path)
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        read_model_info(path)
    v2 = save_model(tmp_path / "m.safetensors", TransformerNet(ArchSpec(width=8, residual_blocks=1)))
    arch = json.loads(read_v2(v2)[0]["arch"])
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        read_model_info(edit_v2(v2, v2, arch_dict={**arch, "width": 16}))
