"""Companions: upload images, derive the avatar once; list, read, delete. ``default`` (the
embedded companion) belongs to every tenant and cannot be deleted.

An upload is all or nothing: every image must be a readable image within the pixel limit (read
from its header, before decoding) and one of them must hold a usable face; otherwise the answer
is a 422 naming the uploaded file and why, and nothing is kept (no files, no row; the identity
cache only ever holds complete identities).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from avatar.cancel import CancelToken
from avatar.companion import CompanionSpec
from avatar.errors import AvatarError
from avatar.images import check_file_size, check_limits, read_header
from serve.auth import Caller
from serve.problems import Problem, core_problem
from serve.schemas import CompanionOut
from serve.state import DEFAULT_COMPANION, ServeState
from serve.store import Companion, new_id, utc_now

router = APIRouter(prefix="/v1/companions", tags=["companions"])

_CHUNK = 1 << 20
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def _out(row: Companion) -> CompanionOut:
    return CompanionOut(
        id=row.id,
        name=row.name,
        images=len(row.images),
        source_image=row.source_image,
        voice=row.voice,
        created_at=row.created_at,
    )


def _default_out(state: ServeState) -> CompanionOut:
    spec = state.default_companion
    return CompanionOut(
        id=DEFAULT_COMPANION, name=spec.name, images=len(spec.images), source_image=0
    )


async def _save(upload: UploadFile, path: Path, budget: int) -> int:
    """Stream an upload to ``path``; returns its size, or raises 413 past ``budget`` bytes."""
    size = 0
    with path.open("wb") as out:
        while chunk := await upload.read(_CHUNK):
            size += len(chunk)
            if size > budget:
                raise Problem(413, "the upload is over limits.max_upload_mb", kind="too-large")
            out.write(chunk)
    if size == 0:
        raise Problem(422, f"image {upload.filename!r} is empty", kind="bad-image")
    return size


def _check_header(path: Path, max_megapixels: float) -> None:
    """Refuse a non-image or an image over the pixel limit before anything decodes it."""
    check_file_size(path, path.stat().st_size, max_megapixels=max_megapixels)
    check_limits(read_header(path), path, max_megapixels=max_megapixels)


def _client_names(problem: Problem, names: dict[str, str]) -> Problem:
    """Name the client's files in ``problem``, never the server's paths."""
    for stored, original in sorted(names.items(), key=lambda kv: -len(kv[0])):
        problem.detail = problem.detail.replace(stored, repr(original))
    return problem


@router.post("", status_code=201, response_model=CompanionOut)
async def create_companion(
    request: Request,
    who: Caller,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    images: Annotated[list[UploadFile], File(description="the companion's images, best first")],
    voice: Annotated[str | None, Form(description="a voice name (see configs/voices)")] = None,
) -> CompanionOut:
    """Store the images and derive the avatar (422 naming the image when one is unusable)."""
    state: ServeState = request.app.state.serve
    limits = state.settings.limits
    if not name.strip():
        raise Problem(422, "name: must not be blank", kind="invalid-request")
    if not images or len(images) > limits.max_images:
        raise Problem(
            422,
            f"images: send 1 to {limits.max_images} images (limits.max_images), got {len(images)}",
            kind="invalid-request",
        )
    pipeline = state.pipeline(state.settings.default_size)
    if voice is not None:
        try:
            pipeline.voices.get(voice)
        except AvatarError as exc:
            raise Problem(422, f"voice: {exc}", kind="invalid-request") from None
    max_megapixels = pipeline.identities.settings.max_image_megapixels
    cid = new_id("cmp")
    folder = state.companions_dir / who.id / cid
    names: dict[str, str] = {}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        budget = limits.max_upload_bytes
        for k, upload in enumerate(images):
            suffix = _SUFFIX.search(upload.filename or "")
            path = folder / f"{k}{suffix.group(0).lower() if suffix else '.img'}"
            names[str(path)] = upload.filename or f"image {k + 1}"
            budget -= await _save(upload, path, budget)
            await run_in_threadpool(_check_header, path, max_megapixels)
        spec = CompanionSpec(id=cid, name=name, images=list(names), voice=voice)
        token = CancelToken()
        with state.pool.admitted(who.id, counts_for_rate=False):
            resolved = await state.pool.run(pipeline.resolve, spec, cancel=token)
        row = Companion(
            id=cid,
            tenant_id=who.id,
            name=name,
            images=list(names),
            voice=voice,
            identity_key=resolved.identity.key,
            source_image=resolved.identity.source_index,
            created_at=utc_now(),
        )
        await run_in_threadpool(state.store.add_companion, row)
    except AvatarError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        names[repr(cid)] = name  # the id was never given out: name the companion instead
        raise _client_names(core_problem(exc), names) from None
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _out(row)


@router.get("", response_model=list[CompanionOut])
async def list_companions(request: Request, who: Caller) -> list[CompanionOut]:
    """The tenant's companions, ``default`` first."""
    state: ServeState = request.app.state.serve
    rows = await run_in_threadpool(state.store.companions, who.id)
    return [_default_out(state), *(_out(r) for r in rows)]


@router.get("/{companion_id}", response_model=CompanionOut)
async def get_companion(companion_id: str, request: Request, who: Caller) -> CompanionOut:
    state: ServeState = request.app.state.serve
    if companion_id == DEFAULT_COMPANION:
        return _default_out(state)
    row = await run_in_threadpool(state.store.companion, who.id, companion_id)
    if row is None:
        raise Problem(404, f"no companion {companion_id!r}", kind="not-found")
    return _out(row)


@router.delete("/{companion_id}", status_code=204, response_class=Response)
async def delete_companion(companion_id: str, request: Request, who: Caller) -> Response:
    """Delete the companion, its images, its sessions and their generated files."""
    state: ServeState = request.app.state.serve
    if companion_id == DEFAULT_COMPANION:
        raise Problem(409, "the default companion cannot be deleted", kind="conflict")
    deleted = await run_in_threadpool(state.store.delete_companion, who.id, companion_id)
    if deleted is None:
        raise Problem(404, f"no companion {companion_id!r}", kind="not-found")
    _, sessions = deleted
    for session in sessions:
        await run_in_threadpool(state.remove_session_files, session)
    await run_in_threadpool(
        shutil.rmtree, state.companions_dir / who.id / companion_id, ignore_errors=True
    )
    return Response(status_code=204)
