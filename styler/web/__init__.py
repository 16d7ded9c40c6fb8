"""``styler serve``: a local web app that stylizes photos and shows, live, why instance norm is batch independent.

Layout (one concern per module):

* :mod:`styler.web.app` — FastAPI routes, the JSON error contract, security headers, the page's static files;
* :mod:`styler.web.service` — the jobs a worker runs (decode, stylize, encode; thumbnails; the Norms view);
* :mod:`styler.web.registry` — which models a client may name, and the LRU cache of loaded stylizers;
* :mod:`styler.web.uploads` — the byte cap, sniffing the image type from the bytes, the pixel cap, form fields;
* :mod:`styler.web.jobs` — the bounded worker pool (503 when full);
* :mod:`styler.web.norms` — the ablation models side by side and the batch-independence demo (styler.evidence);
* :mod:`styler.web.samples` — sample photos from installed packages, and the gallery's common picture;
* ``static/`` — the page: one HTML file, one script, one style sheet, no build step and no CDN.

Importing this package imports neither FastAPI nor torch; :func:`create_app` needs the ``web`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from styler.web.config import ServeConfig

__all__ = ["create_app"]


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The server's ASGI app (see :func:`styler.web.app.create_app`)."""
    from styler.web.app import create_app as build

    return build(config)


def __getattr__(name: str) -> Any:
    if name == "ServeConfig":
        from styler.web.config import ServeConfig

        return ServeConfig
    raise AttributeError(name)
