"""``POST /v1/sessions/{id}/generate``: the companion says a text -> an MP4 (H.264 + AAC).

The render runs in the render pool; a client that disconnects cancels it (nothing is
written). Identical requests on one session are answered from a content-addressed cache: the
ETag is the sha256 of everything the video depends on, and ``If-None-Match`` gives 304.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from avatar.cancel import CancelToken
from avatar.errors import Cancelled
from serve.auth import Caller
from serve.problems import Problem
from serve.schemas import GenerateIn
from serve.state import ServeState
from serve.store import Output, Session, new_id, utc_now

router = APIRouter(prefix="/v1/sessions", tags=["generate"])

MP4 = "video/mp4"
_VERSION = "generate/1"  # bump when the same request would render differently


def request_etag(session: Session, spec_key: str, fields: dict[str, Any]) -> str:
    """sha256 hex of the session's rendering context and the request's fields."""
    blob = json.dumps(
        {
            "v": _VERSION,
            "companion": spec_key,
            "voice": session.voice,
            "size": session.size,
            **fields,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


async def watch_disconnect(request: Request, token: CancelToken, job: asyncio.Future) -> None:
    """Cancel ``token`` when the client goes away before ``job`` is done."""
    while not job.done():
        if await request.is_disconnected():
            token.cancel("the client disconnected")
            return
        await asyncio.sleep(0.1)


async def run_render(state: ServeState, request: Request, who_id: str, fn, *args, **kwargs):  # noqa: ANN001, ANN201
    """Run a render in the pool, cancelled if the client disconnects; returns its result."""
    token = CancelToken()
    with state.pool.admitted(who_id):
        job = asyncio.ensure_future(state.pool.run(fn, *args, cancel=token, **kwargs))
        watcher = asyncio.ensure_future(watch_disconnect(request, token, job))
        try:
            return await job
        finally:
            watcher.cancel()


def _evict(state: ServeState, session: Session) -> None:
    """Keep at most ``sessions.cache_entries`` MP4s per session (oldest out)."""
    rows = state.store.outputs(session.id)
    for row in rows[: max(0, len(rows) - state.settings.cache_entries)]:
        state.store.delete_output(row.id)
        Path(row.path).unlink(missing_ok=True)


def _cached_response(row: Output, request: Request) -> Response:
    etag = f'"{row.etag}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return FileResponse(row.path, media_type=MP4, headers={"ETag": etag})


@router.post(
    "/{session_id}/generate",
    response_class=Response,
    responses={200: {"content": {MP4: {}}, "description": "the MP4 (H.264 + AAC, faststart)"}},
)
async def generate(session_id: str, body: GenerateIn, request: Request, who: Caller) -> Response:
    """The session's companion says ``text``; the response is the MP4."""
    state: ServeState = request.app.state.serve
    session = await run_in_threadpool(state.session, who.id, session_id)
    limit = state.settings.limits.max_text_chars
    if len(body.text) > limit:
        raise Problem(
            413,
            f"text is {len(body.text)} characters, over the limit of {limit} "
            "(limits.max_text_chars)",
            kind="text-too-long",
        )
    if not body.text.strip():
        raise Problem(422, "text is empty", kind="bad-text")
    spec = await run_in_threadpool(state.spec, who.id, session.companion_id)
    spec = dataclasses.replace(spec, voice=session.voice)
    emotion = body.emotion or session.emotion
    pipeline = state.pipeline(session.size)
    fields = {"text": body.text, "emotion": emotion, "intensity": body.emotion_intensity}
    etag = request_etag(session, f"{spec.id}:{','.join(spec.images)}", fields)
    cached = await run_in_threadpool(state.store.output, session.id, etag)
    if cached is not None and Path(cached.path).is_file():
        await run_in_threadpool(
            state.store.touch_session, session.id, state.settings.session_idle_ttl_s
        )
        return _cached_response(cached, request)
    out = state.session_dir(session) / f"{etag}.mp4"
    t0 = asyncio.get_running_loop().time()
    try:
        await run_render(
            state,
            request,
            who.id,
            pipeline.render_text,
            spec,
            body.text,
            out,
            emotion=emotion,
            emotion_intensity=body.emotion_intensity,
        )
    except Cancelled:
        return Response(status_code=499)
    state.metrics.renders.labels("text").observe(asyncio.get_running_loop().time() - t0)
    row = Output(
        id=new_id("out"),
        session_id=session.id,
        etag=etag,
        path=str(out),
        size_bytes=out.stat().st_size,
        created_at=utc_now(),
    )
    row = await run_in_threadpool(state.store.add_output, row)
    await run_in_threadpool(
        state.store.touch_session, session.id, state.settings.session_idle_ttl_s
    )
    await run_in_threadpool(_evict, state, session)
    return FileResponse(row.path, media_type=MP4, headers={"ETag": f'"{etag}"'})
