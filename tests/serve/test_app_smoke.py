"""The app end to end in a few calls: health, auth, a session, an MP4, its ETag, isolation."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from avatar.media import probe_mp4
from tests.serve.conftest import auth

pytestmark = pytest.mark.anyio


async def test_health_needs_no_key_and_the_api_does(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    denied = await client.get("/v1/companions")
    assert denied.status_code == 401
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.json()["status"] == 401 and "Bearer" in denied.json()["detail"]
    wrong = await client.get("/v1/companions", headers={"Authorization": "Bearer nope-nope-nope"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "unknown or revoked API key"


async def test_generate_an_mp4_then_from_the_cache(client, tmp_path):
    session = await client.post(
        "/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha")
    )
    assert session.status_code == 201 and session.json()["size"] == 128
    sid = session.json()["id"]
    made = await client.post(
        f"/v1/sessions/{sid}/generate", json={"text": "Hello there."}, headers=auth("alpha")
    )
    assert made.status_code == 200 and made.headers["content-type"] == "video/mp4"
    path = tmp_path / "got.mp4"
    path.write_bytes(made.content)
    info = probe_mp4(path)
    assert (info["video_codec"], info["audio_codec"], info["width"]) == ("h264", "aac", 128)
    assert info["faststart"] and abs(info["video_duration"] - info["audio_duration"]) <= 0.04
    again = await client.post(
        f"/v1/sessions/{sid}/generate",
        json={"text": "Hello there."},
        headers={**auth("alpha"), "If-None-Match": made.headers["etag"]},
    )
    assert again.status_code == 304 and again.headers["etag"] == made.headers["etag"]
    other = await client.get(f"/v1/sessions/{sid}", headers=auth("beta"))
    assert other.status_code == 404 and "no session" in other.json()["detail"]


async def test_shutdown_stops_the_render_worker_processes(open_app):
    async with open_app() as (_, state):
        pool = state.pipeline(128).render_ahead.pool
        assert pool is not None, "served pipelines render in worker processes (render.yaml)"
        pool.workers()  # what a long clip does: the workers start
        assert pool.started and mp.active_children()
    assert not pool.started
    assert mp.active_children() == []
