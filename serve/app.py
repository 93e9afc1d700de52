"""The FastAPI application: ``create_app(settings, make_pipeline)`` builds it (one per process).

At start the database is migrated and ``AVATAR_API_KEYS`` seeded; a background task sweeps
expired sessions. Routes live in :mod:`serve.routers` (one module per resource), errors are
problem+json (:mod:`serve.problems`), renders run in :class:`serve.render_pool.RenderPool`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from serve.metrics import MetricsMiddleware
from serve.problems import install_problem_handlers, problem_response
from serve.routers import avatar, companions, generate, health, realtime, sessions, tokens
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


class BodyLimitMiddleware:
    """413 problem+json for a request that declares a body over ``limits.max_upload_mb``.

    Plain ASGI (not ``@app.middleware``), so streamed responses pass through untouched; a body
    sent chunked, without a length, is counted by the routes as it arrives.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_mb: float) -> None:
        self.app, self.max_bytes, self.max_mb = app, max_bytes, max_mb

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length", b"")
            if length.isdigit() and int(length) > self.max_bytes:
                response = problem_response(
                    413,
                    f"the request body is {int(length)} bytes, over limits.max_upload_mb "
                    f"({self.max_mb:g} MB)",
                    kind="too-large",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


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
            await run_in_threadpool(state.close_pipelines)
            store.close()

    app = FastAPI(
        title="Companion avatar API",
        version=API_VERSION,
        description="Talking heads of AI companions: sessions, generated MP4s, LiveKit tokens.",
        lifespan=lifespan,
    )
    app.state.serve = state
    install_problem_handlers(app)
    limits = settings.limits
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=limits.max_upload_bytes, max_mb=limits.max_upload_mb
    )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    for module in (health, companions, sessions, generate, tokens, avatar, realtime):
        app.include_router(module.router)
    if STATIC.is_dir():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="demo")
    return app
