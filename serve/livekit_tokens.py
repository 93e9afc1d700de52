"""LiveKit access tokens and the avatar worker's dispatch, for the API (``/token``) and the worker.

One room per session (:func:`room_name`). Two kinds of participant get tokens here:

- the **user** (:func:`user_token`): join, publish, subscribe and publish data in that room
  only; no admin, create, list, record or agent grant;
- the **avatar worker** (:func:`avatar_token`): kind ``agent``, joins that room only, with the
  attribute ``lk.publish_on_behalf`` naming the voice agent whose speech it renders, so that
  clients show its audio and video as the agent's (the contract of
  ``livekit.agents.voice.avatar`` and LiveKit's avatar plugins).

Tokens live ``ttl_s`` seconds, at most :data:`~serve.settings.MAX_TOKEN_TTL_S` (600); ``nbf``
and ``exp`` come from one clock reading, so ``exp - nbf`` is exactly ``ttl_s``
(``AccessToken.to_jwt`` reads the clock twice and can give one second more). The claims are
built with ``livekit-api``'s ``AccessToken`` and signed HS256 with the API secret, as it does.

:func:`dispatch_avatar` asks LiveKit's agent dispatch API to send the worker into a room (an
identical dispatch already there is reused).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from livekit import api

from serve.settings import MAX_TOKEN_TTL_S, LiveKitSettings
from serve.store import Session

__all__ = [
    "ATTRIBUTE_PUBLISH_ON_BEHALF",
    "RESERVED_IDENTITY_PREFIXES",
    "Minted",
    "avatar_identity",
    "avatar_token",
    "dispatch_avatar",
    "dispatch_metadata",
    "room_name",
    "user_token",
]

ATTRIBUTE_PUBLISH_ON_BEHALF = "lk.publish_on_behalf"
"""Participant attribute of an avatar: the identity of the agent it publishes for
(``livekit.agents.types.ATTRIBUTE_PUBLISH_ON_BEHALF``)."""

ROOM_PREFIX = "avatar-"
AVATAR_IDENTITY_PREFIX = "avatar-worker-"
RESERVED_IDENTITY_PREFIXES = ("avatar-", "agent-")
"""Identity prefixes of the worker and agents: a user may not take them (a second participant
with an agent's identity would replace it in the room)."""


@dataclass(frozen=True)
class Minted:
    """A signed token and when it stops being accepted."""

    jwt: str
    expires_at: datetime


def room_name(session_id: str) -> str:
    """The LiveKit room of a session.

    >>> room_name("ses_0b1c")
    'avatar-ses_0b1c'
    """
    return f"{ROOM_PREFIX}{session_id}"


def avatar_identity(session_id: str) -> str:
    """The avatar worker's participant identity in a session's room.

    >>> avatar_identity("ses_0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e")
    'avatar-worker-8d9e0f1a2b3c4d5e'
    """
    return f"{AVATAR_IDENTITY_PREFIX}{session_id[-16:]}"


def _signed(token: api.AccessToken, ttl_s: int) -> Minted:
    """``token``'s claims signed with ``nbf = now`` and ``exp = now + ttl_s`` (whole seconds)."""
    if not 0 < ttl_s <= MAX_TOKEN_TTL_S:
        raise ValueError(f"token ttl_s must be in (0, {MAX_TOKEN_TTL_S}], got {ttl_s}")
    video = token.claims.video
    if video is None or not video.room_join or not video.room or not token.identity:
        raise ValueError("a token needs an identity and a room-scoped join grant")
    nbf = int(time.time())
    claims = token.claims.asdict()
    claims.update(sub=token.identity, iss=token.api_key, nbf=nbf, exp=nbf + ttl_s)
    signed = jwt.encode(claims, token.api_secret, algorithm="HS256")
    return Minted(signed, datetime.fromtimestamp(nbf + ttl_s, UTC))


def user_token(lk: LiveKitSettings, *, room: str, identity: str, name: str, ttl_s: int) -> Minted:
    """A user's token: join, publish, subscribe and publish data in ``room``; nothing else.

    Args:
        lk: the server's API key and secret.
        room: the session's room (:func:`room_name`).
        identity: the participant identity (not one of :data:`RESERVED_IDENTITY_PREFIXES`).
        name: the participant's display name.
        ttl_s: lifetime in seconds, 1 to 600.

    Raises:
        ValueError: a reserved identity, or a lifetime out of range.
    """
    if identity.startswith(RESERVED_IDENTITY_PREFIXES):
        raise ValueError(f"identity {identity!r} is reserved for agents and the avatar")
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
    )
    token = (
        api.AccessToken(lk.api_key, lk.api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_grants(grants)
    )
    return _signed(token, ttl_s)


def avatar_token(
    lk: LiveKitSettings,
    *,
    room: str,
    identity: str,
    name: str,
    on_behalf_of: str,
    ttl_s: int,
) -> Minted:
    """The avatar worker's token: an ``agent`` participant of ``room`` publishing for an agent.

    Args:
        lk: the server's API key and secret.
        room: the session's room (:func:`room_name`).
        identity: the avatar's participant identity (:func:`avatar_identity`).
        name: its display name (the companion's name).
        on_behalf_of: the identity of the voice agent whose speech the avatar renders; clients
            attribute the avatar's tracks to it (``lk.publish_on_behalf``).
        ttl_s: lifetime in seconds, 1 to 600 (a token is checked when joining only).
    """
    if not on_behalf_of:
        raise ValueError("on_behalf_of: the voice agent's identity is required")
    token = (
        api.AccessToken(lk.api_key, lk.api_secret)
        .with_kind("agent")
        .with_identity(identity)
        .with_name(name)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .with_attributes({ATTRIBUTE_PUBLISH_ON_BEHALF: on_behalf_of})
    )
    return _signed(token, ttl_s)


def dispatch_metadata(session: Session) -> str:
    """What the worker reads from its job (JSON): the session it renders."""
    return json.dumps(
        {
            "session_id": session.id,
            "tenant_id": session.tenant_id,
            "companion_id": session.companion_id,
            "voice": session.voice,
            "emotion": session.emotion,
            "size": session.size,
        },
        sort_keys=True,
    )


async def dispatch_avatar(lk: LiveKitSettings, *, agent_name: str, room: str, metadata: str) -> str:
    """Dispatch the avatar worker (``agent_name``) into ``room``; returns the dispatch id.

    A dispatch of the same agent with the same metadata already in the room is reused (a
    retried request sends no second avatar); other metadata (another voice agent, say) gets a
    dispatch of its own.

    Raises:
        livekit.api.twirp_client.ServerError: LiveKit refused (e.g. a bad key).
        aiohttp.ClientError, TimeoutError: LiveKit did not answer.
    """
    async with api.LiveKitAPI(lk.url, lk.api_key, lk.api_secret) as client:
        for existing in await client.agent_dispatch.list_dispatch(room_name=room):
            if existing.agent_name == agent_name and existing.metadata == metadata:
                return existing.id
        request = api.CreateAgentDispatchRequest(
            agent_name=agent_name, room=room, metadata=metadata
        )
        dispatch = await client.agent_dispatch.create_dispatch(request)
        return dispatch.id
