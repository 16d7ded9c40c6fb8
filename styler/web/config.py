"""The knobs of ``styler serve``, in one frozen dataclass the app, the CLI and the tests share.

Why every limit lives here: the server's safety rests on numbers (upload bytes, decoded pixels, queue length, the
size of the model cache), and a test that wants a tiny limit, or an operator who wants a bigger one, should change
one value instead of patching code. The defaults suit one person on a laptop: 25 MB uploads, 16.8 MP photos (4096²,
an 8-bit phone photo is 12 MP), one inference worker using every core, and room for 16 requests waiting.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["ServeConfig", "LOOPBACK_HOSTS", "ABLATION_MODELS"]

#: Host names a browser uses for a server bound to loopback (the Host header check accepts these).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

#: The norm-ablation set the Norms view shows: one Starry Night model per norm, trained identically.
ABLATION_MODELS = tuple(f"starry_night_{kind}" for kind in ("in", "bn", "gn", "ln", "sn"))


@dataclass(frozen=True)
class ServeConfig:
    """Limits and choices of one server.

    Attributes:
        workers: inference threads (one process, so every model is loaded once).
        queue: requests that may wait for a worker; one more is answered 503 at once.
        threads: intra-op threads per worker (None: the cores divided among the workers).
        backend: the :class:`~styler.infer.stylizer.Stylizer` backend (``auto``: ONNX Runtime on CPU).
        device: ``auto``, ``cpu``, ``cuda`` ...
        cache_models: stylizers kept loaded (least recently used dropped first).
        max_upload_bytes: largest request body; larger ones get 413 before they are read.
        max_pixels: largest decoded photo (width × height); larger ones get 413 before they are decoded.
        max_side: largest ``max_size`` a client may ask for.
        norms_size: long side of the Norms view's images (small, so the live measurement stays quick).
        norms_max_size: largest size a client may ask the Norms view for.
        ablation_models: the models of the Norms view, in order (those not installed are left out).
        allowed_hosts: Host header values accepted (None: any); a loopback server accepts only loopback names,
            so a web page cannot reach it through DNS rebinding.
        thumbnail_size: side of the style gallery's thumbnails.
    """

    workers: int = 1
    queue: int = 16
    threads: int | None = None
    backend: str = "auto"
    device: str = "auto"
    cache_models: int = 8
    max_upload_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_side: int = 4096
    norms_size: int = 256
    norms_max_size: int = 384
    ablation_models: tuple[str, ...] = ABLATION_MODELS
    allowed_hosts: tuple[str, ...] | None = None
    thumbnail_size: int = 160

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
        if self.queue < 0:
            raise ValueError(f"queue must be 0 or more, got {self.queue}")
        if self.cache_models < 1:
            raise ValueError(f"cache_models must be at least 1, got {self.cache_models}")

    @property
    def worker_threads(self) -> int:
        """Intra-op threads of each worker: the machine's cores shared among the workers (at least one)."""
        if self.threads:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.workers)
