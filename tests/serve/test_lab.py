"""serve.lab: ``python -m serve`` started for real on loopback from Python (a notebook), its
key, its errors, and its process always cleaned up (stop, a failed start, interpreter exit, a
killed parent)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from serve.lab import LocalAPI, Reply, local_api, samples

ROOT = Path(__file__).parents[2]


@pytest.fixture
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tempfile``'s folder moved into ``tmp_path``, to see what a server leaves behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def gone(pid: int, within_s: float = 30.0) -> bool:
    """Whether process ``pid`` has ended (or is a zombie) within ``within_s`` seconds."""
    end = time.monotonic() + within_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.1)


def refused(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


def test_serves_on_loopback_with_its_own_key_and_state(identity_cache, scratch_tmp):
    with local_api(sizes=(128,), identity_cache=identity_cache) as api:
        assert api.url.startswith("http://127.0.0.1:") and api.running
        assert api.var_dir.is_relative_to(scratch_tmp)  # never the repository's var/
        assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{api.url}/readyz").json() == {"status": "ready"}

        bad = httpx.get(f"{api.url}/v1/companions", headers={"Authorization": "Bearer wrong-key"})
        assert bad.status_code == 401
        assert bad.headers["content-type"] == "application/problem+json"
        assert bad.headers["www-authenticate"].startswith("Bearer")
        assert bad.json()["detail"] == "unknown or revoked API key"

        with api.client() as http:
            assert [c["id"] for c in http.get("/v1/companions").json()] == ["default"]
            session = http.post("/v1/sessions", json={"companion_id": "default"}).json()
            assert session["size"] == 128  # sizes' first is the default size
            metrics = http.get("/metrics").text
        seen = {
            labels["route"] for labels, _ in samples(metrics, "avatar_http_request_seconds_count")
        }
        assert {"/v1/companions", "/v1/sessions"} <= seen
        assert (api.var_dir / "avatar.db").is_file()  # SQLite in the lab's own folder
        assert api.key not in api.log_path.read_text()  # keys are never logged
        pid, url = api.pid, api.url
    assert gone(pid, within_s=0) and refused(url)
    assert list(scratch_tmp.iterdir()) == []  # its folder removed
    # a second stop is harmless; SIGTERM ended it (uvicorn re-raises it after shutting down),
    # no SIGKILL was needed
    assert api.stop() in (0, -signal.SIGTERM)


def test_a_server_that_cannot_start_raises_its_error_and_leaves_nothing(scratch_tmp):
    with pytest.raises(RuntimeError, match=r"limits\.workers must be > 0"):
        LocalAPI.start("limits.workers=0", sizes=(128,))
    assert list(scratch_tmp.iterdir()) == []


def test_not_ready_in_time_stops_the_server(identity_cache, scratch_tmp):
    with pytest.raises(TimeoutError, match="did not answer"):
        LocalAPI.start(sizes=(128,), identity_cache=identity_cache, ready_timeout_s=0)
    assert list(scratch_tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"overrides": ("port=9000",)}, "'port'"),
        ({"overrides": ("var_dir=var",)}, "'var_dir'"),
        ({"overrides": (3,)}, "overrides are strings"),
        ({"sizes": ()}, "sizes must be positive"),
        ({"render_overrides": ("motion.seed='1'",)}, "quotes"),
        ({"key": "short"}, "key 8"),
        ({"tenant": "a:b"}, "tenant"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(kwargs, named, scratch_tmp):
    overrides = kwargs.pop("overrides", ())
    with pytest.raises(ValueError, match=named):
        LocalAPI.start(*overrides, **kwargs)
    assert list(scratch_tmp.iterdir()) == []


_CHILD = textwrap.dedent(
    """
    import sys, time
    from serve.lab import LocalAPI
    api = LocalAPI.start(sizes=(128,), identity_cache=sys.argv[1])
    print(api.pid, api.var_dir.parent, flush=True)
    if sys.argv[2] == "hang":
        time.sleep(600)
    """
)


def test_the_server_ends_with_the_python_that_started_it(identity_cache, tmp_path):
    """A kernel that exits without ``stop()`` (atexit: stopped, folder removed) and one that is
    killed (SIGKILL: no atexit; PR_SET_PDEATHSIG stops the server). Both run at once."""
    children: dict[str, subprocess.Popen[str]] = {}
    started: dict[str, list[str]] = {}
    for how in ("exit", "killed"):
        scratch = tmp_path / how
        scratch.mkdir()
        children[how] = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(identity_cache), "hang" if how == "killed" else ""],
            stdout=subprocess.PIPE,
            text=True,
            cwd=scratch,
            env={**os.environ, "TMPDIR": str(scratch)},
        )
    try:
        started = {how: child.stdout.readline().split() for how, child in children.items()}
        assert all(len(words) == 2 for words in started.values()), started
        children["killed"].kill()
        assert children["killed"].wait(timeout=60) == -9
        assert children["exit"].wait(timeout=60) == 0
        for how, (pid, _) in started.items():
            assert gone(int(pid)), f"{how}: the server outlived the Python that started it"
        assert not Path(started["exit"][1]).exists()  # atexit removed its folder
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
        for words in started.values():  # after a failure above: leave no server behind
            if len(words) == 2 and not gone(int(words[0]), within_s=0):
                os.kill(int(words[0]), signal.SIGKILL)


def test_reply_reads_problems_and_saves_only_videos(tmp_path):
    problem = b'{"type": "t", "title": "Unprocessable content", "status": 422, "detail": "empty"}'
    bad = Reply(422, 0.01, "application/problem+json", problem)
    assert not bad.ok and bad.problem["detail"] == "empty"
    with pytest.raises(ValueError, match="no MP4 to save: status 422"):
        bad.save(tmp_path / "x.mp4")
    good = Reply(200, 0.5, "video/mp4", b"\x00\x00\x00\x18ftypmp42", etag="abc")
    assert good.ok and good.problem is None
    assert good.save(tmp_path / "a" / "b.mp4").read_bytes() == good.body
