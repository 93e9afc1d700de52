"""``POST /v1/sessions/{id}/avatar``: the avatar worker is dispatched into the voice agent's room
(through a fake LiveKit agent dispatch API) with the metadata the worker reads; names are
validated, other tenants' sessions are 404, and LiveKit missing or refusing is a 503."""

from __future__ import annotations

import json

import httpx
import pytest

from serve.livekit_tokens import avatar_identity
from serve.settings import LiveKitSettings
from tests.serve.conftest import auth
from tests.serve.fake_livekit import FakeLiveKit

pytestmark = pytest.mark.anyio

KEY, SECRET = "APItestkey", "test-secret-0123456789-0123456789-0123"
PROBLEM = "application/problem+json"
BODY = {"room": "call-7f3a", "agent_identity": "agent-AJ_voice"}


@pytest.fixture
def fake_livekit():
    with FakeLiveKit(KEY, SECRET) as fake:
        yield fake


async def _session(client: httpx.AsyncClient, tenant: str = "alpha", **body: object) -> str:
    made = await client.post(
        "/v1/sessions", json={"companion_id": "default", **body}, headers=auth(tenant)
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


async def test_dispatches_the_worker_into_the_agents_room(open_app, fake_livekit):
    lk = LiveKitSettings(fake_livekit.url, KEY, SECRET)
    async with open_app("realtime.audio_sample_rate=16000", livekit=lk) as (client, state):
        sid = await _session(client, emotion="happy")
        before = (await client.get(f"/v1/sessions/{sid}", headers=auth("alpha"))).json()
        got = await client.post(f"/v1/sessions/{sid}/avatar", json=BODY, headers=auth("alpha"))
        assert got.status_code == 200, got.text
        answer = got.json()
        assert answer == {
            "dispatch_id": "AD_0001",
            "avatar_identity": avatar_identity(sid),
            "room": "call-7f3a",
            "audio_sample_rate": 16000,  # realtime.audio_sample_rate
        }

        listed, created = fake_livekit.requests
        assert (listed.method, created.method) == ("ListDispatch", "CreateDispatch")
        assert created.claims.video.room_admin and created.claims.video.room == "call-7f3a"
        assert created.body["agent_name"] == "companion-avatar" == state.settings.agent_name
        assert created.body["room"] == "call-7f3a"
        meta = json.loads(created.body["metadata"])
        assert meta == {
            "session_id": sid,
            "tenant_id": state.store.tenant_by_name("alpha").id,
            "companion_id": "default",
            "companion_name": state.default_companion.name,
            "voice": "heart",
            "emotion": "happy",
            "size": 128,
            "room": "call-7f3a",
            "agent_identity": "agent-AJ_voice",
            "avatar_identity": avatar_identity(sid),
        }

        again = await client.post(f"/v1/sessions/{sid}/avatar", json=BODY, headers=auth("alpha"))
        assert again.json()["dispatch_id"] == "AD_0001"  # a retry reuses the same dispatch
        other = {**BODY, "agent_identity": "agent-AJ_restarted"}
        moved = await client.post(f"/v1/sessions/{sid}/avatar", json=other, headers=auth("alpha"))
        assert moved.json()["dispatch_id"] == "AD_0002"  # another agent: a new dispatch
        assert len(fake_livekit.dispatches) == 2

        after = (await client.get(f"/v1/sessions/{sid}", headers=auth("alpha"))).json()
        assert after["expires_at"] > before["expires_at"]  # a call keeps the session alive


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"room": "", "agent_identity": "agent-1"}, "room"),
        ({"room": "a room", "agent_identity": "agent-1"}, "room"),
        ({"room": "r" * 129, "agent_identity": "agent-1"}, "room"),
        ({"room": "call/1", "agent_identity": "agent-1"}, "room"),
        ({"room": "call-1", "agent_identity": "agent 1"}, "agent_identity"),
        ({"room": "call-1", "agent_identity": ""}, "agent_identity"),
        ({"room": "call-1"}, "agent_identity"),
        ({"room": "call-1", "agent_identity": "agent-1", "extra": 1}, "extra"),
        ({"room": "avatar-ses_someone_else", "agent_identity": "agent-1"}, "room"),
    ],
)
async def test_bad_names_are_422_naming_the_field(open_app, fake_livekit, body, field):
    lk = LiveKitSettings(fake_livekit.url, KEY, SECRET)
    async with open_app(livekit=lk) as (client, _state):
        sid = await _session(client)
        got = await client.post(f"/v1/sessions/{sid}/avatar", json=body, headers=auth("alpha"))
        assert got.status_code == 422 and got.headers["content-type"] == PROBLEM
        assert field in got.json()["detail"]
        assert fake_livekit.requests == []


async def test_the_sessions_own_room_is_allowed_and_the_avatars_identity_is_not(
    open_app, fake_livekit
):
    lk = LiveKitSettings(fake_livekit.url, KEY, SECRET)
    async with open_app(livekit=lk) as (client, _state):
        sid = await _session(client)
        own = {"room": f"avatar-{sid}", "agent_identity": "agent-1"}
        got = await client.post(f"/v1/sessions/{sid}/avatar", json=own, headers=auth("alpha"))
        assert got.status_code == 200, got.text
        selfish = {"room": "call-1", "agent_identity": avatar_identity(sid)}
        got = await client.post(f"/v1/sessions/{sid}/avatar", json=selfish, headers=auth("alpha"))
        assert got.status_code == 422 and got.json()["detail"].startswith("agent_identity:")


async def test_another_tenants_session_is_404_and_reaches_no_livekit(open_app, fake_livekit):
    lk = LiveKitSettings(fake_livekit.url, KEY, SECRET)
    async with open_app(livekit=lk) as (client, _state):
        sid = await _session(client, "alpha")
        got = await client.post(f"/v1/sessions/{sid}/avatar", json=BODY, headers=auth("beta"))
        assert got.status_code == 404 and got.headers["content-type"] == PROBLEM
        assert fake_livekit.requests == []
        missing = await client.post(
            "/v1/sessions/ses_nope/avatar", json=BODY, headers=auth("alpha")
        )
        assert missing.status_code == 404
        assert (
            await client.post(f"/v1/sessions/{sid}/avatar", json=BODY)
        ).status_code == 401  # no key


async def test_a_deleted_companion_is_404(open_app, fake_livekit, astronaut_png):
    lk = LiveKitSettings(fake_livekit.url, KEY, SECRET)
    async with open_app(livekit=lk) as (client, _state):
        alpha = auth("alpha")
        made = await client.post(
            "/v1/companions",
            data={"name": "Nova"},
            files=[("images", ("nova.png", astronaut_png, "image/png"))],
            headers=alpha,
        )
        assert made.status_code == 201, made.text
        cid = made.json()["id"]
        sid = await _session(client, companion_id=cid)
        assert (await client.delete(f"/v1/companions/{cid}", headers=alpha)).status_code == 204
        got = await client.post(f"/v1/sessions/{sid}/avatar", json=BODY, headers=alpha)
        assert got.status_code == 404 and got.headers["content-type"] == PROBLEM
        assert fake_livekit.requests == []


async def test_without_livekit_it_is_503_saying_what_to_set(client):
    sid = await _session(client)
    got = await client.post(f"/v1/sessions/{sid}/avatar", json=BODY, headers=auth("alpha"))
    assert got.status_code == 503 and got.headers["content-type"] == PROBLEM
    body = got.json()
    assert body["type"].endswith("/livekit-not-configured")
    assert "set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET" in body["detail"]


async def test_livekit_refusing_is_503_with_retry_after(open_app, fake_livekit):
    lk = LiveKitSettings(fake_livekit.url, KEY, "not-the-secret-0123456789-0123456789")
    async with open_app(livekit=lk) as (client, _state):
        sid = await _session(client)
        got = await client.post(f"/v1/sessions/{sid}/avatar", json=BODY, headers=auth("alpha"))
        assert got.status_code == 503 and got.headers["retry-after"] == "5"
        assert got.json()["type"].endswith("/livekit-unavailable")
        assert lk.api_secret not in got.text
        assert fake_livekit.requests[0].claims is None  # refused: a token of the wrong secret
