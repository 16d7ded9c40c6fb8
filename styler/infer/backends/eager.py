"""Eager PyTorch backend: the reference network, in fp32 or bf16, on ``cpu``, ``cuda`` or ``mps``.

Why bf16 keeps a separate copy of the network: tiles (and the statistics pass before them) always run on the fp32
network, so the loaded model stays fp32 and untiled batches run on a bf16 copy. bf16 inputs go channels_last on
CPU and CUDA, the layout oneDNN's AMX kernels and cuDNN want.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from styler.infer.backends.base import ModelHandle
from styler.infer.sizing import TORCH_ACTIVATION_COST

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["EagerBackend"]


class EagerBackend:
    """The network as PyTorch runs it eagerly; see :class:`~styler.infer.backends.base.Backend`."""

    name = "torch"
    tiles = True
    activation_cost = TORCH_ACTIVATION_COST

    def __init__(self, model: ModelHandle, *, device: str, threads: int | None = None,
                 precision: str = "auto") -> None:
        import torch

        self.model = model
        self.device = device
        self.notes: list[str] = []
        loaded = model.load()
        if threads:
            torch.set_num_threads(threads)
        norm = loaded.arch.norm
        #: The style count of a multi-style (conditional norm) network, 0 for every other norm: fixed by the model.
        self._conditional: int = norm.num_styles if norm.kind == "conditional" else 0
        self._fp32: torch.nn.Module = loaded.net.to(device).eval()
        device_type = torch.device(device).type
        self.precision = self._auto_precision(device_type) if precision == "auto" else precision
        self._channels_last = self.precision == "bf16" and device_type in ("cpu", "cuda")
        self._net: Any = self._batch_network(self._fp32)

    def _auto_precision(self, device_type: str) -> str:
        """What ``precision="auto"`` means here: fp32, the reference."""
        return "fp32"

    def _batch_network(self, net: torch.nn.Module) -> Any:
        """The module untiled batches run on: ``net`` itself in fp32, else a bf16 copy (tiles keep ``net``)."""
        import torch

        if self.precision != "bf16":
            return net
        net = copy.deepcopy(net).to(torch.bfloat16)
        return net.to(memory_format=torch.channels_last) if self._channels_last else net

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._net(x)

    def _apply_style(self) -> None:
        """Give a multi-style network the handle's style mix (its buffers: compiled graphs read them as inputs)."""
        if self.model.style_mix is None and not self._conditional:
            return
        import torch

        from styler.nn.kinds.conditional import one_hot_mix, set_style_mix

        mix = self.model.style_mix
        tensor = one_hot_mix(0, self._conditional) if mix is None else torch.from_numpy(np.asarray(mix))
        for net in {id(self._fp32): self._fp32, id(self._net): self._net}.values():
            if isinstance(net, torch.nn.Module):
                set_style_mix(net, tensor)
            elif hasattr(net, "_orig_mod"):
                set_style_mix(net._orig_mod, tensor)

    def run(self, batch: np.ndarray) -> np.ndarray:
        import torch

        self._apply_style()
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            if self.precision == "bf16":
                x = x.to(torch.bfloat16)
            if self._channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self._forward(x).float().cpu().numpy()

    def run_tiled(self, image: np.ndarray, tile: int, stats_max_pixels: int | None) -> np.ndarray:
        import torch

        from styler.infer.tiling import tiled_forward

        self._apply_style()
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))[None]).to(self.device)
        out = tiled_forward(self._fp32, x, tile=tile, stats_max_pixels=stats_max_pixels)
        del x  # the input copy can be large on a GPU; free it before the output's transfer
        return out[0].float().cpu().numpy().transpose(1, 2, 0)
