"""Serializable descriptions of a network: :class:`NormSpec` (which norm, with which options) and :class:`ArchSpec`.

Why torch-free: these specs are stored verbatim in every model file and in training configurations. Keeping them
free of torch lets the CLI validate ``--norm gn:3 --width 16`` before importing torch, lets ``styler info`` explain a
model file on an install without torch, and keeps :class:`~styler.train.config.TrainConfig` importable anywhere.
The torch modules are built from them by :func:`styler.nn.norms.make_norm` and
:class:`styler.nn.network.TransformerNet`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from styler.nn.registry import NormKind, canonical_norm_name, norm_kind

__all__ = ["DEFAULT_GROUPS", "NormSpec", "ArchSpec"]

DEFAULT_GROUPS = 8


@dataclass(frozen=True)
class NormSpec:
    """Everything needed to rebuild a normalization layer; stored verbatim in model files.

    Attributes:
        kind: canonical norm name (see :data:`styler.nn.registry.NORM_KINDS`); aliases are accepted and
            canonicalized.
        groups: number of groups for ``group`` (fixed G, not a fixed group size).
        group_size: ``group`` only: channels per group instead of a group count, so every layer of the network
            groups alike (G = C / group_size: 16/32/64 channels with size 4 give 4/8/16 groups). This is the axis
            of the LN → IN sweep: size = C is layer norm, size 1 is instance norm. ``None`` (the default, not
            written to files) means ``groups`` decides.
        eps: added to the variance before the square root, 1e-5 for every norm as in torch.
        momentum: running-statistics momentum for ``batch`` and SN's BN branch, torch convention (weight of the new
            value). ``None`` means a cumulative average, as in torch BN.
        using_bn: SN only: include the batch-norm branch. Off by default: without it SN is batch independent.
        using_moving_average: SN only: EMA running statistics (True) or the batch-average procedure (False).
        var_correction: SN only: 0 = biased instance variance (the paper), 1 = the official code's unbiased form.
        num_styles: conditional only: how many (γ, β) pairs each layer holds, one per style.
    """

    kind: str = "instance"
    groups: int = DEFAULT_GROUPS
    eps: float = 1e-5
    momentum: float | None = 0.1
    using_bn: bool = False
    using_moving_average: bool = True
    var_correction: int = 0
    num_styles: int = 1
    group_size: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", canonical_norm_name(self.kind))
        if self.groups < 1:
            raise ValueError(f"groups must be >= 1, got {self.groups}")
        if self.num_styles < 1:
            raise ValueError(f"num_styles must be >= 1, got {self.num_styles}")
        if self.group_size is not None and (self.group_size < 1 or self.kind != "group"):
            raise ValueError(f"group_size applies to group norm only and must be >= 1, got {self.group_size} for "
                             f"{self.kind}")
        if self.num_styles != 1 and self.kind != "conditional":
            raise ValueError(f"num_styles applies to conditional instance norm only, not {self.kind}")

    @property
    def entry(self) -> NormKind:
        """This kind's registry entry (everything styler knows about the kind)."""
        return norm_kind(self.kind)

    @property
    def short_name(self) -> str:
        """Label such as ``IN``, ``GN(8)`` or ``SN+BN`` for tables and figures."""
        return self.entry.label_for(self)

    @property
    def batch_dependent_in_training(self) -> bool:
        """True when a training-mode forward mixes statistics across the images of a batch."""
        return self.entry.batch_dependent(self)

    @property
    def uses_running_statistics(self) -> bool:
        """True when eval mode normalizes with statistics accumulated in training (a train/eval gap can exist)."""
        return self.entry.running_statistics(self)

    @property
    def inference_statistics(self) -> str:
        """Which statistics an eval-mode forward normalizes with; recorded in model files and docs."""
        return self.entry.inference_statistics(self)

    @property
    def axes(self) -> str:
        """What the statistics are computed over, in words."""
        return self.entry.axes

    def groups_for(self, num_channels: int) -> int:
        """The group count a ``group`` layer of ``num_channels`` channels uses (fixed G, or C / group_size)."""
        return num_channels // self.group_size if self.group_size else self.groups

    def check_channels(self, num_channels: int, layer_name: str = "") -> None:
        """Fail with a clear message if this norm cannot normalize ``num_channels`` channels (a group count or
        group size that does not divide them)."""
        if self.kind == "group" and self.group_size and num_channels % self.group_size != 0:
            where = f" in layer {layer_name!r}" if layer_name else ""
            raise ValueError(f"group norm{where}: {num_channels} channels do not split into groups of "
                             f"{self.group_size}; choose a group size that divides every width")
        if self.kind == "group" and not self.group_size and num_channels % self.groups != 0:
            where = f" in layer {layer_name!r}" if layer_name else ""
            raise ValueError(f"group norm{where}: {num_channels} channels are not divisible by {self.groups} "
                             f"groups; choose a group count that divides every width (e.g. 1, 2, 4, 8, 16)")

    def to_dict(self) -> dict[str, Any]:
        """The stored form. ``num_styles`` is written only for conditional norms and ``group_size`` only when set,
        so the files (and manifests) of every other norm read exactly as they did before the options existed."""
        data = dataclasses.asdict(self)
        if self.kind != "conditional":
            del data["num_styles"]
        if self.group_size is None:
            del data["group_size"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown norm options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**data)

    @classmethod
    def parse(cls, value: str | NormSpec, **overrides: Any) -> NormSpec:
        """Build a spec from a name (``"gn"``, ``"group:4"``, ``"sn+bn"``, ``"cin:6"``) or return a copy of a spec."""
        if isinstance(value, NormSpec):
            return dataclasses.replace(value, **overrides)
        text = str(value).strip().lower()
        options: dict[str, Any] = {}
        if text.endswith("+bn"):
            text, options["using_bn"] = text[:-3], True
        if ":" in text:
            text, arg = text.split(":", 1)
            option = "num_styles" if canonical_norm_name(text) == "conditional" else "groups"
            try:
                options[option] = int(arg)
            except ValueError:
                example = "'cin:6'" if option == "num_styles" else "'group:8'"
                raise ValueError(f"bad {option.replace('_', ' ')} in norm {value!r}: expected e.g. {example}") from None
        options.update(overrides)
        return cls(kind=text, **options)


@dataclass(frozen=True)
class ArchSpec:
    """Architecture of a :class:`~styler.nn.network.TransformerNet`; stored in model files so ``apply`` rebuilds
    the exact network.

    Attributes:
        width: channels of the first layer; the network uses ``width, 2·width, 4·width``. 32 is the paper's net,
            16 the half-width net (about 4× fewer FLOPs).
        residual_blocks: number of residual blocks at quarter resolution.
        norm: the normalization layer used after every conv but the last.
    """

    width: int = 32
    residual_blocks: int = 5
    norm: NormSpec = field(default_factory=NormSpec)

    def __post_init__(self) -> None:
        if isinstance(self.norm, (str, dict)):
            norm = NormSpec.from_dict(self.norm) if isinstance(self.norm, dict) else NormSpec.parse(self.norm)
            object.__setattr__(self, "norm", norm)
        if self.width < 1 or self.residual_blocks < 0:
            raise ValueError(f"invalid architecture: width={self.width}, residual_blocks={self.residual_blocks}")

    @property
    def channels(self) -> tuple[int, int, int]:
        return (self.width, 2 * self.width, 4 * self.width)

    def validate(self) -> None:
        """Check that the norm works at every width of the network (torch-free; raises ValueError)."""
        for channels in self.channels:
            self.norm.check_channels(channels)

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "residual_blocks": self.residual_blocks, "norm": self.norm.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchSpec:
        data = dict(data)
        norm = NormSpec.from_dict(data.pop("norm", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown architecture options {sorted(unknown)}")
        return cls(norm=norm, **data)
