"""A picture of an experiment report as a marketer sees it in the MLflow UI.

:func:`screenshot_report` starts ``mlflow server`` on a free localhost port
against the tracking store, opens the report's run page and its
``report.html`` artifact in headless Chromium, saves PNG screenshots, and
checks that the rendered run page shows the run's name (and the report its
experiment's name). Needs a Chromium binary (``apt-get install -y chromium``
on Debian/Ubuntu); :func:`find_chromium` says whether one is there.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: How long the MLflow server may take to answer its health check.
SERVER_START_SECONDS = 180.0
#: How long a page may take to show what is expected.
RENDER_SECONDS = 60.0


class ScreenshotError(RuntimeError):
    """The screenshot could not be taken or does not show the report."""


@dataclass(frozen=True)
class Screenshots:
    """The pictures taken and the address of the run page."""

    run_page: Path
    report: Path
    url: str


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary, or ``None``."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port() -> int:
    """A TCP port free on localhost right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_server(tracking_uri: str, port: int | None = None) -> Iterator[str]:
    """Run ``mlflow server`` on localhost for the duration of the block; yields its URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
        )
        try:
            _wait_until_up(process, url, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], url: str, log: IO[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while True:
        if process.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-2000:]
            raise ScreenshotError(f"mlflow server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ScreenshotError(f"mlflow server did not answer on {url} in time")
        time.sleep(0.3)


class _DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe
    (``--remote-debugging-pipe``: JSON messages separated by NUL bytes on file
    descriptors 3 and 4), so no extra Python package is needed."""

    def __init__(self, binary: str, size: tuple[int, int]) -> None:
        self._profile = tempfile.mkdtemp(prefix="nba-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        # The child must find the pipes on fds 3 and 4: move them above 10 first (either
        # may be 3 or 4 already), then onto 3 and 4; close_fds keeps what pass_fds lists.
        def plumb() -> None:
            high_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.process = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={self._profile}",
                f"--window-size={size[0]},{size[1]}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=plumb,
            pass_fds=(3, 4),
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next_id = 0
        self.size = size

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ScreenshotError(f"chromium: {method} failed: {reply['error']}")
                return dict(reply.get("result", {}))

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise ScreenshotError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def open(self, url: str) -> str:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = str(
            self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        )
        width, height = self.size
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        self.call("Page.navigate", session, url=url)
        return session

    def text(self, session: str) -> str:
        result = self.call(
            "Runtime.evaluate",
            session,
            expression="document.body ? document.body.innerText : ''",
            returnByValue=True,
        )
        return str(result.get("result", {}).get("value", ""))

    def screenshot(self, session: str, png: Path) -> None:
        data = self.call("Page.captureScreenshot", session, format="png")["data"]
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        with contextlib.suppress(OSError, ScreenshotError):
            self.call("Browser.close")
        with contextlib.suppress(OSError):
            os.close(self._to_browser)
            os.close(self._from_browser)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._profile, ignore_errors=True)


def render_page(
    binary: str,
    url: str,
    png: Path,
    *,
    expect: str | None = None,
    size: tuple[int, int] = (2000, 1600),  # MLflow 3 keeps an assistant panel on the right
    timeout: float = RENDER_SECONDS,
    settle: float = 1.0,
) -> str:
    """Open ``url``, wait until its text shows ``expect`` (any text when ``None``), then
    ``settle`` seconds more; screenshot it to ``png`` and return the page's visible text."""
    browser = _DevTools(binary, size)
    try:
        session = browser.open(url)
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            time.sleep(0.5)
            text = browser.text(session)
            if (expect is None and text) or (expect is not None and expect in text):
                break
        time.sleep(settle)  # let charts, frames and images finish drawing
        text = browser.text(session)
        browser.screenshot(session, png)
        return text
    finally:
        browser.close()


def screenshot_report(
    tracking_uri: str,
    experiment_id: str,
    run_id: str,
    run_name: str,
    out: str | Path,
    *,
    chromium: str | None = None,
) -> Screenshots:
    """Screenshot the run page (``out``) and the run's ``report.html`` as the MLflow UI's
    artifact view shows it (``out`` with ``-report``).

    Raises
    ------
    ScreenshotError
        When Chromium is missing, the server does not start, or the rendered run
        page does not contain ``run_name``.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise ScreenshotError(
            "no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + "); on Debian or "
            "Ubuntu: apt-get install -y chromium"
        )
    out = Path(out)
    report_png = out.with_name(out.stem + "-report" + out.suffix)
    with mlflow_server(tracking_uri) as url:
        page = f"{url}/#/experiments/{experiment_id}/runs/{run_id}"
        text = render_page(binary, page, out, expect=run_name)
        if run_name not in text:
            raise ScreenshotError(f"the run page {page} does not show the run name {run_name!r}")
        report = f"{page}/artifacts/report.html"
        render_page(binary, report, report_png, expect=run_name, settle=4.0)
    return Screenshots(out, report_png, page)
