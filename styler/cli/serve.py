"""``styler serve``: the local web app (stylize photos in a browser, and see what each norm does).

Binds loopback (127.0.0.1) unless ``--host`` says otherwise: the server has no accounts, so on another interface
anyone who can reach the port can use it (a warning says so). ``--workers`` is the number of inference threads of
the one server process, so every model is loaded once. FastAPI and uvicorn come with the ``web`` extra; without
them the command says how to install it instead of failing on an import. Runnable before it is registered in the
command table: ``python -m styler.cli.serve``.
"""

from __future__ import annotations

import ipaddress

import click

__all__ = ["serve", "is_loopback", "INSTALL_WEB"]

INSTALL_WEB = "pip install 'styler[web]'"


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on (anything but loopback exposes the server to the network).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="TCP port (0: any free port; uvicorn prints the address).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inference threads; the CPU cores are shared among them.")
@click.option("--queue", type=click.IntRange(min=0), default=16, show_default=True,
              help="Requests that may wait for a worker; more are answered 503 (busy).")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx", "compiled"]), default="auto",
              show_default=True, help="Inference backend (auto: ONNX Runtime on CPU).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              default="info", show_default=True, help="uvicorn's log level.")
def serve(host: str, port: int, workers: int, queue: int, backend: str, log_level: str) -> None:
    """Serve the styler web app: stylize photos in the browser, and the Norms view."""
    try:
        import uvicorn

        from styler.web.app import create_app
        from styler.web.config import LOOPBACK_HOSTS, ServeConfig
    except ModuleNotFoundError as exc:
        raise click.ClickException(f"styler serve needs {exc.name}, which this install does not have; install "
                                   f"the web extra with: {INSTALL_WEB}") from exc
    loopback = is_loopback(host)
    if not loopback:
        click.echo(f"warning: listening on {host}: anyone who can reach this port can use the server "
                   "(it has no accounts or passwords)", err=True)
    config = ServeConfig(workers=workers, queue=queue, backend=backend,
                         allowed_hosts=(*LOOPBACK_HOSTS, host) if loopback else None)
    app = create_app(config)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False,
                                           timeout_graceful_shutdown=5, server_header=False))
    server.run()


if __name__ == "__main__":  # pragma: no cover - `python -m styler.cli.serve` before the command is registered
    serve(prog_name="styler serve")
