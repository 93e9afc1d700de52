"""Persistence across a restart: a new app on the same ``var_dir`` and database finds the
companion, the session and the cached MP4, and all of them still work (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from avatar.media import probe_mp4
from tests.serve.conftest import auth

pytestmark = pytest.mark.anyio


def _renders(state) -> float:  # noqa: ANN001 (ServeState)
    count = state.metrics.registry.get_sample_value("avatar_render_seconds_count", {"kind": "text"})
    return count or 0.0


async def test_companion_session_and_cache_survive_a_restart(
    open_app, database_url, astronaut_png, tmp_path
):
    async with open_app(database_url=database_url) as (client, state):
        made = await client.post(
            "/v1/companions",
            data={"name": "Astra"},
            files=[("images", ("astra.png", astronaut_png, "image/png"))],
            headers=auth("alpha"),
        )
        assert made.status_code == 201, made.text
        companion = made.json()
        opened = await client.post(
            "/v1/sessions",
            json={"companion_id": companion["id"], "emotion": "happy"},
            headers=auth("alpha"),
        )
        session = opened.json()
        first = await client.post(
            f"/v1/sessions/{session['id']}/generate",
            json={"text": "Hello again."},
            headers=auth("alpha"),
        )
        assert first.status_code == 200 and _renders(state) == 1
        session = (await client.get(f"/v1/sessions/{session['id']}", headers=auth("alpha"))).json()
        folder = state.companions_dir / state.store.tenant_by_name("alpha").id / companion["id"]
        var_dir = state.settings.var_dir

    async with open_app(database_url=database_url) as (client, state):
        assert state.settings.var_dir == var_dir
        listed = await client.get("/v1/companions", headers=auth("alpha"))
        assert [c["id"] for c in listed.json()] == ["default", companion["id"]]
        got = await client.get(f"/v1/companions/{companion['id']}", headers=auth("alpha"))
        assert got.json() == companion
        assert (
            await client.get(f"/v1/sessions/{session['id']}", headers=auth("alpha"))
        ).json() == session

        cached = await client.post(
            f"/v1/sessions/{session['id']}/generate",
            json={"text": "Hello again."},
            headers=auth("alpha"),
        )
        assert cached.status_code == 200 and cached.headers["etag"] == first.headers["etag"]
        assert cached.content == first.content and _renders(state) == 0  # from the cache
        unchanged = await client.post(
            f"/v1/sessions/{session['id']}/generate",
            json={"text": "Hello again."},
            headers={**auth("alpha"), "If-None-Match": first.headers["etag"]},
        )
        assert unchanged.status_code == 304

        new = await client.post(
            f"/v1/sessions/{session['id']}/generate",
            json={"text": "Still here."},
            headers=auth("alpha"),
        )
        assert new.status_code == 200 and _renders(state) == 1
        path = tmp_path / "after-restart.mp4"
        path.write_bytes(new.content)
        info = probe_mp4(path)
        assert (info["video_codec"], info["audio_codec"], info["width"]) == ("h264", "aac", 128)

        session_dir = state.outputs_dir / state.store.tenant_by_name("alpha").id / session["id"]
        assert folder.is_dir() and len(list(session_dir.glob("*.mp4"))) == 2
        deleted = await client.delete(f"/v1/companions/{companion['id']}", headers=auth("alpha"))
        assert deleted.status_code == 204 and not folder.exists() and not session_dir.exists()
