"""Debian's headless Chromium for the browser tests (the demo page, JupyterLab), via Playwright.

Playwright drives ``/usr/bin/chromium`` (installed by the Makefile), never a downloaded browser.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    not CHROMIUM.is_file(), reason="Debian's chromium is absent (apt-get install chromium)"
)
"""Skips a module (``pytestmark = needs_chromium``) where Debian's chromium is absent."""


def launch(playwright):
    """A headless Debian Chromium browser from a started ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
