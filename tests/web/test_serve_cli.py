"""``styler serve``'s command: options, the loopback rule, and the message when the web extra is missing."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from styler.cli.serve import INSTALL_WEB, is_loopback, serve


def test_help_lists_the_contract_options() -> None:
    result = CliRunner().invoke(serve, ["--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--workers", "127.0.0.1", "8000"):
        assert option in result.output


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True),
                                                ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                                ("192.168.1.5", False), ("example.com", False)])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bad_options_are_usage_errors() -> None:
    assert CliRunner().invoke(serve, ["--workers", "0"]).exit_code == 2
    assert CliRunner().invoke(serve, ["--port", "70000"]).exit_code == 2


def test_missing_web_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if the web extra were not installed
    result = CliRunner().invoke(serve, [])
    assert result.exit_code == 1 and INSTALL_WEB in result.output


def test_serve_builds_a_loopback_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command hands uvicorn an app that accepts only loopback Host names, on the host and port given."""
    import uvicorn

    seen: dict[str, object] = {}

    def fake_run(self: uvicorn.Server) -> None:
        seen.update(host=self.config.host, port=self.config.port, app=self.config.app)

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    result = CliRunner().invoke(serve, ["--port", "8123", "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8123
    service = seen["app"].state.service  # type: ignore[attr-defined]
    assert service.config.workers == 2 and "localhost" in (service.config.allowed_hosts or ())
    result = CliRunner().invoke(serve, ["--host", "0.0.0.0"])
    assert result.exit_code == 0 and "warning" in result.output
    assert seen["app"].state.service.config.allowed_hosts is None  # type: ignore[attr-defined]
