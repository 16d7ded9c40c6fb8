"""The norm registry: one entry per normalization kind, and the only place that knows what each kind *is*.

Why a registry: the norm ablation is styler's reason to exist, so every part of the program asks questions about
norms — the CLI (which names are valid), the report (what a norm normalizes over), the measurements (does it mix the
images of a batch? does eval differ from training?), tiling (how to freeze its statistics), distributed training
(its synchronized form). Before, each of those kept its own copy of the answer. Now each kind is one
:class:`NormKind` entry here plus one implementation module under :mod:`styler.nn.kinds` (the torch side:
``build``, ``freeze_affine``, ``synchronized``); adding a norm means adding exactly those two things.

This module is torch-free, so the CLI can list choices and a model file's header can be explained without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from styler.nn.spec import NormSpec

__all__ = ["NormKind", "NORMS", "NORM_KINDS", "NORM_ALIASES", "norm_kind", "canonical_norm_name", "norm_choices"]


def _never(spec: NormSpec) -> bool:
    return False


@dataclass(frozen=True)
class NormKind:
    """What styler knows about one normalization kind.

    Attributes:
        name: canonical name, stored in model files (``NormSpec.kind``).
        short: label for grids and tables (``IN``, ``BN``...); :attr:`label` may decorate it with options.
        aliases: other accepted spellings (lower case; ``-``/``_`` are ignored when matching).
        axes: what the statistics are computed over, in words (NCHW), for reports.
        implementation: module under :mod:`styler.nn.kinds` with the torch side of this kind.
        batch_dependent: whether a *training-mode* forward mixes statistics across the images of a batch.
        running_statistics: whether eval mode uses statistics accumulated in training (so eval computes a different
            function from training: the train/eval gap is worth measuring).
        inference_statistics: which statistics an eval forward normalizes with, in words (recorded in model files).
        label: the short label with the options that distinguish two specs of this kind (``GN(8)``, ``SN+BN``).
    """

    name: str
    short: str
    aliases: tuple[str, ...]
    axes: str
    implementation: str
    inference_statistics: Callable[[NormSpec], str]
    batch_dependent: Callable[[NormSpec], bool] = _never
    running_statistics: Callable[[NormSpec], bool] = _never
    label: Callable[[NormSpec], str] | None = None

    def label_for(self, spec: NormSpec) -> str:
        return self.label(spec) if self.label is not None else self.short


def _switchable_uses_bn(spec: NormSpec) -> bool:
    return bool(spec.using_bn)


_ENTRIES: tuple[NormKind, ...] = (
    NormKind(
        name="instance", short="IN", aliases=("in", "instancenorm"),
        axes="H, W: one mean/variance per image *and* channel",
        implementation="instance",
        inference_statistics=lambda spec: "per-image (H, W) statistics, identical in train and eval"),
    NormKind(
        name="batch", short="BN", aliases=("bn", "batchnorm"),
        axes="N, H, W: one mean/variance per channel, shared by every image of the batch (running averages in eval)",
        implementation="batch",
        inference_statistics=lambda spec: "running mean/variance accumulated in training (the batch is not used "
                                          "in eval)",
        batch_dependent=lambda spec: True, running_statistics=lambda spec: True),
    NormKind(
        name="group", short="GN", aliases=("gn", "groupnorm"),
        axes="C/G, H, W: one mean/variance per image and group of C/G channels",
        implementation="group",
        inference_statistics=lambda spec: (f"per-image statistics over groups of {spec.group_size} channels, "
                                           "identical in train and eval" if spec.group_size else
                                           f"per-image statistics over {spec.groups} channel groups, identical in "
                                           "train and eval"),
        label=lambda spec: f"GN({spec.group_size}ch)" if spec.group_size else f"GN({spec.groups})"),
    NormKind(
        name="layer", short="LN", aliases=("ln", "layernorm"),
        axes="C, H, W: one mean/variance per image, shared by all its channels (GroupNorm(1, C))",
        implementation="layer",
        inference_statistics=lambda spec: "per-image (C, H, W) statistics, identical in train and eval"),
    NormKind(
        name="switchable", short="SN", aliases=("sn", "switchnorm"),
        axes="a learned softmax mix of the IN, LN (and, with its BN branch, BN) statistics",
        implementation="switchable",
        inference_statistics=lambda spec: ("per-image IN/LN statistics mixed with running BN statistics"
                                           if spec.using_bn else
                                           "per-image IN/LN statistics mixed by learned weights, identical in "
                                           "train and eval"),
        batch_dependent=_switchable_uses_bn, running_statistics=_switchable_uses_bn,
        label=lambda spec: "SN+BN" if spec.using_bn else "SN"),
    NormKind(
        name="conditional", short="CIN", aliases=("cin", "conditionalinstance", "conditionalinstancenorm"),
        axes="H, W: one mean/variance per image and channel, as IN; then one (γ, β) per style, blendable",
        implementation="conditional",
        inference_statistics=lambda spec: f"per-image (H, W) statistics, identical in train and eval; one γ/β per "
                                          f"style ({spec.num_styles} styles), convex blends mix them",
        label=lambda spec: "CIN" if spec.num_styles == 1 else f"CIN×{spec.num_styles}"),
    NormKind(
        name="none", short="none", aliases=("identity",),
        axes="nothing (the control)",
        implementation="identity",
        inference_statistics=lambda spec: "no normalization"),
)

#: Every registered kind by canonical name, in the order shown to users.
NORMS: dict[str, NormKind] = {entry.name: entry for entry in _ENTRIES}

#: Canonical norm names, in the order they are shown to users.
NORM_KINDS: tuple[str, ...] = tuple(NORMS)

#: Every accepted spelling mapped to its canonical name.
NORM_ALIASES: dict[str, str] = {alias: entry.name for entry in _ENTRIES for alias in (entry.name, *entry.aliases)}


def _key(name: str) -> str:
    return str(name).strip().lower().replace("-", "").replace("_", "")


def canonical_norm_name(name: str) -> str:
    """Map a user-facing norm name or alias to its canonical name, or fail listing every valid spelling."""
    try:
        return NORM_ALIASES[_key(name)]
    except KeyError:
        valid = ", ".join(f"{entry.name} ({'/'.join(entry.aliases)})" for entry in _ENTRIES)
        raise ValueError(f"unknown norm {name!r}; valid norms: {valid}") from None


def norm_kind(name: str) -> NormKind:
    """The registry entry for a canonical name or any alias."""
    return NORMS[canonical_norm_name(name)]


def norm_choices() -> list[str]:
    """The spellings ``styler train --norm`` offers: each canonical name and its short alias (``in``, ``cin``...).

    The longer aliases (``instancenorm``, ``identity``) are still accepted by :func:`canonical_norm_name`."""
    out: list[str] = []
    for entry in _ENTRIES:
        out.append(entry.name)
        out.extend(a for a in entry.aliases if len(a) <= 3)
    return out
