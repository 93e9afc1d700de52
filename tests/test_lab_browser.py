"""The tour as a person sees it: JupyterLab opens notebooks/00-tour in Debian's chromium (headless,
driven by Playwright), Run > Run All Cells runs it in smoke mode, and the render panel shows the
MP4 in a <video> with a decoded frame, beside the widgets and the plot; the screenshot is kept as
a test artifact: out/test-artifacts/lab-00-tour.png (or $TEST_ARTIFACTS/lab-00-tour.png).

The server (tests/lab_server.py) serves a scratch copy of the notebook (outputs never reach the
repo) with the session's identity cache; its kernel is the venv's ``python3`` (ipykernel).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import launch, needs_chromium
from tests.lab_server import LabServer

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "notebooks" / "00-tour.ipynb"
RUN_TIMEOUT_S = 300  # all cells; a cold identity cache first derives the default companion

pytestmark = needs_chromium

HEADING = """() => [...document.querySelectorAll('.jp-Notebook .jp-RenderedMarkdown h1')]
  .some(h => h.textContent.startsWith('00'))"""
TOOLBAR_IDLE = """() => document.querySelector(
  '.jp-NotebookPanel-toolbar .jp-Notebook-ExecutionIndicator[data-status="idle"]')"""
# Run All Cells has ended: every code cell has its execution count, or (stopped by an error) none
# waits any longer ("[*]") and an output holds a traceback
RUN_ENDED = """() => {
  const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]
    .map(p => p.textContent.trim());
  if (prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p))) return true;
  const failed = [...document.querySelectorAll('.jp-OutputArea-output')]
    .some(o => o.innerText.includes('Traceback'));
  return failed && !prompts.includes('[*]:');
}"""
VIDEO = '.jp-OutputArea-output video[src^="data:video/mp4;base64,"]'
FRAME_SHOWN = "v => v.readyState >= 2 && v.videoWidth > 0 && !v.error"


def artifact_dir() -> Path:
    """Where test artifacts go: $TEST_ARTIFACTS, else out/test-artifacts (gitignored)."""
    path = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "out" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


class Seen:
    """JupyterLab in a page: waits that fail naming what did not appear, with what was shown
    (dialogs), the browser's console errors and the server log's tail."""

    def __init__(self, lab: LabServer, page: Any) -> None:
        self.lab = lab
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.console.append(m.text))
        page.on("pageerror", lambda e: self.console.append(f"page error: {e}"))

    def fail(self, what: str) -> None:
        dialogs = self.page.locator(".jp-Dialog").all_inner_texts()
        pytest.fail(
            f"{what}\n--- JupyterLab dialogs ---\n{dialogs}\n"
            f"--- browser console errors ---\n" + "\n".join(self.console[-10:]) + "\n"
            f"--- server log ({self.lab.log_path}) ---\n{self.lab.log_tail()}"
        )

    def wait(self, what: str, js: str, arg: Any = None, timeout_s: float = 60) -> Any:
        """``page.wait_for_function(js, arg)``; on timeout a failure naming ``what``."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            return self.page.wait_for_function(js, arg=arg, timeout=timeout_s * 1000)
        except PlaywrightTimeout:
            self.fail(f"{what}: not seen within {timeout_s:.0f} s")

    def kernel_idle(self, timeout_s: float = 60) -> None:
        """Wait until the server runs exactly one kernel and it is idle (the REST API's view)."""
        deadline = time.monotonic() + timeout_s
        kernels: list = []
        while time.monotonic() < deadline:
            kernels = self.lab.kernels()
            if len(kernels) == 1 and kernels[0]["execution_state"] == "idle":
                return
            time.sleep(0.2)
        self.fail(f"one idle kernel: not seen within {timeout_s:.0f} s; the kernels: {kernels}")

    def click_menu(self, menu: str, item: str) -> None:
        """Menu bar ``menu`` > ``item``, as a person clicks them."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
        self.page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{item}$")).click()

    def error_outputs(self) -> list[str]:
        """Outputs holding a traceback or a widget that failed to show (their last lines)."""
        texts = self.page.eval_on_selector_all(
            ".jp-OutputArea-output", "els => els.map(e => e.innerText)"
        )
        bad = [t for t in texts if "Traceback" in t or "Error displaying widget" in t]
        return ["\n".join(t.splitlines()[-8:]) for t in bad]


@pytest.fixture
def lab(tmp_path: Path, identity_cache: Path) -> Iterator[LabServer]:
    """JupyterLab on loopback serving a scratch copy of the tour, in smoke mode."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    env = {"SMOKE": "1", "AVATAR_CACHE_DIR": str(identity_cache)}
    server = LabServer(root, tmp_path / "jupyter", env=env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture
def seen(lab: LabServer) -> Iterator[Seen]:
    """A headless chromium page on ``lab`` (Playwright never downloads a browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(60_000)
            yield Seen(lab, page)
        finally:
            chromium.close()


def test_the_tour_runs_in_jupyterlab_and_shows_the_video(lab, seen):
    started = time.monotonic()
    page = seen.page
    # the notebook's kernelspec, python3, is ipykernel's own: "python" runs as the server's
    # interpreter, the venv's
    spec = lab.api("kernelspecs")["kernelspecs"]["python3"]["spec"]
    assert spec["argv"][0] in ("python", sys.executable), spec["argv"]

    page.goto(lab.lab_url(NOTEBOOK.name))
    seen.wait("the tour's '# 00 ·' heading", HEADING)
    seen.wait("the notebook toolbar's kernel indicator at idle", TOOLBAR_IDLE)
    seen.kernel_idle()
    kernels = [c for c in lab.kernel_commands() if "ipykernel_launcher" in c]
    assert len(kernels) == 1 and kernels[0][0] == sys.executable, lab.kernel_commands()

    seen.click_menu("Run", "Run All Cells")
    seen.wait("the end of Run All Cells (every code cell numbered)", RUN_ENDED, None, RUN_TIMEOUT_S)
    seen.kernel_idle()
    errors = seen.error_outputs()
    assert not errors, "error outputs:\n" + "\n---\n".join(errors)

    seen.wait(
        "the render panel's <video> (the MP4 as a data: URL)",
        f"() => !!document.querySelector('{VIDEO}')",
    )
    video = page.locator(VIDEO)
    assert video.count() == 1
    handle = video.element_handle()
    seen.wait("a decoded frame of the <video>", FRAME_SHOWN, handle)
    width, height, seconds = handle.evaluate("v => [v.videoWidth, v.videoHeight, v.duration]")
    assert width > 0 and height > 0 and 0.3 < seconds < 30, (width, height, seconds)
    # the ipywidgets JupyterLab extension drew the widgets (the panel's button, the scrubber's
    # slider and frame), and the timeline plot is there
    assert page.locator(".jupyter-widgets button", has_text="Render").count() >= 1
    assert page.locator(".jupyter-widgets.widget-slider").count() >= 1
    assert page.locator(".jupyter-widgets img").count() >= 1
    assert page.locator(".jp-RenderedImage img").count() >= 1

    # a frame halfway through (the mouth moving), the video in view, then the screenshot
    handle.evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', done, {once: true});"
        " v.currentTime = v.duration / 2; })"
    )
    video.scroll_into_view_if_needed()
    shot = artifact_dir() / "lab-00-tour.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"JupyterLab screenshot: {shot} ({time.monotonic() - started:.1f} s in the browser)")
