"""``/v1/sessions``: fields checked when the session opens, idle expiry, the sweep that removes
expired sessions and their files."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.serve.conftest import auth

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


async def test_a_session_keeps_its_settings(client):
    made = await client.post(
        "/v1/sessions",
        json={
            "companion_id": "default",
            "voice": "flite-slt",
            "emotion": "smile",
            "renderer": {"size": 256},
        },
        headers=auth("alpha"),
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["voice"], body["emotion"], body["size"]) == ("flite-slt", "happy", 256)
    created, expires = (datetime.fromisoformat(body[k]) for k in ("created_at", "expires_at"))
    assert (expires - created).total_seconds() == 3600  # sessions.idle_ttl_s
    got = await client.get(f"/v1/sessions/{body['id']}", headers=auth("alpha"))
    assert got.json() == body
    plain = await client.post(
        "/v1/sessions", json={"companion_id": "default"}, headers=auth("beta")
    )
    assert (plain.json()["voice"], plain.json()["emotion"], plain.json()["size"]) == (
        "heart",
        None,
        128,
    )


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"voice": "nobody"}, "voice: unknown voice 'nobody'; known voices: heart, flite-kal"),
        ({"emotion": "grumpy"}, "emotion: unknown emotion 'grumpy'; known: "),
        ({"renderer": {"size": 999}}, "renderer.size: must be one of [128, 256], got 999"),
        ({"renderer": {"size": "big"}}, "renderer.size: Input should be a valid integer"),
        ({"mood": "happy"}, "mood: Extra inputs are not permitted"),
    ],
)
async def test_bad_fields_are_422_naming_the_field(client, fields, needle):
    refused = await client.post(
        "/v1/sessions", json={"companion_id": "default", **fields}, headers=auth("alpha")
    )
    assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
    assert needle in refused.json()["detail"], refused.json()


async def test_an_unknown_companion_is_404(client):
    refused = await client.post(
        "/v1/sessions", json={"companion_id": "cmp_nope"}, headers=auth("alpha")
    )
    assert refused.status_code == 404 and refused.json()["detail"] == "no companion 'cmp_nope'"


async def test_idle_sessions_expire(open_app):
    async with open_app("sessions.idle_ttl_s=0.000001") as (client, _state):
        made = await client.post(
            "/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha")
        )
        assert made.status_code == 201
        sid = made.json()["id"]
        for method, path, body in [
            ("GET", f"/v1/sessions/{sid}", None),
            ("POST", f"/v1/sessions/{sid}/generate", {"text": "Hi."}),
            ("POST", f"/v1/sessions/{sid}/token", {}),
        ]:
            gone = await client.request(method, path, json=body, headers=auth("alpha"))
            assert gone.status_code == 404 and gone.headers["content-type"] == PROBLEM
            assert gone.json()["detail"] == f"no session {sid!r} (or it expired)"


async def test_use_keeps_a_session_alive(client):
    made = await client.post(
        "/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha")
    )
    sid, first = made.json()["id"], datetime.fromisoformat(made.json()["expires_at"])
    assert (
        await client.post(
            f"/v1/sessions/{sid}/generate", json={"text": "Hi."}, headers=auth("alpha")
        )
    ).status_code == 200
    later = await client.get(f"/v1/sessions/{sid}", headers=auth("alpha"))
    assert datetime.fromisoformat(later.json()["expires_at"]) > first


async def test_the_sweep_removes_expired_sessions_rows_and_files(open_app):
    async with open_app() as (client, state):
        ids = []
        for _ in range(2):
            made = await client.post(
                "/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha")
            )
            sid = made.json()["id"]
            video = await client.post(
                f"/v1/sessions/{sid}/generate", json={"text": "Hi."}, headers=auth("alpha")
            )
            assert video.status_code == 200
            ids.append(sid)
        old, live = (state.store.session(state.store.tenant_by_name("alpha").id, s) for s in ids)
        old_dir, live_dir = state.session_dir(old), state.session_dir(live)
        assert len(list(old_dir.glob("*.mp4"))) == len(list(live_dir.glob("*.mp4"))) == 1
        orphan = state.outputs_dir / old.tenant_id / "ses_left_by_a_crash"
        orphan.mkdir()
        (orphan / "x.mp4").write_bytes(b"partial")

        state.store.touch_session(old.id, 1e-6)  # idle for longer than a tiny TTL
        assert state.sweep_expired() == 1

        assert not old_dir.exists() and not orphan.exists()
        assert state.store.outputs(old.id) == [] and state.store.existing_sessions(ids) == {live.id}
        assert (
            await client.get(f"/v1/sessions/{old.id}", headers=auth("alpha"))
        ).status_code == 404
        assert len(list(live_dir.glob("*.mp4"))) == 1 and len(state.store.outputs(live.id)) == 1
        again = await client.post(
            f"/v1/sessions/{live.id}/generate", json={"text": "Hi."}, headers=auth("alpha")
        )
        assert again.status_code == 200 and len(list(live_dir.glob("*.mp4"))) == 1
        assert state.sweep_expired() == 0


async def test_the_apps_sweeper_runs_on_its_interval(open_app):
    import anyio

    async with open_app("sessions.idle_ttl_s=0.000001", "sessions.cleanup_interval_s=0.05") as (
        client,
        state,
    ):
        made = await client.post(
            "/v1/sessions", json={"companion_id": "default"}, headers=auth("alpha")
        )
        sid = made.json()["id"]
        folder = state.outputs_dir / state.store.tenant_by_name("alpha").id / sid
        folder.mkdir(parents=True)
        (folder / "cached.mp4").write_bytes(b"mp4")
        with anyio.fail_after(30):  # a deadline for a hung sweeper, not a speed check
            while state.store.existing_sessions([sid]) or folder.exists():
                await anyio.sleep(0.05)
