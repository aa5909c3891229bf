"""Opening pages in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

The tests that use it are skipped where Chromium or Playwright is missing; ``.ci/run`` installs
both. Screenshots go to ``build/test-artifacts/`` (or ``$MPIPE_TEST_ARTIFACTS``) to be looked at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

#: Counts canvases (Bokeh draws each plot in a few) and the pixels drawn on them, looking
#: into shadow roots, where Bokeh keeps its views.
DRAWN = """() => {
  const canvases = [];
  function walk(root) {
    for (const el of root.querySelectorAll('*')) {
      if (el.tagName === 'CANVAS') canvases.push(el);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  }
  walk(document);
  return canvases.map(c => {
    const ctx = c.getContext('2d');
    if (!ctx || !c.width || !c.height) return 0;
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    for (let i = 0; i < d.length; i += 4)
      if (d[i + 3] && (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240)) inked++;
    return inked;
  });
}"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    return path


def artifacts() -> Path:
    folder = Path(
        os.environ.get("MPIPE_TEST_ARTIFACTS")
        or Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Browser:
    """One page in headless Chromium; console errors, failed and outside requests are kept.

    (Console warnings are not errors: reading the canvases back, as :data:`DRAWN` does, makes
    Chromium warn that such reads would be faster with other settings.)
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console {message.type}: {message.text}")

    def wait_for_plots(self) -> list[int]:
        """Wait until Bokeh has drawn, then the ink on each canvas."""
        self.page.wait_for_function(
            "() => window.Bokeh && Bokeh.documents.length > 0", timeout=30_000
        )
        self.page.wait_for_function(f"() => ({DRAWN})().filter(n => n > 500).length >= 5")
        inked: list[int] = self.page.evaluate(DRAWN)
        return inked

    def text(self) -> str:
        return str(self.page.inner_text("body"))


@contextmanager
def open_browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.set_default_timeout(30_000)
            yield Browser(page)
        finally:
            browser.close()
