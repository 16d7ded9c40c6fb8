"""The HTTP layer of ``styler serve``: routes, the error contract, and the page's static files.

Contract (other tools rely on exactly this):

* ``GET /`` the page; ``GET /api/health`` 200 JSON; ``GET /api/models`` a JSON list of ``{name, style, norm, ...}``
  (``styles`` too for multi-style models).
* ``POST /api/stylize`` multipart: file ``image``; optional ``model``, ``style``, ``strength`` (0..1),
  ``preserve_color`` (bool), ``max_size`` (long side) → 200 ``image/png`` at the photo's size (or capped by
  ``max_size``), with ``X-Styler-Seconds``, ``X-Styler-Total-Seconds``, ``X-Styler-Backend``, ``X-Styler-Model``,
  ``X-Styler-Style`` and ``X-Styler-Size``.
* Errors are JSON ``{"error": "..."}``: not an image 415 (an image type the bytes do not match) or 400 (damaged);
  unknown model 404, bad field values or unknown style 422; upload above the byte or pixel cap 413; busy 503 with
  ``Retry-After``. A client's request never causes a 500; a 500 (a bug) is JSON too, and the server stays up.

Also: ``GET /api/models/{name}/thumbnail`` (PNG, the gallery), ``GET /api/samples`` and ``/api/samples/{name}``
(the sample photos), ``POST /api/norms/side-by-side`` and ``POST /api/norms/independence`` (the Norms view, JSON
with PNG data URLs). Everything the page loads is served from the package: no CDN, no build step, and the
interactive API docs (which load from a CDN) are off.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import FormData, Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import styler
from styler.web.config import ServeConfig
from styler.web.errors import ClientError
from styler.web.jobs import BACKGROUND, Busy, Place
from styler.web.norms import COMPANIONS
from styler.web.service import Service, StylizeOutput, StylizeRequest
from styler.web.uploads import form_bool, form_float, form_int, form_text, read_form, upload_bytes

__all__ = ["create_app", "STATIC_DIR"]

log = logging.getLogger("styler.web")
T = TypeVar("T")

#: The page's files (package data).
STATIC_DIR = Path(str(importlib.resources.files("styler.web").joinpath("static")))

#: Sent with every response: the page loads only its own files, and nothing may frame it.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _host_name(host_header: str) -> str:
    """``127.0.0.1:8000`` → ``127.0.0.1``; ``[::1]:8000`` → ``[::1]``."""
    if host_header.startswith("["):
        return host_header[:host_header.find("]") + 1] if "]" in host_header else host_header
    return host_header.split(":", 1)[0]


class GuardMiddleware:
    """Refuses requests whose Host header is not allowed (DNS rebinding) and adds :data:`SECURITY_HEADERS`."""

    def __init__(self, app: ASGIApp, allowed_hosts: tuple[str, ...] | None) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed_hosts} if allowed_hosts else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.allowed is not None:
            host = _host_name(Headers(scope=scope).get("host", "")).lower()
            if host not in self.allowed:
                await _error(400, f"host {host!r} is not served here")(scope, receive, send)
                return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _header_text(text: str) -> str:
    """A value safe in an HTTP header (names come from model files: percent-encode anything but printable ASCII)."""
    return quote(text, safe=" !#$&'()*+,./:;=?@[]^_`{|}~-")


def _stylize_headers(out: StylizeOutput) -> dict[str, str]:
    return {"X-Styler-Seconds": f"{out.seconds:.4f}", "X-Styler-Total-Seconds": f"{out.total_seconds:.4f}",
            "X-Styler-Backend": out.backend, "X-Styler-Model": _header_text(out.model),
            "X-Styler-Style": _header_text(out.style), "X-Styler-Size": f"{out.width}x{out.height}",
            "X-Styler-Warnings": str(len(out.warnings)), "Cache-Control": "no-store"}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ClientError)
    async def client_error(request: Request, exc: ClientError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return _error(422, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _error(500, f"internal server error ({type(exc).__name__}); the server is still running")


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The FastAPI app of one server (its own models, cache and pool)."""
    config = config or ServeConfig()
    service = Service(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        service.pool.shutdown()

    app = FastAPI(title="styler", version=styler.__version__, docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    app.state.service = service
    app.add_middleware(GuardMiddleware, allowed_hosts=config.allowed_hosts)
    _install_error_handlers(app)
    _install_routes(app, service)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


async def _with_place(service: Service, request: Request, work: Callable[[FormData], Awaitable[T]],
                      max_files: int = 1) -> T:
    """Reserve a place in the pool (503 when none), read the form under the byte cap, run ``work``, clean up.

    The place is taken before the body is read, so at most the pool's capacity of uploads is in memory at once.
    """
    try:
        place = service.pool.reserve()
    except Busy as exc:
        raise ClientError(503, str(exc), {"Retry-After": "1"}) from exc
    request.state.place = place
    form: FormData | None = None
    try:
        form = await read_form(request, service.config.max_upload_bytes, max_files=max_files)
        return await work(form)
    finally:
        place.abandon()  # unless a job holds the place (it releases it when it ends, even after a disconnect)
        if form is not None:
            await form.close()


def _place(request: Request) -> Place:
    place: Place = request.state.place
    return place


def _install_routes(app: FastAPI, service: Service) -> None:
    cfg = service.config

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return service.health()

    @app.get("/api/models")
    def models() -> list[dict[str, Any]]:  # sync: FastAPI runs it in a thread (first header reads take a moment)
        return [info.to_json() for info in service.registry.models()]

    @app.get("/api/models/{name}/thumbnail")
    async def thumbnail(name: str, style: str | None = None) -> Response:
        from starlette.concurrency import run_in_threadpool

        selection = await run_in_threadpool(service.registry.resolve, name, style)
        png = service.cached_thumbnail(selection)
        if png is None:
            try:
                place = service.pool.reserve()
            except Busy as exc:
                raise ClientError(503, str(exc), {"Retry-After": "2"}) from exc
            png = await service.pool.run(place, service.thumbnail, selection, priority=BACKGROUND)
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/samples")
    def samples() -> list[dict[str, str]]:
        return [{"name": name, "url": f"/api/samples/{name}"} for name in service.samples.names()]

    @app.get("/api/samples/{name}")
    def sample(name: str) -> Response:
        data = service.samples.get(name)
        if data is None:
            raise ClientError(404, f"no sample called {name!r}; GET /api/samples lists them")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @app.post("/api/stylize")
    async def stylize(request: Request) -> Response:
        async def work(form: FormData) -> Response:
            data = await upload_bytes(form, "image")
            assert data is not None  # required
            job = StylizeRequest(model=form_text(form, "model"), style=form_text(form, "style"),
                                 strength=form_float(form, "strength", 1.0, 0.0, 1.0),
                                 preserve_color=form_bool(form, "preserve_color"),
                                 max_size=form_int(form, "max_size", None, 16, cfg.max_side))
            out = await service.pool.run(_place(request), service.stylize, data, job)
            return Response(out.png, media_type="image/png", headers=_stylize_headers(out))

        return await _with_place(service, request, work)

    @app.post("/api/norms/side-by-side")
    async def norms_side_by_side(request: Request) -> dict[str, Any]:
        async def work(form: FormData) -> dict[str, Any]:
            data = await upload_bytes(form, "image")
            size = form_int(form, "size", cfg.norms_size, 32, cfg.norms_max_size)
            return await _norms_job(service, request, service.norms_side_by_side, data, size)

        return await _with_place(service, request, work)

    @app.post("/api/norms/independence")
    async def norms_independence(request: Request) -> dict[str, Any]:
        async def work(form: FormData) -> dict[str, Any]:
            data = await upload_bytes(form, "image")
            size = form_int(form, "size", cfg.norms_size, 32, cfg.norms_max_size)
            companion = form_text(form, "companion") or "dark"
            if companion not in COMPANIONS:
                raise ClientError(422, f"companion must be one of {', '.join(COMPANIONS)}, not {companion[:40]!r}")
            other = await _other_photo(service, form) if companion == "photo" else None
            return await _norms_job(service, request, service.norms_independence, data, other, size)

        return await _with_place(service, request, work, max_files=2)


async def _other_photo(service: Service, form: FormData) -> bytes:
    """The batch-mate of ``companion=photo``: an uploaded file ``other`` or a sample named by ``sample``."""
    other = await upload_bytes(form, "other", required=False)
    if other is not None:
        return other
    name = form_text(form, "sample")
    if name is None:
        raise ClientError(422, "companion=photo needs a second photo: a file field 'other' or a 'sample' name")
    data = service.samples.get(name)
    if data is None:
        raise ClientError(404, f"no sample called {name!r}; GET /api/samples lists them")
    return data


async def _norms_job(service: Service, request: Request, fn: Callable[..., dict[str, Any]], *args: Any
                     ) -> dict[str, Any]:
    """A Norms-view job; without PyTorch (the apply-only install) it is a 503 that says what to install."""
    try:
        return await service.pool.run(_place(request), fn, *args)
    except ModuleNotFoundError as exc:
        raise ClientError(503, f"the Norms view needs PyTorch ({exc.name} is missing); install it with: "
                               "pip install 'styler[train]'") from exc
