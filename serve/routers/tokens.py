"""``POST /v1/sessions/{id}/token``: a short-lived LiveKit token for the session's own room, and
the avatar worker's dispatch into that room (LiveKit agent dispatch).

The user's grant: join, publish, subscribe and publish data in ``avatar-<session id>`` only,
for ``tokens.ttl_s`` (<= 600 s); see :mod:`serve.livekit_tokens`. Without ``LIVEKIT_URL`` (and
its key and secret) the route answers 503 saying so; when LiveKit refuses or does not answer
the dispatch, 503 with ``Retry-After``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from serve.auth import Caller
from serve.livekit_tokens import (
    RESERVED_IDENTITY_PREFIXES,
    dispatch_metadata,
    room_name,
    user_token,
)
from serve.problems import Problem
from serve.routers.livekit_dispatch import dispatch_or_503, livekit_of
from serve.schemas import TokenIn, TokenOut
from serve.state import ServeState

router = APIRouter(prefix="/v1/sessions", tags=["real time"])


@router.post(
    "/{session_id}/token",
    response_model=TokenOut,
    responses={503: {"description": "LiveKit is not configured or did not accept the dispatch"}},
)
async def token(session_id: str, body: TokenIn, request: Request, who: Caller) -> TokenOut:
    """A LiveKit token for a real-time call with the session's companion."""
    state: ServeState = request.app.state.serve
    session = await run_in_threadpool(state.session, who.id, session_id)
    identity = body.identity or f"user-{session.id[-12:]}"
    if identity.startswith(RESERVED_IDENTITY_PREFIXES):
        raise Problem(
            422,
            f"identity: {identity!r} starts with one of {list(RESERVED_IDENTITY_PREFIXES)}, "
            "which are reserved for the avatar and agents; choose another",
            kind="invalid-request",
        )
    lk = livekit_of(state)
    room = room_name(session.id)
    ttl_s = state.settings.token_ttl_s
    minted = user_token(lk, room=room, identity=identity, name=body.name or identity, ttl_s=ttl_s)
    await dispatch_or_503(state, lk, room=room, metadata=dispatch_metadata(session))
    await run_in_threadpool(
        state.store.touch_session, session.id, state.settings.session_idle_ttl_s
    )
    return TokenOut(url=lk.url, room=room, token=minted.jwt, expires_at=minted.expires_at)
