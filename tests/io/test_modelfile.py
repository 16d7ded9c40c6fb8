"""Model files: exact round trips for every norm, fp16 storage, refusal of broken/foreign files, legacy keys (T25)."""

from __future__ import annotations

import copy
import json
import os

import pytest
import torch
from torch import nn

from styler.train.checkpoints import save_checkpoint
from styler.errors import ModelFileError
from styler.io.modelfile import load_model, read_model_info, save_model
from styler.nn.network import ArchSpec, TransformerNet
from styler.nn.norms import NormSpec, SwitchNorm2d

pytestmark = pytest.mark.usefixtures("single_thread")

NORMS = ["in", "bn", "gn", "ln", "sn", "sn+bn", "none"]
NORM_MODULES = (nn.InstanceNorm2d, nn.GroupNorm, nn.BatchNorm2d, SwitchNorm2d)


class NotPlainData:
    """A custom object: a weights_only load must refuse to unpickle it."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]


_CACHE: dict[tuple[str, int], TransformerNet] = {}


def trained_net(norm: str, width: int = 8) -> TransformerNet:
    """A small net with perturbed γ/β/logits and warmed-up running statistics (a fresh copy per call)."""
    if (norm, width) not in _CACHE:
        _CACHE[norm, width] = _build_trained(norm, width)
    return copy.deepcopy(_CACHE[norm, width])


def _build_trained(norm: str, width: int) -> TransformerNet:
    torch.manual_seed(21)
    net = TransformerNet(ArchSpec(width=width, residual_blocks=1, norm=NormSpec.parse(norm)))
    gen = torch.Generator().manual_seed(22)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, NORM_MODULES) and getattr(module, "weight", None) is not None:
                module.weight.add_(0.3 * torch.randn(module.weight.shape, generator=gen))
                module.bias.add_(0.2 * torch.randn(module.bias.shape, generator=gen))
            if isinstance(module, SwitchNorm2d):
                module.mean_logits.add_(torch.randn(module.mean_logits.shape, generator=gen))
                module.var_logits.add_(torch.randn(module.var_logits.shape, generator=gen))
        net.train()
        for _ in range(20):
            net(torch.rand(2, 3, 16, 16, generator=gen))
    return net.eval()


def probe() -> torch.Tensor:
    return torch.rand(2, 3, 28, 36, generator=torch.Generator().manual_seed(23))


@pytest.mark.parametrize("norm", NORMS)
def test_round_trip_identical_outputs(norm, tmp_path):
    net = trained_net(norm)
    path = save_model(tmp_path / f"{norm}.pth", net, {"name": f"test-{norm}", "style": "starry"})
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
    if norm in ("bn", "sn+bn"):
        # The running statistics matter: a net with the same parameters but fresh buffers computes something else.
        fresh = TransformerNet(net.arch).eval()
        fresh.load_state_dict({k: v for k, v in net.state_dict().items() if "running" not in k and
                               "num_batches" not in k}, strict=False)
        with torch.no_grad():
            assert (fresh(x) - expected).abs().max() > 1e-2 * expected.abs().max()


def test_file_loads_with_plain_weights_only_torch_load(tmp_path):
    path = save_model(tmp_path / "m.pth", trained_net("sn+bn"), {"name": "x"})
    data = torch.load(path, map_location="cpu", weights_only=True)
    assert data["format"] == "styler-model" and data["format_version"] == 1
    assert json.loads(data["arch"])["norm"]["using_bn"] is True
    assert all(isinstance(v, torch.Tensor) for v in data["state_dict"].values())
    info = read_model_info(path)
    assert info["arch"]["norm"]["kind"] == "switchable" and info["storage_dtype"] == "float32"
    assert info["parameters"] > 0 and len(info["sha256"]) == 64 and info["size_bytes"] == os.path.getsize(path)
    assert "running" in info["inference_statistics"]


@pytest.mark.parametrize("norm", ["in", "bn", "sn+bn"])
def test_fp16_storage_matches_fp32(norm, tmp_path):
    """fp16 weights (2^-11 relative rounding) change outputs by well under 1 % of their scale."""
    net = trained_net(norm, width=16)
    full = save_model(tmp_path / "full.pth", net)
    half = save_model(tmp_path / "half.pth", net, half=True)
    assert os.path.getsize(half) < 0.6 * os.path.getsize(full)
    raw = torch.load(half, weights_only=True)
    assert raw["storage_dtype"] == "float16"
    assert raw["state_dict"]["encoder.0.conv.weight"].dtype == torch.float16
    if norm == "bn":
        assert raw["state_dict"]["encoder.0.norm.running_var"].dtype == torch.float32
        assert raw["state_dict"]["encoder.0.norm.num_batches_tracked"].dtype == torch.int64
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
    return save_model(tmp_path / "good.pth", trained_net("in"), {"name": "good"})


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


def test_truncated_file(good_file, tmp_path):
    data = good_file.read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    expect_error(cut, "truncated", "cut.pth")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.pth"
    path.write_bytes(os.urandom(4096))
    expect_error(path, "cannot read", "noise.pth")


def test_raw_state_dict(tmp_path):
    path = tmp_path / "raw.pth"
    torch.save(trained_net("in").state_dict(), path)
    expect_error(path, "not a styler model file", "bare state_dict")


def test_training_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pth"
    save_checkpoint(path, {"step": 10, "model": trained_net("in").state_dict()})
    expect_error(path, "training checkpoint", "--resume")


def test_state_does_not_match_declared_arch(good_file, tmp_path):
    data = torch.load(good_file, weights_only=True)
    arch = json.loads(data["arch"])
    arch["width"] = 16
    data["arch"] = json.dumps(arch)
    wider = tmp_path / "wider.pth"
    torch.save(data, wider)
    # (read_model_info only reads the header, so this needs load_model, which rebuilds the network.)
    with pytest.raises(ModelFileError) as info:
        load_model(wider)
    for fragment in ("do not match the architecture", "width 16", "shape mismatch", "wider.pth"):
        assert fragment in str(info.value)
    # Declared BN but holding IN weights: the running statistics are missing.
    data = torch.load(good_file, weights_only=True)
    arch = json.loads(data["arch"])
    arch["norm"]["kind"] = "batch"
    data["arch"] = json.dumps(arch)
    declared_bn = tmp_path / "declared_bn.pth"
    torch.save(data, declared_bn)
    with pytest.raises(ModelFileError, match=r"missing \d+ tensors .*running_mean"):
        load_model(declared_bn)
    # An unknown extra tensor.
    data = torch.load(good_file, weights_only=True)
    data["state_dict"]["encoder.9.conv.weight"] = torch.zeros(1)
    extra = tmp_path / "extra.pth"
    torch.save(data, extra)
    with pytest.raises(ModelFileError, match="unexpected tensors"):
        load_model(extra)


def test_damaged_header_and_newer_format(good_file, tmp_path):
    data = torch.load(good_file, weights_only=True)
    data["arch"] = "{not json"
    broken = tmp_path / "broken.pth"
    torch.save(data, broken)
    expect_error(broken, "damaged model header")
    data = torch.load(good_file, weights_only=True)
    data["format_version"] = 99
    newer = tmp_path / "newer.pth"
    torch.save(data, newer)
    expect_error(newer, "newer styler")
    other = tmp_path / "list.pth"
    torch.save([1, 2, 3], other)
    expect_error(other, "not a styler model")


def test_pickled_custom_object_is_refused(good_file, tmp_path):
    data = torch.load(good_file, weights_only=True)
    data["metadata_object"] = NotPlainData()
    path = tmp_path / "pickled.pth"
    torch.save(data, path)
    expect_error(path, "weights_only", "pickled.pth")


def test_legacy_instance_norm_keys_are_stripped_and_reported(tmp_path):
    """T25: pre-0.4 IN checkpoints carry running_* keys; they are dropped, reported and the outputs are unchanged."""
    net = trained_net("in")
    path = save_model(tmp_path / "m.pth", net)
    data = torch.load(path, weights_only=True)
    assert not any("running" in k or "num_batches" in k for k in data["state_dict"])
    in_modules = [name for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(in_modules) == 7  # 3 encoder + 2 per residual block + 2 decoder
    added = []
    for name in in_modules:
        channels = data["state_dict"][f"{name}.weight"].shape[0]
        for suffix, value in (("running_mean", torch.randn(channels)), ("running_var", torch.rand(channels) + 1),
                              ("num_batches_tracked", torch.tensor(5))):
            data["state_dict"][f"{name}.{suffix}"] = value
            added.append(f"{name}.{suffix}")
    legacy = tmp_path / "legacy.pth"
    torch.save(data, legacy)
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
    save_model(path, TransformerNet(ArchSpec(width=8, residual_blocks=1)))
    data = torch.load(path, weights_only=True)
    data["arch"] = data["arch"].replace('"width": 8', '"width": 16')
    torch.save(data, path)
    with pytest.raises(ModelFileError, match="do not match the architecture"):
        read_model_info(path)
