"""Sessions: the rendering context of one companion (voice, mood, size); they expire when idle."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from avatar.errors import ConfigValueError
from avatar.motion.emotion import check_emotion
from serve.auth import Caller
from serve.problems import Problem
from serve.schemas import SessionIn, SessionOut
from serve.state import ServeState
from serve.store import Session, new_id, utc_now

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def _out(row: Session) -> SessionOut:
    return SessionOut(
        id=row.id,
        companion_id=row.companion_id,
        voice=row.voice,
        emotion=row.emotion,
        size=row.size,
        created_at=row.created_at,
        expires_at=row.expires_at,
    )


@router.post("", status_code=201, response_model=SessionOut)
async def create_session(body: SessionIn, request: Request, who: Caller) -> SessionOut:
    """Open a session on one of the tenant's companions (or ``default``).

    422 naming the field for an unknown ``voice`` or ``emotion`` or an unserved
    ``renderer.size``; 404 for a companion the tenant does not have.
    """
    state: ServeState = request.app.state.serve
    spec = await run_in_threadpool(state.spec, who.id, body.companion_id)
    size = body.renderer.size if body.renderer else state.settings.default_size
    if size not in state.settings.sizes:
        raise _invalid("renderer.size", f"must be one of {list(state.settings.sizes)}, got {size}")
    voice = body.voice or spec.voice
    try:
        state.pipeline(size).voices.get(voice)  # an unknown voice is a 422 now, not later
    except ConfigValueError as exc:
        raise _invalid("voice", str(exc)) from None
    emotion = None
    if body.emotion is not None:
        try:
            emotion = check_emotion(body.emotion, 1.0)
        except ConfigValueError as exc:
            raise _invalid("emotion", str(exc)) from None
    now = utc_now()
    row = Session(
        id=new_id("ses"),
        tenant_id=who.id,
        companion_id=body.companion_id,
        voice=voice,
        emotion=emotion,
        size=size,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=state.settings.session_idle_ttl_s),
    )
    await run_in_threadpool(state.store.add_session, row)
    return _out(row)


@router.get("/{session_id}", response_model=SessionOut)
async def get_session(session_id: str, request: Request, who: Caller) -> SessionOut:
    """The session (404 once it expired or for another tenant's)."""
    state: ServeState = request.app.state.serve
    return _out(await run_in_threadpool(state.session, who.id, session_id))


@router.delete("/{session_id}", status_code=204, response_class=Response)
async def delete_session(session_id: str, request: Request, who: Caller) -> Response:
    """Close the session and remove its generated files."""
    state: ServeState = request.app.state.serve
    row = await run_in_threadpool(state.store.delete_session, who.id, session_id)
    if row is None:
        raise Problem(404, f"no session {session_id!r}", kind="not-found")
    await run_in_threadpool(state.remove_session_files, row)
    return Response(status_code=204)


def _invalid(field: str, why: str) -> Problem:
    return Problem(422, f"{field}: {why}", kind="invalid-request")
