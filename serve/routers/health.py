"""Health, readiness and metrics: the only routes without an API key."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from serve.problems import Problem
from serve.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"description": "not ready"}})
async def readyz(request: Request) -> Health:
    """The database answers and start-up (migrations, seeding) is done."""
    state = request.app.state.serve

    def ping() -> None:
        with state.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    if not state.ready:
        raise Problem(503, "starting up", headers={"Retry-After": "1"})
    try:
        await run_in_threadpool(ping)
    except Exception as exc:  # any database failure: not ready, say why
        raise Problem(503, f"database unreachable: {type(exc).__name__}") from None
    return Health(status="ready")


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus exposition: request and render latency, queue depth, renders in flight."""
    body = request.app.state.serve.metrics.exposition()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
