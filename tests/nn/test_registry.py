"""The norm registry: every kind has one entry and one implementation module, and the rest of styler asks them."""

from __future__ import annotations

import subprocess
import sys
from types import ModuleType

import pytest
import torch
from torch import nn

from styler.nn import registry
from styler.nn.kinds import for_module, implementation
from styler.nn.norms import make_norm
from styler.nn.spec import ArchSpec, NormSpec

INTERFACE = ("MODULE_TYPES", "IMAGE_STATISTICS", "build", "freeze_affine", "synchronized", "mixes_batch")


def missing_interface(module: ModuleType) -> list[str]:
    return [name for name in INTERFACE if not hasattr(module, name)]


@pytest.mark.parametrize("kind", registry.NORM_KINDS)
def test_every_kind_has_a_complete_implementation(kind: str) -> None:
    impl = implementation(kind)
    assert missing_interface(impl) == []
    layer = make_norm(kind, 16)
    if kind == "none":
        assert isinstance(layer, nn.Identity) and for_module(layer) is None
    else:
        assert for_module(layer) is impl, f"{kind}: the built layer is not recognised as its own kind"


def test_interface_check_catches_an_incomplete_module() -> None:
    """Negative control: a module lacking part of the interface is reported."""
    incomplete = ModuleType("incomplete")
    incomplete.build = lambda spec, c: nn.Identity()  # type: ignore[attr-defined]
    assert set(missing_interface(incomplete)) == set(INTERFACE) - {"build"}


def test_aliases_and_choices() -> None:
    assert registry.norm_choices() == ["instance", "in", "batch", "bn", "group", "gn", "layer", "ln",
                                       "switchable", "sn", "conditional", "cin", "none"]
    for alias, name in registry.NORM_ALIASES.items():
        assert registry.canonical_norm_name(alias.upper()) == name
    with pytest.raises(ValueError, match="valid norms: instance"):
        registry.canonical_norm_name("weight")


@pytest.mark.parametrize("text, batch_dependent, running", [
    ("in", False, False), ("bn", True, True), ("gn", False, False), ("ln", False, False),
    ("sn", False, False), ("sn+bn", True, True), ("none", False, False)])
def test_registry_answers_match_the_layers(text: str, batch_dependent: bool, running: bool) -> None:
    """What the torch-free registry says about a spec agrees with how its built layer behaves in training."""
    spec = NormSpec.parse(text, groups=4)
    assert spec.batch_dependent_in_training is batch_dependent
    assert spec.uses_running_statistics is running
    layer = make_norm(spec, 8).train()
    impl = for_module(layer)
    assert (impl is not None and impl.mixes_batch(layer)) is batch_dependent
    x = torch.randn(3, 8, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        alone, together = layer(x[:1]), layer(x)[:1]
    assert (not torch.allclose(alone, together, atol=1e-5)) is batch_dependent


def test_group_divisibility_is_checked_without_torch_layers() -> None:
    with pytest.raises(ValueError, match="not divisible by 3 groups"):
        ArchSpec(width=16, norm=NormSpec.parse("gn:3")).validate()
    ArchSpec(width=16, norm=NormSpec.parse("gn:4")).validate()


def test_specs_import_without_torch() -> None:
    code = ("import sys; import styler.nn.spec, styler.nn.registry; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
