"""``?stream=true`` and disconnects over a real uvicorn server on loopback: fragments reach the
client while the render is still going (held at a frame by ``tests.fakes.SlowRenderer``); a
render that fails mid-stream cuts the stream short and caches nothing; a client that leaves,
mid-stream or while its MP4 renders, cancels the render, which stops early and leaves no file."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from avatar.media import probe_mp4
from avatar.media.mp4_reader import mp4_boxes
from tests.fakes import SlowRenderer
from tests.serve.conftest import KEYS, auth, leftovers, on_loopback

TWO_SENTENCES = "Hello there, it is good to see you. I hope your day went well."
LONG = " ".join(["The quick brown fox jumps over the lazy dog."] * 12)  # ~30 s: ~750 frames


def wrapping(made: list[SlowRenderer], **kwargs: object):  # noqa: ANN201
    def wrap(renderer):  # noqa: ANN001, ANN202
        made.append(SlowRenderer(renderer, **kwargs))
        return made[-1]

    return wrap


def new_session(url: str) -> str:
    made = httpx.post(f"{url}/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha"))
    assert made.status_code == 201, made.text
    return made.json()["id"]


def settle(app, what: str) -> None:  # noqa: ANN001
    """Wait (bounded: 30 s) until the app's pool has no render running or waiting."""
    pool = app.state.serve.pool
    for _ in range(3000):
        if pool.running == 0 and pool.depth == 0:
            return
        time.sleep(0.01)
    pytest.fail(f"{what}: the render still runs ({pool.running} running, {pool.depth} admitted)")


def test_fragments_arrive_while_the_render_goes_on(make_wrapped_app, tmp_path: Path) -> None:
    gate, made = threading.Event(), []
    app = make_wrapped_app(wrapping(made, gate=gate, hold_at=40))
    with on_loopback(app) as url:
        generate = f"{new_session(url)}/generate"
        try:
            with httpx.Client(base_url=f"{url}/v1/sessions/", timeout=60) as client:
                with client.stream(
                    "POST",
                    f"{generate}?stream=true",
                    json={"text": TWO_SENTENCES},
                    headers=auth("alpha"),
                ) as response:
                    assert response.status_code == 200
                    assert response.headers["content-type"] == "video/mp4"
                    chunks = response.iter_raw()
                    got = b""
                    while "mdat" not in mp4_boxes(got):
                        got += next(chunks)
                    # a whole fragment is here, and the render is held at frame 40 (of ~90)
                    assert mp4_boxes(got)[:3] == ["ftyp", "moov", "moof"]
                    assert made[0].frames <= 40 and app.state.serve.pool.running == 1
                    gate.set()
                    got += b"".join(chunks)
        finally:
            gate.set()
        assert mp4_boxes(got)[-1] == "mfra"
        (tmp_path / "s.mp4").write_bytes(got)
        info = probe_mp4(tmp_path / "s.mp4")
        assert info["n_video_frames"] == made[0].frames > 40
        assert info["video_duration"] == info["audio_duration"]
        settle(app, "after a complete stream")
        cached = httpx.post(
            f"{url}/v1/sessions/{generate}", json={"text": TWO_SENTENCES}, headers=auth("alpha")
        )
        assert cached.status_code == 200 and cached.content == got
        assert made[0].frames == info["n_video_frames"], "served from the cache, not rendered"


def _stream_failing_at_frame_30(make_wrapped_app) -> tuple[bytes, BaseException | None]:  # noqa: ANN001
    """Stream a render that fails at frame 30: (the bytes received, the transfer's error);
    checks that the MP4 is cut short and nothing is cached or left on disk."""
    made: list[SlowRenderer] = []
    app = make_wrapped_app(wrapping(made, fail_at=30))
    error: BaseException | None = None
    got = b""
    with on_loopback(app) as url:
        sid = new_session(url)
        try:
            with httpx.stream(
                "POST",
                f"{url}/v1/sessions/{sid}/generate?stream=true",
                json={"text": TWO_SENTENCES},
                headers=auth("alpha"),
            ) as response:
                assert response.status_code == 200
                for chunk in response.iter_raw():
                    got += chunk
        except httpx.RemoteProtocolError as exc:
            error = exc
        assert mp4_boxes(got)[:3] == ["ftyp", "moov", "moof"] and "mfra" not in mp4_boxes(got)
        settle(app, "after a failed stream")
        state = app.state.serve
        assert leftovers(state.settings.var_dir) == [] and state.store.outputs(sid) == []
        metrics = httpx.get(f"{url}/metrics").text
        assert 'avatar_render_seconds_count{kind="stream"}' not in metrics
    return got, error


def test_a_failure_mid_stream_cuts_the_mp4_short_and_caches_nothing(make_wrapped_app) -> None:
    _stream_failing_at_frame_30(make_wrapped_app)


def test_a_failure_mid_stream_closes_the_connection(make_wrapped_app) -> None:
    _, error = _stream_failing_at_frame_30(make_wrapped_app)
    assert error is not None, "the client saw a clean end of a truncated body"


def test_a_client_leaving_mid_stream_cancels_the_render(make_wrapped_app) -> None:
    made: list[SlowRenderer] = []
    app = make_wrapped_app(wrapping(made, delay_s=0.02))
    with on_loopback(app) as url:
        generate = f"{url}/v1/sessions/{new_session(url)}/generate"
        with httpx.stream(
            "POST", f"{generate}?stream=true", json={"text": LONG}, headers=auth("alpha")
        ) as response:
            got = b""
            for chunk in response.iter_raw():
                got += chunk
                if "mdat" in mp4_boxes(got):
                    break  # leaving: the connection closes with the block
        settle(app, "after the client left")
        assert 0 < made[0].frames < 375, "stopped long before the end (~750 frames)"
        assert leftovers(app.state.serve.settings.var_dir) == []


def test_a_client_leaving_before_its_mp4_cancels_the_render(make_wrapped_app) -> None:
    made: list[SlowRenderer] = []
    app = make_wrapped_app(wrapping(made, delay_s=0.02))
    with on_loopback(app) as url:
        sid = new_session(url)
        body = json.dumps({"text": LONG}).encode()
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(
                (
                    f"POST /v1/sessions/{sid}/generate HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {KEYS['alpha']}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            assert made[0].started.wait(60), "the render started"  # (built with the session)
        # the socket is closed: the client has gone while its MP4 renders
        settle(app, "after the client left")
        assert 0 < made[0].frames < 375, "stopped long before the end (~750 frames)"
        assert leftovers(app.state.serve.settings.var_dir) == []
        assert app.state.serve.store.outputs(sid) == []


def test_the_plain_asgi_metrics_middleware_lets_a_failed_stream_close_the_connection() -> None:
    """What serve/app.py gets by registering :class:`serve.metrics.MetricsMiddleware` with
    ``app.add_middleware`` instead of ``@app.middleware("http")``."""
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    from serve.metrics import Metrics, MetricsMiddleware

    metrics = Metrics()
    app = FastAPI()
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def body():  # noqa: ANN202
        yield b"the first fragment"
        raise RuntimeError("the render failed")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stream/{name}")
    async def stream(name: str) -> StreamingResponse:
        return StreamingResponse(body(), media_type="video/mp4")

    with on_loopback(app) as url:
        got = b""
        with pytest.raises(httpx.RemoteProtocolError):
            with httpx.stream("GET", f"{url}/stream/x") as response:
                assert response.status_code == 200
                for chunk in response.iter_raw():
                    got += chunk
    assert got == b"the first fragment"
    sample = 'avatar_http_request_seconds_count{method="GET",route="/stream/{name}",status="200"}'
    assert f"{sample} 1.0" in metrics.exposition().decode()
