"""``POST /v1/sessions/{id}/generate``: the companion says a text, or lip-syncs given speech
-> an MP4 (H.264 + AAC, faststart), or with ``?stream=true`` a fragmented MP4 while it renders.

One route, two bodies: JSON ``{text, emotion?, emotion_intensity?}``, or multipart ``audio``
(+ ``transcript``), the speech the Voice service synthesized already. The render runs in the
render pool; a client that disconnects cancels it (nothing is written). Identical requests on
one session are answered from a content-addressed cache: the ETag is the sha256 of everything
the video depends on, and ``If-None-Match`` gives 304. The work lives in
:mod:`serve.generation` and :mod:`serve.render_stream`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from avatar.cancel import CancelToken
from avatar.errors import AvatarError, Cancelled
from serve.auth import Caller
from serve.generation import (
    MP4,
    Job,
    cached_response,
    lookup,
    read_job,
    remember,
    request_etag,
    until_done_or_gone,
)
from serve.problems import PROBLEM_JSON
from serve.render_stream import RenderStream, closer, start_stream
from serve.schemas import GenerateIn
from serve.state import ServeState
from serve.store import Session

router = APIRouter(prefix="/v1/sessions", tags=["generate"])

_PROBLEM = {"content": {PROBLEM_JSON: {}}}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {MP4: {}},
        "description": "the MP4 (H.264 + AAC; faststart, or fragmented with ?stream=true); "
        "header ETag",
    },
    304: {"description": "If-None-Match named this ETag: the client has the video"},
    413: {**_PROBLEM, "description": "text, transcript or upload over its limit"},
    415: {**_PROBLEM, "description": "neither JSON nor multipart/form-data"},
    422: {**_PROBLEM, "description": "empty text, unknown emotion or tag, unreadable audio"},
    429: {**_PROBLEM, "description": "the tenant's concurrency or rate limit (Retry-After)"},
    503: {**_PROBLEM, "description": "the render queue is full (Retry-After)"},
    504: {**_PROBLEM, "description": "the render ran past limits.request_timeout_s"},
}
_BODIES = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": GenerateIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["audio"],
                    "properties": {
                        "audio": {
                            "type": "string",
                            "contentMediaType": "application/octet-stream",
                            "description": "the companion's speech, any common format (wav, "
                            "mp3, ogg/opus, m4a, flac...), at most limits.max_audio_seconds",
                        },
                        "transcript": {
                            "type": "string",
                            "description": "what the speech says (better lip shapes); "
                            "without it, phones are recognised from the audio",
                            "examples": ["Hi! It is lovely to see you."],
                        },
                    },
                }
            },
        },
    }
}


@router.post(
    "/{session_id}/generate",
    response_class=Response,
    responses=_RESPONSES,
    openapi_extra=_BODIES,
)
async def generate(
    session_id: str,
    request: Request,
    who: Caller,
    stream: Annotated[
        bool, Query(description="send a fragmented MP4 while it renders (plays sooner)")
    ] = False,
) -> Response:
    """The session's companion says ``text`` (JSON), or lip-syncs ``audio`` (multipart)."""
    state: ServeState = request.app.state.serve
    session = await run_in_threadpool(state.session, who.id, session_id)
    spec = await run_in_threadpool(state.spec, who.id, session.companion_id)
    spec = dataclasses.replace(spec, voice=session.voice)
    pipeline = state.pipeline(session.size)
    job = await read_job(request, state, session, spec, pipeline)
    response: Response | None = None
    try:
        etag = request_etag(session, spec, job.fields)
        cached = await lookup(state, session, etag)
        if cached is not None:
            response = cached_response(cached, request)
        elif stream:
            response = await _stream(state, request, who.id, job, session, etag)
        else:
            response = await _file(state, request, who.id, job, session, etag)
        return response
    finally:
        if not isinstance(response, RenderStream):  # a stream's render removes it when done
            job.cleanup()


def _failure(exc: BaseException, job: Job) -> Response:
    """The response to a render that failed before any byte went out (or raise its problem)."""
    if isinstance(exc, Cancelled):
        return Response(status_code=499)  # the client is gone; nobody reads this
    if isinstance(exc, AvatarError):
        raise job.problem(exc) from None
    raise exc


async def _file(
    state: ServeState, request: Request, who_id: str, job: Job, session: Session, etag: str
) -> Response:
    out = state.session_dir(session) / f"{etag}.mp4"
    token = CancelToken()
    t0 = time.perf_counter()
    try:
        with state.pool.admitted(who_id):
            render = asyncio.ensure_future(state.pool.run(job.render, out, cancel=token))
            await until_done_or_gone(request, token, render)
    except (Cancelled, AvatarError) as exc:
        return _failure(exc, job)
    state.metrics.renders.labels(job.kind).observe(time.perf_counter() - t0)
    row = await remember(state, session, etag, out)
    return FileResponse(row.path, media_type=MP4, headers={"ETag": f'"{etag}"'})


async def _stream(
    state: ServeState, request: Request, who_id: str, job: Job, session: Session, etag: str
) -> Response:
    """Start the render and answer with its first bytes; a failure before them is a problem."""
    token = CancelToken()
    t0 = time.perf_counter()
    fragments = start_stream(state, who_id, job, session, etag, token)
    first = await until_done_or_gone(request, token, asyncio.ensure_future(fragments.get()))
    if isinstance(first, BaseException):
        return _failure(first, job)
    assert isinstance(first, bytes), first  # a render writes its header before it can end
    state.metrics.stream_first_byte.observe(time.perf_counter() - t0)
    return RenderStream(fragments.chunks(first), on_close=closer(fragments, token), etag=etag)
