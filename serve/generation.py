"""The work behind ``POST /v1/sessions/{id}/generate`` (:mod:`serve.routers.generate`).

- **The request**: JSON ``{text, emotion?, emotion_intensity?}``, or multipart ``audio`` (any
  format FFmpeg reads) with an optional ``transcript``. The body is counted while it arrives
  and refused past ``limits.max_upload_mb`` (413), a chunked upload without Content-Length
  included; the audio goes to a hidden temporary file in the session's folder, which is removed
  when the request ends, whatever happens.
- **The ETag**: the sha256 of everything the video depends on (the session's companion, voice
  and size; the text, mood and intensity, or the audio's bytes and transcript). MP4s are kept
  per session under their ETag (``sessions.cache_entries`` of them, oldest out).
- **Renders** run in the :class:`~serve.render_pool.RenderPool`; a client that disconnects
  cancels its render (checked before every frame), which then leaves nothing on disk.
- **Streams** (``?stream=true``): the render writes a fragmented MP4 into a sink; the bytes
  cross from the render thread to the response through the event loop's queue as each fragment
  is cut. A stream that completes is cached like a file; a failed one is cut short.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from avatar.audio import Audio
from avatar.cancel import CancelToken, check
from avatar.companion import CompanionSpec
from avatar.errors import AvatarError
from avatar.media.audio_files import read_audio
from avatar.media.files import discard_temp, temp_beside
from avatar.media.probe import check_audio_duration
from avatar.motion.emotion import check_emotion, parse_tags
from avatar.pipeline import Pipeline, RenderResult
from serve.problems import Problem, core_problem
from serve.schemas import GenerateIn
from serve.settings import Limits
from serve.state import ServeState
from serve.store import Output, Session, new_id, utc_now

__all__ = [
    "MP4",
    "Job",
    "cached_response",
    "lookup",
    "read_job",
    "remember",
    "request_etag",
    "text_job",
    "until_done_or_gone",
    "watch_disconnect",
]

MP4 = "video/mp4"
_VERSION = "generate/1"  # bump when the same request would render differently
_CHUNK = 1 << 20
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")
_FORM_FIELDS = ("audio", "transcript")
AUDIO_LIMIT_KEY = "limits.max_audio_seconds"


@dataclass
class Job:
    """One generate request, checked and ready to render.

    Attributes:
        kind: ``"text"`` or ``"audio"`` (the render-latency metric's label).
        fields: what the ETag hashes besides the session.
        render: ``render(out, cancel=token)``, run in the pool: ``out`` a path or a sink.
        upload: the saved audio upload, removed by :meth:`cleanup`.
        names: stored path -> the client's name for it, so errors name the client's file.
    """

    kind: str
    fields: dict[str, Any]
    render: Callable[..., RenderResult]
    upload: Path | None = None
    names: dict[str, str] = field(default_factory=dict)

    def problem(self, exc: AvatarError) -> Problem:
        """The problem of a core error, naming the client's files rather than ours."""
        problem = core_problem(exc)
        for stored, original in self.names.items():
            detail = problem.detail.replace(repr(stored), repr(original))
            problem.detail = detail.replace(stored, repr(original))
        return problem

    def cleanup(self) -> None:
        """Remove the temporary upload (idempotent)."""
        if self.upload is not None:
            discard_temp(self.upload)
            self.upload = None


def request_etag(session: Session, spec: CompanionSpec, fields: dict[str, Any]) -> str:
    """sha256 hex of the session's rendering context and the request's fields."""
    context = {"companion": f"{spec.id}:{','.join(spec.images)}", "voice": session.voice}
    blob = json.dumps({"v": _VERSION, **context, "size": session.size, **fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# -- the request body ---------------------------------------------------------------------------


class _TooLarge(MultiPartException):
    """The body went past ``limits.max_upload_mb`` while it arrived."""


def _too_large(limits: Limits) -> Problem:
    return Problem(
        413,
        f"the request body is over limits.max_upload_mb ({limits.max_upload_mb:g} MB); "
        "send a shorter recording or compress it",
        kind="too-large",
    )


async def _capped(request: Request, budget: int) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk, stopped with :class:`_TooLarge` past ``budget``."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > budget:
            raise _TooLarge(f"the body is over {budget} bytes")
        yield chunk


async def read_job(
    request: Request, state: ServeState, session: Session, spec: CompanionSpec, pipeline: Pipeline
) -> Job:
    """The checked :class:`Job` of a JSON or multipart request (415 for any other type)."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    limits = state.settings.limits
    if kind == "application/json":
        try:
            body = b"".join([chunk async for chunk in _capped(request, limits.max_upload_bytes)])
        except _TooLarge:
            raise _too_large(limits) from None
        try:
            parsed = GenerateIn.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
        return text_job(parsed, limits, session, pipeline, spec)
    if kind == "multipart/form-data":
        return await _audio_job(request, state, session, spec, pipeline)
    raise Problem(
        415,
        f"send application/json ({{text, ...}}) or multipart/form-data (audio, transcript), "
        f"not {kind or 'a body without Content-Type'}",
        kind="unsupported-media-type",
    )


def text_job(
    body: GenerateIn, limits: Limits, session: Session, pipeline: Pipeline, spec: CompanionSpec
) -> Job:
    """Check a text request before any work: length (413), empty text, tags, emotion (422)."""
    if len(body.text) > limits.max_text_chars:
        raise Problem(
            413,
            f"text is {len(body.text)} characters, over the limit of {limits.max_text_chars} "
            "(limits.max_text_chars); split it into several requests",
            kind="text-too-long",
        )
    clean, _ = parse_tags(body.text)  # a bad tag is a TextInputError: 422 naming it
    if not clean.strip():
        raise Problem(422, "text is empty: give the words the companion says", kind="bad-text")
    emotion = body.emotion or session.emotion
    if emotion is not None:
        check_emotion(emotion, body.emotion_intensity)  # 422 naming the known emotions

    def render(out: Path | Callable[[bytes], None], *, cancel: CancelToken) -> RenderResult:
        return pipeline.render_text(
            spec,
            body.text,
            out,
            emotion=emotion,
            emotion_intensity=body.emotion_intensity,
            cancel=cancel,
        )

    fields = {"text": body.text, "emotion": emotion, "intensity": body.emotion_intensity}
    return Job("text", fields, render)


async def _audio_job(
    request: Request, state: ServeState, session: Session, spec: CompanionSpec, pipeline: Pipeline
) -> Job:
    limits = state.settings.limits
    stream = _capped(request, limits.max_upload_bytes)
    parser = MultiPartParser(request.headers, stream, max_files=1, max_fields=len(_FORM_FIELDS))
    try:
        form = await parser.parse()
    except _TooLarge:
        raise _too_large(limits) from None
    except MultiPartException as exc:
        raise Problem(400, f"the multipart body cannot be read: {exc.message}") from None
    try:
        unknown = sorted(set(form) - set(_FORM_FIELDS))
        if unknown:
            raise Problem(
                422,
                f"unknown form field(s) {unknown}: a multipart request takes `audio` (a file) "
                "and an optional `transcript`; emotion belongs to text requests (JSON)",
                kind="invalid-request",
            )
        audio, text = form.get("audio"), form.get("transcript")
        if not isinstance(audio, UploadFile):
            raise Problem(422, "send the speech as a file in the form field `audio`")
        if text is not None and not isinstance(text, str):
            raise Problem(422, "`transcript` must be text, not a file")
        transcript = (text or "").strip() or None
        if transcript is not None and len(transcript) > limits.max_text_chars:
            raise Problem(
                413,
                f"transcript is {len(transcript)} characters, over limits.max_text_chars "
                f"({limits.max_text_chars})",
                kind="text-too-long",
            )
        name = audio.filename or "audio"
        folder = state.session_dir(session)
        path, digest = await run_in_threadpool(
            _save_upload, audio.file, folder, name, limits.max_upload_bytes
        )
    finally:
        await form.close()

    def render(out: Path | Callable[[bytes], None], *, cancel: CancelToken) -> RenderResult:
        # decoding stops at the limit too: headers can be missing or wrong
        samples, rate = read_audio(
            path, mono=False, max_seconds=limits.max_audio_seconds, limit_key=AUDIO_LIMIT_KEY
        )
        check(cancel)
        voice = Audio(samples[:, 0] if samples.shape[1] == 1 else samples, rate)
        return pipeline.render_audio(spec, voice, out, transcript=transcript, cancel=cancel)

    fields = {"audio": digest, "transcript": transcript}
    job = Job("audio", fields, render, upload=path, names={str(path): name})
    try:  # from the header first: a long recording is refused before anything is decoded
        await run_in_threadpool(
            check_audio_duration,
            path,
            max_seconds=limits.max_audio_seconds,
            config_key=AUDIO_LIMIT_KEY,
        )
    except AvatarError as exc:
        job.cleanup()
        raise job.problem(exc) from None
    except BaseException:
        job.cleanup()
        raise
    return job


def _save_upload(source: BinaryIO, folder: Path, name: str, budget: int) -> tuple[Path, str]:
    """Copy an upload into a hidden temporary file in ``folder``; (path, sha256 of its bytes).

    Raises 413 past ``budget`` bytes and 422 when it is empty; nothing is left then.
    """
    suffix = _SUFFIX.search(name)
    path = temp_beside(folder / "upload", suffix.group(0).lower() if suffix else ".audio")
    digest, size = hashlib.sha256(), 0
    try:
        with path.open("wb") as out:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > budget:
                    raise Problem(
                        413, f"audio {name!r} is over limits.max_upload_mb", kind="too-large"
                    )
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Problem(422, f"audio {name!r} is empty (0 bytes)", kind="bad-audio")
    except BaseException:
        discard_temp(path)
        raise
    return path, digest.hexdigest()


# -- the cache ----------------------------------------------------------------------------------


async def lookup(state: ServeState, session: Session, etag: str) -> Output | None:
    """The session's cached MP4 of ``etag`` (None when absent or its file is gone)."""
    row = await run_in_threadpool(state.store.output, session.id, etag)
    if row is None or not Path(row.path).is_file():
        return None
    await run_in_threadpool(
        state.store.touch_session, session.id, state.settings.session_idle_ttl_s
    )
    return row


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong) or is ``*``."""
    tags = {t.strip().removeprefix("W/") for t in (if_none_match or "").split(",")}
    return "*" in tags or f'"{etag}"' in tags


def cached_response(row: Output, request: Request) -> Response:
    """304 when the client has it (``If-None-Match``), else the file."""
    headers = {"ETag": f'"{row.etag}"'}
    if _matches(request.headers.get("if-none-match"), row.etag):
        return Response(status_code=304, headers=headers)
    return FileResponse(row.path, media_type=MP4, headers=headers)


def _evict(state: ServeState, session: Session) -> None:
    """Keep at most ``sessions.cache_entries`` MP4s per session (oldest out, files removed)."""
    rows = state.store.outputs(session.id)
    for row in rows[: max(0, len(rows) - state.settings.cache_entries)]:
        state.store.delete_output(row.id)
        Path(row.path).unlink(missing_ok=True)


async def remember(state: ServeState, session: Session, etag: str, path: Path) -> Output:
    """Record the MP4 at ``path`` as the session's ``etag`` and evict the oldest past the cap."""
    row = Output(
        id=new_id("out"),
        session_id=session.id,
        etag=etag,
        path=str(path),
        size_bytes=path.stat().st_size,
        created_at=utc_now(),
    )
    try:
        row = await run_in_threadpool(state.store.add_output, row)
    except IntegrityError:  # the session was deleted while its video rendered
        path.unlink(missing_ok=True)
        raise Problem(
            404, f"no session {session.id!r} (deleted meanwhile)", kind="not-found"
        ) from None
    await run_in_threadpool(
        state.store.touch_session, session.id, state.settings.session_idle_ttl_s
    )
    await run_in_threadpool(_evict, state, session)
    return row


# -- renders ------------------------------------------------------------------------------------


async def watch_disconnect(request: Request, token: CancelToken) -> None:
    """Cancel ``token`` when the client goes away (run it as a task; cancel it when done).

    Waits on the ASGI ``receive`` (the body was read already, so the next message is the
    disconnect): ``Request.is_disconnected`` cannot see it through the app's HTTP middlewares.
    """
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            token.cancel("the client disconnected")
            return


async def until_done_or_gone(request: Request, token: CancelToken, job: asyncio.Future[Any]) -> Any:
    """Await ``job`` while watching the client: a disconnect cancels ``token``."""
    watcher = asyncio.ensure_future(watch_disconnect(request, token))
    try:
        return await job
    finally:
        watcher.cancel()
