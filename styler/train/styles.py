"""Many styles in one network: the style plan of a run, and adding a style to a trained model.

Why here and not in the trainer: a multi-style run differs from a single-style one in three small ways — which style
a step trains (:class:`~styler.train.data.StyleSchedule`), which (γ, β) the conditional norm applies (a one-hot
style mix), and, when a style is *added* to a trained model, which parameters may change at all. Keeping those in
one plan object leaves the training loop the same for one style and for many.

Adding a style (``styler train --add-style new.jpg --from MODEL``): the new network is the base model's with one
more (γ, β) row per norm layer. Everything the base model learned is copied and frozen: only the new rows receive
gradients (the others' gradients are masked to zero, and Adam without weight decay leaves a parameter whose gradient
is always zero exactly where it was), so the base model's styles come out bit for bit unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from styler.errors import StylerError
from styler.nn.kinds.conditional import ConditionalInstanceNorm2d, conditional_layers, one_hot_mix, set_style_mix
from styler.nn.spec import ArchSpec, NormSpec
from styler.train.config import TrainConfig
from styler.train.data import StyleSchedule

__all__ = ["StylePlan", "base_style_records"]


def base_style_records(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The style records of a model's metadata: its ``styles`` list, or its one ``style``.

    A single-style model's record gets the style weight it was trained with (its ``loss_weights``), as the
    records of a multi-style model carry theirs: once a style is added, the new file's ``loss_weights`` describe
    the new style, and the base style's weight would otherwise be lost."""
    styles = metadata.get("styles")
    if isinstance(styles, list) and styles:
        return [dict(s) for s in styles]
    style = metadata.get("style")
    record = dict(style) if isinstance(style, dict) else {"name": str(style or "style_0")}
    weights = metadata.get("loss_weights")
    if isinstance(weights, dict) and weights.get("style") is not None and "style_weight" not in record:
        record["style_weight"] = weights["style"]
    return [record]


@dataclass
class StylePlan:
    """Which styles a run trains and how they map onto the network's conditional norm.

    Attributes:
        arch: the network to build (the config's, or the base model's widened by one style).
        mix_indices: for each trained style (criterion *i*), its row in the conditional norm.
        base: the base model when a style is added (None otherwise).
        base_styles: the base model's style records (kept first in the new model's style list).
    """

    arch: ArchSpec
    mix_indices: list[int]
    schedule: StyleSchedule
    base: Any = None
    base_styles: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def for_config(cls, config: TrainConfig) -> StylePlan:
        if config.base_model is None:
            styles = len(config.style_list)
            return cls(arch=config.arch, mix_indices=list(range(styles)),
                       schedule=StyleSchedule(styles, config.seed))
        from styler.io.modelfile import load_model
        from styler.io.zoo import find_model

        base = load_model(find_model(config.base_model))
        if base.arch.norm.kind not in ("instance", "conditional"):
            raise StylerError(f"a style can be added to an instance-norm or conditional-norm model; "
                              f"{config.base_model} uses {base.arch.norm.kind} norm")
        existing = base.arch.norm.num_styles if base.arch.norm.kind == "conditional" else 1
        norm = NormSpec(kind="conditional", num_styles=existing + 1, eps=base.arch.norm.eps)
        arch = ArchSpec(width=base.arch.width, residual_blocks=base.arch.residual_blocks, norm=norm)
        return cls(arch=arch, mix_indices=[existing], schedule=StyleSchedule(1, config.seed), base=base,
                   base_styles=base_style_records(base.metadata))

    @property
    def conditional(self) -> bool:
        return self.arch.norm.kind == "conditional"

    @property
    def num_styles(self) -> int:
        return self.arch.norm.num_styles if self.conditional else 1

    def criterion_for(self, step: int) -> int:
        """The trained style (criterion index) of ``step``."""
        return self.schedule.style(step)

    def select(self, net: nn.Module, criterion_index: int) -> None:
        """Make the network apply the style that criterion ``criterion_index`` trains."""
        if self.conditional:
            set_style_mix(net, one_hot_mix(self.mix_indices[criterion_index], self.num_styles))

    def prepare(self, net: nn.Module) -> None:
        """For an added style: copy the base model into ``net`` and freeze everything but the new style's rows."""
        if self.base is None:
            return
        new_row = self.mix_indices[0]
        _copy_base(self.base.net, net, new_row)
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        mask = torch.zeros(self.num_styles, 1)
        mask[new_row] = 1.0
        for layer in conditional_layers(net):
            for parameter in (layer.weight, layer.bias):
                parameter.requires_grad_(True)
                parameter.register_hook(lambda grad, m=mask: grad * m.to(grad.device, grad.dtype))

    def style_records(self, config: TrainConfig, criteria: list[Any]) -> list[dict[str, Any]]:
        """One record per network style, in row order: the base model's, then those this run trained."""
        from styler.io.files import sha256_file

        trained = []
        for path, criterion in zip(config.style_list, criteria):
            trained.append({"name": Path(path).stem, "file": Path(path).name, "sha256": sha256_file(path),
                            "size": list(criterion.style_image.shape[-2:]), "style_weight": criterion.weights.style})
        return self.base_styles + trained


def _copy_base(base: nn.Module, net: nn.Module, new_row: int) -> None:
    """Copy every base weight into ``net``; a norm layer's (γ, β) fill the rows before ``new_row``, and the new row
    starts at their mean (a neutral starting point between the existing styles)."""
    target = dict(net.named_modules())
    with torch.no_grad():
        for name, module in base.named_modules():
            new = target.get(name)
            if isinstance(new, ConditionalInstanceNorm2d):
                for attr in ("weight", "bias"):
                    rows = getattr(module, attr).detach().reshape(-1, new.num_channels)
                    getattr(new, attr)[:new_row].copy_(rows)
                    getattr(new, attr)[new_row].copy_(rows.mean(dim=0))
            elif isinstance(module, nn.Conv2d) and isinstance(new, nn.Conv2d):
                new.load_state_dict(module.state_dict())
