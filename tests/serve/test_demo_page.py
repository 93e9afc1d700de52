"""The demo page (serve/static/) in a real browser: Debian's chromium, headless, driven by
Playwright, against the app on uvicorn on loopback (128 px renders).

A generate round trip plays (the <video> reaches readyState >= 3 and its currentTime
advances; a screenshot is saved under the test's tmp dir); the API's problem+json errors are
shown as they come; an uploaded companion joins the menu; "Talk in real time" shows only when
LiveKit is configured and the bundled livekit-client loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from serve.settings import LiveKitSettings
from tests.browser import launch, needs_chromium
from tests.serve.conftest import KEYS, auth

VENDOR = Path(__file__).parents[2] / "serve" / "static" / "vendor" / "livekit-client.esm.js"

pytestmark = needs_chromium

PLAYING = """() => {
  const v = document.getElementById('video');
  return v.readyState >= 3 && v.currentTime > 0.1;
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian chromium, one for the module (Playwright never downloads a browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, url: str, key: str):  # noqa: ANN001, ANN201
    """The demo page at ``url``, ``key`` entered and submitted."""
    page = browser.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{url}/")
    page.fill("#key", key)
    page.click("#use-key")
    return page


def ready(page) -> None:  # noqa: ANN001
    page.wait_for_function("() => !document.getElementById('speak').disabled")


def test_speak_plays_the_generated_mp4(live_server, browser, tmp_path):
    server = live_server()
    page = open_page(browser, server.url, "wrong-key-0123456789")
    problem = page.locator("#problem")
    problem.wait_for(state="visible")
    assert problem.inner_text() == "401 Unauthorized: unknown or revoked API key"
    assert page.is_disabled("#speak")

    page.fill("#key", KEYS["alpha"])
    page.click("#use-key")
    ready(page)
    assert page.is_hidden("#problem") and page.is_hidden("#talk")  # no LiveKit here
    assert page.evaluate("sessionStorage.getItem('companion-avatar.api-key')") == KEYS["alpha"]
    assert page.locator("#companion option").all_inner_texts() == ["Astra (default)"]

    page.fill("#text", "Hello there, nice to meet you.")
    page.select_option("#emotion", "happy")
    page.click("#speak")
    page.wait_for_function(PLAYING)
    first = page.evaluate("document.getElementById('video').currentTime")
    page.wait_for_function(f"() => document.getElementById('video').currentTime > {first}")
    video = page.evaluate(
        "(() => { const v = document.getElementById('video');"
        " return {w: v.videoWidth, h: v.videoHeight, d: v.duration, err: v.error}; })()"
    )
    assert (video["w"], video["h"], video["err"]) == (128, 128, None)
    assert 1.0 < video["d"] < 5.0
    assert page.inner_text("#status").startswith("Rendered in ")
    assert page.get_attribute("#video", "data-played") == "file"

    shot = tmp_path / "demo-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"demo page screenshot: {shot}")  # the artifact's path in the test output

    # ?stream=true through MediaSource: the fragmented MP4 plays as it arrives
    page.check("#stream")
    page.fill("#text", "And now while it renders.")
    page.click("#speak")
    page.wait_for_function(
        "() => document.getElementById('video').dataset.played === 'stream'"
        " && document.getElementById('video').currentTime > 0.1"
    )
    assert page.is_hidden("#problem")


def test_problems_are_shown_and_an_upload_joins_the_menu(live_server, browser, tmp_path):
    from PIL import Image
    from skimage import data

    server = live_server("limits.max_text_chars=20")
    page = open_page(browser, server.url, KEYS["beta"])
    ready(page)

    long_text = "This sentence is longer than twenty characters."
    page.fill("#text", long_text)
    page.click("#speak")
    problem = page.locator("#problem")
    problem.wait_for(state="visible")
    assert problem.inner_text().startswith(
        f"413 Payload too large: text is {len(long_text)} characters, over the limit of 20 "
        "(limits.max_text_chars)"
    )

    not_image = tmp_path / "notes.png"
    not_image.write_bytes(b"these are not pixels")
    portrait = tmp_path / "portrait.png"
    Image.fromarray(data.astronaut()).save(portrait)
    page.click("#upload-box summary")
    page.fill("#upload-name", "Nova")
    page.set_input_files("#upload-files", str(not_image))
    page.click("#upload")
    page.wait_for_function("() => document.getElementById('problem').textContent.includes('422')")
    assert "'notes.png'" in problem.inner_text()

    page.set_input_files("#upload-files", str(portrait))
    page.click("#upload")
    page.wait_for_function("() => document.getElementById('companion').options.length === 2")
    assert page.is_hidden("#problem")
    chosen = page.eval_on_selector("#companion", "m => m.options[m.selectedIndex].text")
    assert chosen.startswith("Nova (cmp_")


def test_talk_in_real_time_only_when_livekit_is_configured(live_server, browser):
    lk = LiveKitSettings(url="ws://127.0.0.1:9", api_key="devkey", api_secret="s" * 32)
    server = live_server(livekit=lk)
    said = httpx.get(f"{server.url}/v1/realtime", headers=auth("alpha"))
    assert said.json() == {"enabled": True, "url": "ws://127.0.0.1:9"}  # never key or secret
    assert httpx.get(f"{server.url}/v1/realtime").status_code == 401
    page = open_page(browser, server.url, KEYS["alpha"])
    ready(page)
    if not VENDOR.is_file():  # the page works without the bundle: no button
        page.wait_for_timeout(500)
        assert page.is_hidden("#talk")
        pytest.skip("livekit-client is not bundled (make web); the button stays hidden")
    talk = page.locator("#talk")
    talk.wait_for(state="visible")
    talk.click()  # a token, then LiveKit's dispatch: nothing listens on port 9
    problem = page.locator("#problem")
    problem.wait_for(state="visible")
    assert problem.inner_text().startswith(
        "503 Service unavailable: LiveKit at ws://127.0.0.1:9 did not accept the avatar's dispatch"
    )
    assert problem.inner_text().endswith("(retry in 5 s)")
