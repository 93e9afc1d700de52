"""The FastAPI application: ``create_app(settings, make_pipeline)`` builds it (one per process).

At start the database is migrated and ``AVATAR_API_KEYS`` seeded; a background task sweeps
expired sessions. Routes live in :mod:`serve.routers` (one module per resource), errors are
problem+json (:mod:`serve.problems`), renders run in :class:`serve.render_pool.RenderPool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from serve.problems import install_problem_handlers, problem_response
from serve.routers import companions, generate, health, sessions, tokens
from serve.settings import ServeSettings
from serve.state import PipelineMaker, ServeState
from serve.store import Store

log = logging.getLogger(__name__)

__all__ = ["create_app"]

STATIC = Path(__file__).with_name("static")
API_VERSION = "1.0.0"


async def _sweep(state: ServeState) -> None:
    while True:
        await asyncio.sleep(state.settings.cleanup_interval_s)
        try:
            await run_in_threadpool(state.sweep_expired)
        except Exception:  # keep sweeping; the next round may succeed
            log.exception("session cleanup failed")


def _body_limit(state: ServeState) -> Callable[..., Awaitable[Response]]:
    async def limit(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > state.settings.limits.max_upload_bytes:
            return problem_response(
                413,
                f"the request body is {int(length)} bytes, over limits.max_upload_mb "
                f"({state.settings.limits.max_upload_mb:g} MB)",
                kind="too-large",
            )
        return await call_next(request)

    return limit


def create_app(settings: ServeSettings, make_pipeline: PipelineMaker) -> FastAPI:
    """The application over ``settings``; pipelines come from ``make_pipeline(size=...)``."""
    store = Store(settings.database_url)
    state = ServeState(settings, store, make_pipeline)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        await run_in_threadpool(store.migrate)
        await run_in_threadpool(store.seed, settings.api_keys)
        sweeper = asyncio.create_task(_sweep(state))
        state.ready = True
        log.info("serving; database %s", store.engine.url.render_as_string(hide_password=True))
        try:
            yield
        finally:
            state.ready = False
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            await run_in_threadpool(state.pool.shutdown)
            store.close()

    app = FastAPI(
        title="Companion avatar API",
        version=API_VERSION,
        description="Talking heads of AI companions: sessions, generated MP4s, LiveKit tokens.",
        lifespan=lifespan,
    )
    app.state.serve = state
    install_problem_handlers(app)
    app.middleware("http")(_body_limit(state))
    app.middleware("http")(state.metrics.middleware)
    for module in (health, companions, sessions, generate, tokens):
        app.include_router(module.router)
    if STATIC.is_dir():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="demo")
    return app
