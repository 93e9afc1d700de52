"""``make serve``'s command as a real process on loopback, and the README's ``curl`` commands
run as written against it, so the README's "Serve" section cannot drift from the API.

The section's shell block is run by bash (``set -euo pipefail``) in a scratch directory with
only the host and port substituted; ``curl`` is wrapped to report each response's status on
stderr, and each must match the ``# -> NNN`` comment its command ends with.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx

from avatar.media import probe_mp4
from tests.serve.conftest import DEMO_KEY

ROOT = Path(__file__).parents[2]
README_HOST = "http://127.0.0.1:8000"
README_KEY = "demo-key-0123456789"
_STATUS = re.compile(r"# -> (\d{3})\b")
_REPORT = "@@status "


def serve_block(readme: str) -> str:
    """The shell block of the README's "Serve" section that exercises the endpoints."""
    section = readme.split("\n## Serve", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return next(block for block in blocks if "curl " in block and "$API" in block)


def expected_statuses(block: str) -> list[int]:
    """The ``# -> NNN`` of each curl command, in order (continuation lines joined)."""
    commands = re.sub(r"\\\n", " ", block).splitlines()
    statuses = []
    for line in commands:
        code = line.split("#", 1)[0]
        if re.search(r"(^|[\s($])curl ", code):
            found = _STATUS.search(line)
            assert found, f"README curl without an expected status comment: {line.strip()}"
            statuses.append(int(found.group(1)))
    return statuses


def test_readme_curls_work_as_written(serve_process, tmp_path):
    server = serve_process("sizes=[128,256,512]", "default_size=128")
    page = httpx.get(f"{server.url}/")  # the demo page, and the API's 404 beside it
    assert page.status_code == 200 and "<title>Companion avatar: demo</title>" in page.text
    assert "javascript" in httpx.get(f"{server.url}/app.js").headers["content-type"]
    unknown = httpx.get(f"{server.url}/nowhere")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"

    block = serve_block((ROOT / "README.md").read_text())
    expected = expected_statuses(block)
    assert len(expected) >= 16  # one per endpoint, plus the error examples

    work = tmp_path / "readme"
    work.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    script = "\n".join(
        [
            "set -euo pipefail",
            f"curl() {{ command curl -w '%{{stderr}}{_REPORT}%{{http_code}}\\n' \"$@\"; }}",
            block.replace(README_HOST, server.url).replace(README_KEY, DEMO_KEY),
        ]
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=work, capture_output=True, text=True, timeout=300
    )
    got = [int(line[len(_REPORT) :]) for line in done.stderr.splitlines() if _REPORT in line]
    assert done.returncode == 0, f"the README block failed:\n{done.stdout}\n{done.stderr}"
    assert got == expected, done.stdout

    hello = probe_mp4(work / "out" / "hello.mp4")
    assert (hello["video_codec"], hello["audio_codec"], hello["width"]) == ("h264", "aac", 128)
    assert abs(hello["video_duration"] - hello["audio_duration"]) <= 0.04
    for name in ("synced.mp4", "streamed.mp4"):
        assert probe_mp4(work / "out" / name)["n_video_frames"] > 10, name
    assert DEMO_KEY not in server.log.read_text()  # keys are never logged
