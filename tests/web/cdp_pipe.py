"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``, standard library only.

Why a pipe and not the usual WebSocket port: with ``--remote-debugging-pipe`` Chromium reads commands from file
descriptor 3 and writes replies and events to descriptor 4, as NUL-terminated JSON, so a test needs no WebSocket
library, no open port and no browser download (Playwright's), only Debian's ``chromium``. Only what the browser test
uses is here: start, call a method (on the browser or on a page session), evaluate JavaScript, stop.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["find_chromium", "Browser", "CDPError", "CHROMIUM_FLAGS"]

#: Flags for a headless, quiet Chromium that contacts nothing but the pages it is sent to (and runs as root).
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                  "--remote-debugging-pipe")


class CDPError(RuntimeError):
    """The browser answered a command with an error, stopped, or did not answer in time."""


def find_chromium() -> str | None:
    """``$STYLER_CHROMIUM``, else ``chromium`` (Debian's package) or ``chromium-browser`` on the PATH."""
    explicit = os.environ.get("STYLER_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


#: Runs in the child: put the two pipe ends on descriptors 3 and 4, where Chromium expects them, then exec it.
_LAUNCH = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
           "os.execv(sys.argv[3], sys.argv[3:])")


def _high_fd(fd: int) -> int:
    """A copy of ``fd`` numbered 10 or more, so that putting one end on 3 cannot overwrite the other."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return copy


class Browser:
    """One headless Chromium with a fresh profile, driven over the pipe; use as a context manager."""

    def __init__(self, executable: str, *, log_path: Path | None = None) -> None:
        self.profile = tempfile.mkdtemp(prefix="styler-chromium-")
        to_browser_r, to_browser_w = (_high_fd(fd) for fd in os.pipe())
        from_browser_r, from_browser_w = (_high_fd(fd) for fd in os.pipe())
        log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in close()
        self._log = log
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, str(to_browser_r), str(from_browser_w), executable, *CHROMIUM_FLAGS,
             f"--user-data-dir={self.profile}", "about:blank"], pass_fds=(to_browser_r, from_browser_w),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._write_fd, self._read_fd = to_browser_w, from_browser_r
        self._buffer = b""
        self._next_id = 0

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol --------------------------------------------------------------------------------------------
    def _send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._write_fd, data):]

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError("timed out waiting for the browser")
            ready, _, _ = select.select([self._read_fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(self._read_fd, 1 << 20)
                if not chunk:
                    raise CDPError(f"the browser closed the pipe (exit code {self.process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def call(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    # -- pages ---------------------------------------------------------------------------------------------------
    def open_page(self, width: int = 1280, height: int = 900) -> str:
        """A new tab of ``width × height`` CSS pixels; returns its session id."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = str(self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"])
        self.call("Page.enable", session=session)
        self.resize(session, width, height)
        return session

    def resize(self, session: str, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False}, session=session)

    def evaluate(self, session: str, expression: str, timeout: float = 30.0) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=session, timeout=timeout)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression[:60]}: {result['exceptionDetails'].get('text')}")
        return result.get("result", {}).get("value")

    def wait_for(self, session: str, expression: str, timeout: float, what: str) -> Any:
        """Poll ``expression`` until it is truthy; :class:`CDPError` naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(session, expression)
            if value:
                return value
            time.sleep(0.25)
        raise CDPError(f"timed out after {timeout:.0f} s waiting for {what}")

    def set_file(self, session: str, selector: str, path: Path) -> None:
        """Put ``path`` into the ``<input type=file>`` at ``selector`` (fires its change event, as a user would)."""
        root = self.call("DOM.getDocument", {"depth": 0}, session=session)["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector}, session=session)["nodeId"]
        if not node:
            raise CDPError(f"no element matches {selector!r}")
        self.call("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node}, session=session)

    def screenshot(self, session: str, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=session, timeout=60)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                self.call("Browser.close", timeout=5)
        except (CDPError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for fd in (self._write_fd, self._read_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._log is not subprocess.DEVNULL:
            self._log.close()  # type: ignore[union-attr]
        shutil.rmtree(self.profile, ignore_errors=True)
