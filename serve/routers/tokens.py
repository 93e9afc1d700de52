"""``POST /v1/sessions/{id}/token``: a short-lived LiveKit token for the session's own room, and
the avatar worker's dispatch into that room (LiveKit agent dispatch).

The user's grant: join, publish, subscribe and publish data in ``avatar-<session id>`` only,
for at most ``tokens.ttl_s`` (<= 600 s). Without ``LIVEKIT_URL`` (and its key and secret) the
route answers 503 saying so.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from fastapi import APIRouter, Request
from livekit import api
from starlette.concurrency import run_in_threadpool

from serve.auth import Caller
from serve.problems import Problem
from serve.schemas import TokenIn, TokenOut
from serve.settings import LiveKitSettings
from serve.state import ServeState
from serve.store import Session, utc_now

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/sessions", tags=["real time"])

AGENT_IDENTITY_PREFIX = "avatar-worker-"


def room_name(session_id: str) -> str:
    """The LiveKit room of a session."""
    return f"avatar-{session_id}"


def user_token(lk: LiveKitSettings, room: str, identity: str, name: str, ttl_s: int) -> str:
    """A participant token scoped to ``room``: join, publish, subscribe, data; nothing else."""
    grants = api.VideoGrants(
        room_join=True,
        room=room,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
    )
    return (
        api.AccessToken(lk.api_key, lk.api_secret)
        .with_identity(identity)
        .with_name(name)
        .with_grants(grants)
        .with_ttl(timedelta(seconds=ttl_s))
        .to_jwt()
    )


def dispatch_metadata(session: Session) -> str:
    """What the worker reads from its job: the session it renders."""
    return json.dumps(
        {
            "session_id": session.id,
            "tenant_id": session.tenant_id,
            "companion_id": session.companion_id,
            "voice": session.voice,
            "emotion": session.emotion,
            "size": session.size,
        }
    )


async def dispatch_worker(lk: LiveKitSettings, agent_name: str, room: str, metadata: str) -> str:
    """Ask LiveKit to dispatch the avatar worker into ``room``; returns the dispatch id."""
    async with api.LiveKitAPI(lk.url, lk.api_key, lk.api_secret) as client:
        request = api.CreateAgentDispatchRequest(
            agent_name=agent_name, room=room, metadata=metadata
        )
        dispatch = await client.agent_dispatch.create_dispatch(request)
        return dispatch.id


@router.post("/{session_id}/token", response_model=TokenOut)
async def token(session_id: str, body: TokenIn, request: Request, who: Caller) -> TokenOut:
    """A LiveKit token for a real-time call with the session's companion."""
    state: ServeState = request.app.state.serve
    session = await run_in_threadpool(state.session, who.id, session_id)
    lk = state.settings.livekit
    if lk is None:
        raise Problem(
            503,
            "real time is not configured: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
            kind="livekit-not-configured",
        )
    room = room_name(session.id)
    ttl = state.settings.token_ttl_s
    identity = body.identity or f"user-{session.id[-12:]}"
    jwt = user_token(lk, room, identity, body.name or identity, ttl)
    try:
        await dispatch_worker(lk, state.settings.agent_name, room, dispatch_metadata(session))
    except Exception as exc:  # the server is configured but unreachable or refusing
        log.warning("agent dispatch to %s failed: %s", lk.url, exc)
        raise Problem(
            503,
            f"LiveKit at {lk.url} did not accept the avatar's dispatch ({type(exc).__name__})",
            kind="livekit-unavailable",
            headers={"Retry-After": "5"},
        ) from None
    await run_in_threadpool(
        state.store.touch_session, session.id, state.settings.session_idle_ttl_s
    )
    return TokenOut(url=lk.url, room=room, token=jwt, expires_at=utc_now() + timedelta(seconds=ttl))
