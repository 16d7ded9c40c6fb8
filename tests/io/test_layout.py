"""The torch-free tensor layout agrees with the torch network for every registered norm kind and its variants."""

from __future__ import annotations

import pytest
import torch

from styler.io.layout import expected_tensors, legacy_norm_keys, parameter_count
from styler.nn.network import ArchSpec, TransformerNet, count_parameters
from styler.nn.norms import NormSpec
from styler.nn.registry import NORM_KINDS

VARIANTS = [NormSpec.parse(kind) for kind in NORM_KINDS] + [
    NormSpec.parse("gn:4"), NormSpec.parse("sn+bn"), NormSpec.parse("sn+bn", using_moving_average=False),
    NormSpec.parse("cin:3"), NormSpec.parse("bn", momentum=None)]


def _kind(tensor: torch.Tensor) -> str:
    return "bool" if tensor.dtype == torch.bool else "float" if tensor.is_floating_point() else "int"


def test_every_registered_kind_has_a_layout() -> None:
    for kind in NORM_KINDS:
        expected_tensors(ArchSpec(width=8, residual_blocks=1, norm=NormSpec.parse(kind)))


@pytest.mark.parametrize("blocks", [0, 2])
@pytest.mark.parametrize("spec", VARIANTS, ids=[f"{s.short_name}-{s.using_moving_average}" for s in VARIANTS])
def test_layout_matches_the_network(spec: NormSpec, blocks: int) -> None:
    arch = ArchSpec(width=8, residual_blocks=blocks, norm=spec)
    net = TransformerNet(arch)
    state = net.state_dict()
    layout = expected_tensors(arch)
    assert list(layout) == list(state)  # same names, same order (error messages name the first difference)
    for key, tensor in state.items():
        assert layout[key].shape == tuple(tensor.shape), key
        assert layout[key].kind == _kind(tensor), key
    parameters = {name for name, _ in net.named_parameters()}
    assert {k for k, v in layout.items() if v.parameter} == parameters
    assert parameter_count(arch) == count_parameters(net)


def test_legacy_keys_only_for_instance_norm() -> None:
    keys = legacy_norm_keys(ArchSpec(width=8, residual_blocks=1))
    assert "encoder.0.norm.running_mean" in keys and "decoder.2.norm.running_mean" not in keys
    assert len(keys) == 7 * 3
    assert legacy_norm_keys(ArchSpec(width=8, residual_blocks=1, norm=NormSpec.parse("bn"))) == set()
