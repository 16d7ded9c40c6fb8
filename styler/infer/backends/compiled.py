"""Compiled backend: ``torch.compile`` of the eager network, bf16 where the hardware computes it natively.

Why static shapes (``dynamic=False``): the fastest kernels; each new image size recompiles (torch caps the number
of recompiles and then runs eager), which suits many images of one size. Why the eager fallback: compilation needs
a working C++ compiler on CPU and fails in many ways (many exception types); a machine without one should still
stylize, slower, and say so once in ``notes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from styler.infer.backends.eager import EagerBackend

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["CompiledBackend"]


class CompiledBackend(EagerBackend):
    """:class:`~styler.infer.backends.eager.EagerBackend` with untiled batches run by a compiled network."""

    name = "compiled"

    def _auto_precision(self, device_type: str) -> str:
        from styler.devices import bf16_is_fast

        return "bf16" if bf16_is_fast(device_type) else "fp32"

    def _batch_network(self, net: torch.nn.Module) -> Any:
        import torch

        eager = super()._batch_network(net)
        self._fallback: Any = eager
        return torch.compile(eager, dynamic=False)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        try:
            return self._net(x)
        except Exception as exc:  # noqa: BLE001 - compilation failures come as many exception types
            out_of_memory = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
            if self._fallback is None or isinstance(exc, out_of_memory):
                raise
            # Blame the compiler only if the eager network runs where the compiled one failed; an error eager
            # raises too (a real runtime problem) propagates from here.
            out = self._fallback(x)
            self.notes.append(f"torch.compile failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                              f"running eager {self.precision} instead")
            self._net, self._fallback = self._fallback, None
            return out
