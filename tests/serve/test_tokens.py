"""LiveKit tokens: the user's grant is the session's room only (decoded and verified with
``livekit.api.TokenVerifier``), the avatar worker's token follows livekit-agents' avatar contract,
and the route dispatches the worker through a fake LiveKit agent dispatch API."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime

import httpx
import jwt
import pytest
from livekit import api

from serve.livekit_tokens import (
    ATTRIBUTE_PUBLISH_ON_BEHALF,
    avatar_identity,
    avatar_token,
    room_name,
    user_token,
)
from serve.settings import LiveKitSettings
from tests.serve.conftest import auth
from tests.serve.fake_livekit import FakeLiveKit

KEY, SECRET = "APItestkey", "test-secret-0123456789-0123456789-0123"
LK = LiveKitSettings("ws://livekit.invalid", KEY, SECRET)
REAL = [os.environ.get(k, "") for k in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")]
"""A real server's settings, read at import (the app fixtures clear LIVEKIT_* afterwards)."""
PROBLEM = "application/problem+json"
USER_GRANT = {
    "roomJoin": True,
    "room": "avatar-ses_1",
    "canPublish": True,
    "canSubscribe": True,
    "canPublishData": True,
}


def payload(token: str, secret: str = SECRET) -> dict:
    """The token's claims, signature and issuer checked."""
    return jwt.decode(token, secret, algorithms=["HS256"], issuer=KEY)


# -- minting ----------------------------------------------------------------------------------


def test_user_token_is_scoped_to_the_room_and_nothing_else() -> None:
    minted = user_token(LK, room="avatar-ses_1", identity="user-42", name="Sam", ttl_s=600)
    claims = api.TokenVerifier(KEY, SECRET).verify(minted.jwt)
    assert (claims.identity, claims.name, claims.kind) == ("user-42", "Sam", "")
    video = claims.video
    assert (video.room, video.room_join, video.can_publish) == ("avatar-ses_1", True, True)
    assert video.can_subscribe and video.can_publish_data
    for power in ("room_create", "room_list", "room_record", "room_admin", "recorder", "agent"):
        assert getattr(video, power) is None, power
    assert video.hidden is None and video.ingress_admin is None and video.destination_room is None
    raw = payload(minted.jwt)
    assert set(raw) == {"sub", "iss", "nbf", "exp", "name", "video"}  # no sip, agent, attributes
    assert raw["video"] == USER_GRANT
    assert raw["exp"] - raw["nbf"] == 600
    assert int(minted.expires_at.timestamp()) == raw["exp"]
    with pytest.raises(jwt.InvalidSignatureError):
        api.TokenVerifier(KEY, "another-secret-0123456789-0123456789").verify(minted.jwt)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"ttl_s": 601}, r"ttl_s must be in \(0, 600\]"),
        ({"ttl_s": 0}, r"ttl_s must be in \(0, 600\]"),
        ({"identity": "avatar-worker-1"}, "reserved"),
        ({"identity": "agent-AJ_x"}, "reserved"),
        ({"room": ""}, "room-scoped join grant"),
    ],
)
def test_user_token_refuses(changes: dict, needle: str) -> None:
    args = {"room": "avatar-ses_1", "identity": "u", "name": "u", "ttl_s": 60, **changes}
    with pytest.raises(ValueError, match=needle):
        user_token(LK, **args)


def test_avatar_worker_token_follows_the_livekit_agents_contract() -> None:
    from livekit.agents.types import ATTRIBUTE_PUBLISH_ON_BEHALF as AGENTS_ATTRIBUTE

    assert ATTRIBUTE_PUBLISH_ON_BEHALF == AGENTS_ATTRIBUTE
    sid = "ses_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
    identity = avatar_identity(sid)
    minted = avatar_token(
        LK,
        room=room_name(sid),
        identity=identity,
        name="Astra",
        on_behalf_of="agent-AJ_voice",
        ttl_s=300,
    )
    claims = api.TokenVerifier(KEY, SECRET).verify(minted.jwt)
    assert (claims.identity, claims.name, claims.kind) == (identity, "Astra", "agent")
    assert claims.attributes == {"lk.publish_on_behalf": "agent-AJ_voice"}
    raw = payload(minted.jwt)
    assert raw["video"]["room"] == f"avatar-{sid}" and raw["video"]["roomJoin"] is True
    assert not {"roomAdmin", "roomCreate", "roomList", "roomRecord", "agent"} & set(raw["video"])
    assert raw["exp"] - raw["nbf"] == 300
    with pytest.raises(ValueError, match="on_behalf_of"):
        avatar_token(LK, room="r", identity=identity, name="A", on_behalf_of="", ttl_s=60)


# -- the route --------------------------------------------------------------------------------


@pytest.fixture
def fake_livekit():
    with FakeLiveKit(KEY, SECRET) as fake:
        yield fake


async def _session(client: httpx.AsyncClient, tenant: str = "alpha") -> str:
    made = await client.post("/v1/sessions", json={"companion_id": "default"}, headers=auth(tenant))
    return made.json()["id"]


@pytest.mark.anyio
async def test_token_route_mints_and_dispatches_once(open_app, fake_livekit):
    lk = LiveKitSettings(fake_livekit.url, KEY, SECRET)
    async with open_app("tokens.ttl_s=300", livekit=lk) as (client, state):
        sid = await _session(client)
        before = (await client.get(f"/v1/sessions/{sid}", headers=auth("alpha"))).json()
        got = await client.post(
            f"/v1/sessions/{sid}/token",
            json={"identity": "user-42", "name": "Sam"},
            headers=auth("alpha"),
        )
        assert got.status_code == 200, got.text
        body = got.json()
        assert (body["url"], body["room"]) == (fake_livekit.url, f"avatar-{sid}")
        raw = payload(body["token"])
        assert (raw["sub"], raw["name"]) == ("user-42", "Sam")
        assert raw["video"] == {**USER_GRANT, "room": f"avatar-{sid}"}
        assert raw["exp"] - raw["nbf"] == 300  # tokens.ttl_s
        assert int(datetime.fromisoformat(body["expires_at"]).timestamp()) == raw["exp"]

        listed, created = fake_livekit.requests
        assert (listed.method, created.method) == ("ListDispatch", "CreateDispatch")
        assert created.content_type == "application/protobuf"
        assert created.claims.video.room_admin and created.claims.video.room == f"avatar-{sid}"
        assert created.body["agent_name"] == "companion-avatar" == state.settings.agent_name
        assert created.body["room"] == f"avatar-{sid}"
        meta = json.loads(created.body["metadata"])
        assert meta["session_id"] == sid and meta["companion_id"] == "default"
        assert meta["tenant_id"] == state.store.tenant_by_name("alpha").id
        assert (meta["size"], meta["voice"]) == (128, "heart")

        again = await client.post(f"/v1/sessions/{sid}/token", json={}, headers=auth("alpha"))
        assert again.status_code == 200
        assert payload(again.json()["token"])["sub"] == f"user-{sid[-12:]}"
        assert len(fake_livekit.dispatches) == 1  # the worker is dispatched once per room
        after = (await client.get(f"/v1/sessions/{sid}", headers=auth("alpha"))).json()
        assert datetime.fromisoformat(after["expires_at"]) > datetime.fromisoformat(
            before["expires_at"]
        )  # a call keeps the session alive

        reserved = await client.post(
            f"/v1/sessions/{sid}/token",
            json={"identity": "avatar-worker-x"},
            headers=auth("alpha"),
        )
        assert reserved.status_code == 422 and reserved.json()["detail"].startswith("identity:")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.anyio
@pytest.mark.parametrize("fault", ["wrong-secret", "unreachable"])
async def test_livekit_refusing_or_away_is_503(open_app, fake_livekit, fault):
    lk = (
        LiveKitSettings(fake_livekit.url, KEY, "not-the-secret-0123456789-0123456789")
        if fault == "wrong-secret"
        else LiveKitSettings(f"http://127.0.0.1:{_closed_port()}", KEY, SECRET)
    )
    async with open_app(livekit=lk) as (client, _state):
        sid = await _session(client)
        refused = await client.post(f"/v1/sessions/{sid}/token", json={}, headers=auth("alpha"))
        assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM
        assert refused.headers["retry-after"] == "5"
        assert (
            f"LiveKit at {lk.url} did not accept the avatar's dispatch" in refused.json()["detail"]
        )
        assert lk.api_secret not in refused.text
    if fault == "wrong-secret":
        assert fake_livekit.requests and fake_livekit.requests[0].claims is None


@pytest.mark.anyio
async def test_without_livekit_the_token_is_503_saying_what_to_set(client):
    sid = await _session(client)
    refused = await client.post(f"/v1/sessions/{sid}/token", json={}, headers=auth("alpha"))
    assert refused.status_code == 503 and refused.headers["content-type"] == PROBLEM
    body = refused.json()
    assert body["type"].endswith("/livekit-not-configured")
    assert "set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET" in body["detail"]


def test_the_fake_speaks_json_too(fake_livekit) -> None:
    room = "avatar-ses_json"
    token = api.AccessToken(KEY, SECRET).with_grants(api.VideoGrants(room_admin=True, room=room))
    answer = httpx.post(
        f"{fake_livekit.url}/twirp/livekit.AgentDispatchService/CreateDispatch",
        json={"agent_name": "companion-avatar", "room": room, "metadata": "{}"},
        headers={"Authorization": f"Bearer {token.to_jwt()}"},
    )
    assert answer.status_code == 200 and answer.json()["room"] == room
    other_room = httpx.post(
        f"{fake_livekit.url}/twirp/livekit.AgentDispatchService/ListDispatch",
        json={"room": "avatar-other"},
        headers={"Authorization": f"Bearer {token.to_jwt()}"},
    )
    assert other_room.status_code == 403 and other_room.json()["code"] == "permission_denied"


@pytest.mark.anyio
@pytest.mark.network
@pytest.mark.skipif(
    not all(REAL), reason="set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET to run"
)
async def test_against_a_real_livekit_server(open_app):
    lk = LiveKitSettings(*REAL)
    async with open_app(livekit=lk) as (client, state):
        sid = await _session(client)
        got = await client.post(f"/v1/sessions/{sid}/token", json={}, headers=auth("alpha"))
        assert got.status_code == 200, got.text
        room = got.json()["room"]
        claims = api.TokenVerifier(lk.api_key, lk.api_secret).verify(got.json()["token"])
        assert claims.video.room == room and claims.video.room_admin is None
        async with api.LiveKitAPI(lk.url, lk.api_key, lk.api_secret) as lkapi:
            dispatches = await lkapi.agent_dispatch.list_dispatch(room_name=room)
            ours = [d for d in dispatches if d.agent_name == state.settings.agent_name]
            assert len(ours) == 1 and json.loads(ours[0].metadata)["session_id"] == sid
            for dispatch in dispatches:
                await lkapi.agent_dispatch.delete_dispatch(dispatch.id, room)
