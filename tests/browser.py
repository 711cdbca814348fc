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


# --- layout checks, measured in the page (CDP evaluation: the sandboxed page itself runs no script) --

BOXES = "header, main, footer, section, .wrap, .table-scroll, details.column, figure, .kpi, svg, table.stack"

_OVERFLOW = """(boxes) => {
  const width = document.documentElement.clientWidth;
  const problems = [];
  for (const [name, value] of [["document.scrollWidth", document.documentElement.scrollWidth],
                               ["body.scrollWidth", document.body.scrollWidth]]) {
    if (value > width) problems.push(`${name} ${value} > viewport ${width}`);
  }
  for (const element of document.querySelectorAll(boxes)) {
    const box = element.getBoundingClientRect();
    if (box.width === 0) continue;  // inside a closed <details>
    const scroller = element.parentElement && element.parentElement.closest(".table-scroll");
    if (scroller) continue;  // scrolls inside its table box, which is checked itself
    if (box.width > width + 0.5 || box.left < -0.5 || box.right > width + 0.5) {
      const name = element.tagName.toLowerCase() + (element.id ? "#" + element.id : "") +
        (element.className && element.className.baseVal === undefined ? "." + element.className : "");
      problems.push(`${name}: ${Math.round(box.left)}..${Math.round(box.right)} of ${width}`);
    }
  }
  return problems;
}"""

_CUT_TABLES = """() => Array.from(document.querySelectorAll("details.column[open] .table-scroll"))
  .filter(box => box.scrollWidth > box.clientWidth + 1)
  .map(box => `${box.closest("details").id}: table ${box.scrollWidth} px in a ${box.clientWidth} px box`)"""

_HIDDEN_CELLS = """(selector) => Array.from(document.querySelectorAll(selector)).filter(cell => {
  const box = cell.getBoundingClientRect();
  const frame = (cell.closest(".table-scroll") || document.documentElement).getBoundingClientRect();
  return box.width > 0 && (box.right > Math.min(frame.right, document.documentElement.clientWidth) + 0.5);
}).map(cell => cell.textContent.trim().slice(0, 40))"""

_MID_WORD_BREAKS = """(selector) => {
  const bad = [];
  const range = document.createRange();
  for (const element of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    let top = null, previous = "";
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        range.setStart(node, i); range.setEnd(node, i + 1);
        const rects = range.getClientRects();
        if (!rects.length) continue;
        const char = node.data[i];
        if (top !== null && rects[0].top > top + 2 && !"/\\\\_-. ".includes(previous) && char !== " ")
          bad.push(`${element.textContent.trim().slice(0, 50)}: ...${previous}|${char}...`);
        top = rects[0].top; previous = char;
      }
    }
  }
  return bad;
}"""

_SMALL_TEXT = """() => Array.from(document.querySelectorAll("details.column[open] svg text"))
  .map(text => text.getBoundingClientRect().height).filter(h => h > 0 && h < 9).length"""


def layout_problems(page: object) -> list[str]:
    """What does not fit the viewport: the page scrolling sideways, a section, table box, chart or
    card wider than the viewport or sticking out of it, a column table cut in an open <details>,
    a drift verdict or a quality-check detail out of view without scrolling, a path broken
    mid-word, or chart text too small to read (under 9 px)."""
    problems = [f"overflow: {p}" for p in page.evaluate(_OVERFLOW, BOXES)]  # type: ignore[attr-defined]
    problems += [f"cut table: {p}" for p in page.evaluate(_CUT_TABLES)]  # type: ignore[attr-defined]
    verdicts = ".drift-table tbody td:has(.badge)"
    problems += [f"verdict out of view: {p}" for p in page.evaluate(_HIDDEN_CELLS, verdicts)]  # type: ignore[attr-defined]
    details = "#quality tbody td:last-child"
    problems += [f"quality detail out of view: {p}" for p in page.evaluate(_HIDDEN_CELLS, details)]  # type: ignore[attr-defined]
    paths = "#facts td, #next code"
    problems += [f"mid-word break: {p}" for p in page.evaluate(_MID_WORD_BREAKS, paths)]  # type: ignore[attr-defined]
    small = page.evaluate(_SMALL_TEXT)  # type: ignore[attr-defined]
    if small:
        problems.append(f"{small} chart labels under 9 px high")
    return problems
