"""A real browser (Debian's chromium, never a downloaded one) behind Jenkins' default CSP."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

JENKINS_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'self';"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIOLATION_MARKERS = ("Content Security Policy", "Refused to", "Blocked script execution", "blocked")


def chromium_path() -> str:
    """Debian's chromium; skips (fails in CI, see conftest) when it is not installed."""
    path = os.environ.get("CHURNOPS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.skip("needs: Debian chromium (apt-get install chromium)")
    pytest.importorskip("playwright", reason="needs: playwright (Python package)")
    return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    csp: str | None = JENKINS_CSP

    def end_headers(self) -> None:
        if self.csp:
            self.send_header("Content-Security-Policy", self.csp)
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(folder: Path, csp: str | None = JENKINS_CSP) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 with the given Content-Security-Policy header."""
    handler = type("Handler", (_Handler,), {"csp": csp})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class PageVisit:
    console: list[tuple[str, str]] = field(default_factory=list)

    @property
    def violations(self) -> list[str]:
        return [text for kind, text in self.console if any(marker in text for marker in VIOLATION_MARKERS)]


@contextlib.contextmanager
def browser_page(width: int = 1280, height: int = 900) -> Iterator[tuple[object, PageVisit]]:
    """A Playwright page in Debian's chromium, with its console recorded."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            visit = PageVisit()
            page.on("console", lambda message: visit.console.append((message.type, message.text)))
            yield page, visit
        finally:
            browser.close()
