"""Headless Chromium for the UI tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser download does not work here, so the system Chromium is used via
``executable_path``. Without it the UI tests skip, except under CI (``CI`` set), where the
browser is installed and a missing one is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

WEB_ROOT = Path(__file__).resolve().parents[2] / "src" / "auditseal" / "web"
"""The UI's static files, as `auditseal serve` mounts them at /ui/."""
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Skip the test without Chromium; fail instead when running in CI."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; CI installs Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); UI tests need it")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Launch headless Chromium; closed on exit."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
