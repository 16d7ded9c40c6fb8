"""The page in a real browser: Debian's headless Chromium against the real ``styler serve`` on a free loopback port.

The test installs nothing: ``make test``'s install step installs Chromium where it is missing, and the test is
skipped, with the reason printed, where it is still absent. It starts the server as a user would
(``python -m styler.cli.serve``, the bundled models, the default backend), loads the page, uploads a photo through
the file input, waits for the stylized image, checks what the page shows, runs the Norms view's batch-independence
demo, and saves screenshots (under the test's temporary folder, and in ``$STYLER_SCREENSHOT_DIR`` when set).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cdp_pipe import Browser, find_chromium

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = find_chromium()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (make test installs it: apt-get install "
                                                "-y chromium); the real-browser test is skipped"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL the test built
        return json.load(response)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server, as ``python -m styler.cli.serve --port P``, on the bundled models."""
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "STYLER_MODEL_DIR"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "styler.cli.serve", "--port", str(port), "--log-level",
                                    "warning"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _get_json(f"{url}/api/health")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"styler serve did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _keep(path: Path) -> Path:
    """Also copy a screenshot to ``$STYLER_SCREENSHOT_DIR`` (to look at it after the run)."""
    folder = os.environ.get("STYLER_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)
    print(f"screenshot: {path}")
    return path


def _photo(folder: Path) -> Path:
    """The photo to upload: the server's first sample (a real photo where matplotlib is installed)."""
    from styler.web.samples import SampleSet

    samples = SampleSet()
    path = folder / "upload.jpg"
    path.write_bytes(samples.get(samples.names()[0]) or b"")
    return path


def test_page_stylizes_an_uploaded_photo(server: str, tmp_path: Path) -> None:
    from PIL import Image

    upload = _photo(tmp_path)
    width, height = Image.open(upload).size
    assert CHROMIUM is not None
    with Browser(CHROMIUM, log_path=tmp_path / "chromium.log") as browser:
        page = browser.open_page(1280, 900)
        browser.call("Page.navigate", {"url": f"{server}/"}, session=page)
        browser.wait_for(page, "document.readyState === 'complete' && document.querySelectorAll('.style').length",
                         60, "the style gallery")
        browser.set_file(page, "#file", upload)
        state = browser.wait_for(page, "['done', 'error'].includes(document.body.dataset.state) && "
                                       "document.body.dataset.state", 300, "the stylized image")
        message = browser.evaluate(page, "document.getElementById('message').textContent")
        assert state == "done", message
        shown = browser.evaluate(page, "(() => { const a = document.getElementById('after');"
                                       " return [a.naturalWidth, a.naturalHeight]; })()")
        longest = max(width, height)
        scale = min(1.0, 1024 / longest)  # the page's default size is 1024 px
        assert shown == [round(width * scale), round(height * scale)]
        timing = browser.evaluate(page, "document.getElementById('timing').textContent")
        assert " s · " in timing and "starry_night_in" in timing
        assert browser.evaluate(page, "document.getElementById('download').href.startsWith('blob:')")
        browser.wait_for(page, "Array.from(document.querySelectorAll('.style img'))"
                               ".every(i => i.complete && i.naturalWidth > 0)", 400, "every gallery thumbnail")
        browser.evaluate(page, "document.getElementById('split').value = 45; "
                               "document.getElementById('split').dispatchEvent(new Event('input'))")
        _keep(browser.screenshot(page, tmp_path / "styler-page.png"))

        browser.evaluate(page, "document.getElementById('tab-norms').click(); "
                               "document.getElementById('run-side').click()")
        browser.wait_for(page, "document.querySelectorAll('#side-grid figure').length === 6 || "
                               "document.getElementById('norms-message').textContent", 240, "the five norms")
        assert browser.evaluate(page, "document.querySelectorAll('#side-grid figure img').length") == 6
        browser.evaluate(page, "document.getElementById('run-indep').click()")
        browser.wait_for(page, "document.querySelectorAll('#indep-table tbody tr').length >= 2 || "
                               "document.getElementById('norms-message').textContent", 240, "the independence table")
        verdicts = browser.evaluate(page, "Array.from(document.querySelectorAll('#indep-table tbody tr'))"
                                          ".map(r => [r.cells[0].textContent, r.cells[5].textContent])")
        assert verdicts, browser.evaluate(page, "document.getElementById('norms-message').textContent")
        by_norm = {label.split()[0]: verdict for label, verdict in verdicts}
        assert by_norm["IN"] == "unchanged" and by_norm["BN"] == "shifted", verdicts
        browser.resize(page, 1280, 2000)
        _keep(browser.screenshot(page, tmp_path / "styler-norms.png"))
    health = _get_json(f"{server}/api/health")
    assert isinstance(health, dict) and health["status"] == "ok"
