"""``POST /v1/sessions/{id}/avatar``: send the session's companion, as the LiveKit avatar worker,
into a voice agent's room (what :class:`serve.livekit.plugin.CompanionAvatar` calls).

The voice agent names its room and its own identity; the route asks LiveKit's agent dispatch
to send the worker (``tokens.agent_name``) there with the job metadata the worker reads
(:func:`dispatch_metadata` of the session plus ``room``, ``agent_identity``,
``avatar_identity`` and ``companion_name``). The worker joins as ``avatar_identity``, a
participant of kind agent publishing on behalf of ``agent_identity``
(``lk.publish_on_behalf``), and takes the agent's speech over a data stream at
``audio_sample_rate`` Hz.

Rooms named like a session's own room (``avatar-<session id>``) are accepted only for this
session, so that a tenant cannot send its companion into another tenant's call. Without
LiveKit settings the route answers 503; when LiveKit refuses or does not answer, 503 with
``Retry-After``. An identical dispatch already in the room (same metadata) is reused, so a
retried request does not send a second avatar.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from serve.auth import Caller
from serve.livekit_tokens import (
    ROOM_PREFIX,
    avatar_identity,
    dispatch_metadata,
    room_name,
)
from serve.problems import Problem
from serve.routers.livekit_dispatch import dispatch_or_503, livekit_of
from serve.state import ServeState

router = APIRouter(prefix="/v1/sessions", tags=["real time"])

NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,128}$"
"""LiveKit room names and participant identities accepted here: 1-128 of ``[A-Za-z0-9_.-]``."""


class AvatarIn(BaseModel):
    """Where the voice agent is: its room and its participant identity."""

    model_config = ConfigDict(extra="forbid")
    room: str = Field(
        pattern=NAME_PATTERN,
        description="the LiveKit room of the voice agent",
        examples=["call-7f3a"],
    )
    agent_identity: str = Field(
        pattern=NAME_PATTERN,
        description="the voice agent's participant identity (the avatar publishes on its behalf)",
        examples=["agent-AJ_x7Yp2q"],
    )


class AvatarOut(BaseModel):
    """The dispatched avatar: where to stream the agent's speech and at what rate."""

    dispatch_id: str = Field(examples=["AD_4mVq2wJzRk8e"])
    avatar_identity: str = Field(
        description="the avatar's participant identity (DataStreamAudioOutput's destination)",
        examples=["avatar-worker-8d9e0f1a2b3c4d5e"],
    )
    room: str = Field(examples=["call-7f3a"])
    audio_sample_rate: int = Field(
        description="Hz at which the agent should stream its speech (realtime.audio_sample_rate)",
        examples=[24000],
    )


@router.post(
    "/{session_id}/avatar",
    response_model=AvatarOut,
    responses={503: {"description": "LiveKit is not configured or did not accept the dispatch"}},
)
async def avatar(session_id: str, body: AvatarIn, request: Request, who: Caller) -> AvatarOut:
    """Dispatch the session's companion (the avatar worker) into a voice agent's room."""
    state: ServeState = request.app.state.serve
    session = await run_in_threadpool(state.session, who.id, session_id)
    spec = await run_in_threadpool(state.spec, who.id, session.companion_id)
    identity = avatar_identity(session.id)
    _check_names(body, own_room=room_name(session.id), identity=identity)
    lk = livekit_of(state)
    metadata = json.loads(dispatch_metadata(session))
    metadata.update(
        room=body.room,
        agent_identity=body.agent_identity,
        avatar_identity=identity,
        companion_name=spec.name,
    )
    dispatch_id = await dispatch_or_503(
        state, lk, room=body.room, metadata=json.dumps(metadata, sort_keys=True)
    )
    await run_in_threadpool(
        state.store.touch_session, session.id, state.settings.session_idle_ttl_s
    )
    return AvatarOut(
        dispatch_id=dispatch_id,
        avatar_identity=identity,
        room=body.room,
        audio_sample_rate=state.settings.realtime.audio_sample_rate,
    )


def _check_names(body: AvatarIn, *, own_room: str, identity: str) -> None:
    """422 for another session's room or an agent identity that is the avatar's."""
    if body.room.startswith(ROOM_PREFIX) and body.room != own_room:
        raise Problem(
            422,
            f"room: names starting with {ROOM_PREFIX!r} are sessions' own rooms; use this "
            "session's room or the voice agent's own room",
            kind="invalid-request",
        )
    if body.agent_identity == identity:
        raise Problem(
            422, "agent_identity: that is the avatar's own identity", kind="invalid-request"
        )
