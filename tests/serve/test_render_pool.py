"""RenderPool alone: 503 when the queue is full, 429 past a tenant's concurrency or rate, each
with Retry-After; jobs on workers, counted; 504 and a cancelled token past the timeout; the
token cancelled when the awaiting request is."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest
import yaml

from avatar.cancel import CancelToken
from avatar.companion import configs_dir
from avatar.errors import Cancelled
from serve.problems import Problem
from serve.render_pool import RenderPool
from serve.settings import Limits

pytestmark = pytest.mark.anyio


def limits(**changes: object) -> Limits:
    """``configs/serve.yaml``'s limits with ``changes``."""
    node = yaml.safe_load((configs_dir() / "serve.yaml").read_text())["limits"]
    return dataclasses.replace(Limits(**node), **changes)


def refused(pool: RenderPool, tenant: str, **kwargs: bool) -> Problem:
    with pytest.raises(Problem) as caught:
        with pool.admitted(tenant, **kwargs):
            pass
    return caught.value


def test_a_full_queue_is_503_with_retry_after() -> None:
    changes: list[tuple[int, int]] = []
    pool = RenderPool(limits(workers=1, queue=1), on_change=lambda *a: changes.append(a))
    with pool.admitted("alpha"), pool.admitted("beta"):
        assert pool.depth == 2
        busy = refused(pool, "gamma")
        # no render timed yet: 2 s each, two renders per worker ahead
        assert (busy.status, busy.kind, busy.headers) == (503, "busy", {"Retry-After": "4"})
        assert "2 renders running or waiting" in busy.detail
    assert pool.depth == 0 and changes == [(1, 0), (2, 0), (1, 0), (0, 0)]
    with pool.admitted("gamma"):  # room again
        assert pool.depth == 1


def test_a_tenant_over_its_concurrency_is_429_and_others_go_on() -> None:
    pool = RenderPool(limits(workers=2, queue=4, tenant_concurrency=1))
    with pool.admitted("alpha"):
        again = refused(pool, "alpha")
        assert (again.status, again.kind) == (429, "too-many-renders")
        assert int(again.headers["Retry-After"]) >= 1
        assert "limits.tenant_concurrency=1" in again.detail
        with pool.admitted("beta"):
            assert pool.depth == 2


def test_a_tenant_over_its_rate_is_429_until_the_minute_has_passed() -> None:
    pool = RenderPool(limits(tenant_rate_per_min=2))
    for _ in range(2):
        with pool.admitted("alpha"):
            pass
    with pool.admitted("alpha", counts_for_rate=False):  # identity derivations do not count
        pass
    limited = refused(pool, "alpha")
    assert (limited.status, limited.kind) == (429, "rate-limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "limits.tenant_rate_per_min" in limited.detail
    with pool.admitted("beta"):  # per tenant
        pass


async def test_jobs_run_on_workers_and_are_counted() -> None:
    pool = RenderPool(limits(workers=2))
    seen: list[tuple[str, int]] = []

    def job(x: int, *, cancel: CancelToken, scale: int) -> int:
        seen.append((threading.current_thread().name, pool.running))
        return x * scale

    with pool.admitted("alpha"):
        assert await pool.run(job, 21, cancel=CancelToken(), scale=2) == 42
    assert seen[0][0].startswith("render") and seen[0][1] == 1
    assert pool.running == 0 and pool.depth == 0
    pool.shutdown()


async def test_a_failing_job_raises_its_error() -> None:
    pool = RenderPool(limits())

    def job(*, cancel: CancelToken) -> None:
        raise ValueError("bad frame")

    with pytest.raises(ValueError, match="bad frame"):
        await pool.run(job, cancel=CancelToken())
    assert pool.running == 0
    pool.shutdown()


def _until_cancelled(token: CancelToken, stopped: threading.Event) -> None:
    """A job that renders 'frames' until its token is cancelled (bounded: 30 s)."""
    for _ in range(3000):
        try:
            token.check()
        except Cancelled:
            stopped.set()
            raise
        threading.Event().wait(0.01)


async def test_past_the_timeout_the_job_is_cancelled_and_504() -> None:
    pool = RenderPool(limits(request_timeout_s=0.2))
    token, stopped = CancelToken(), threading.Event()
    with pytest.raises(Problem) as caught:
        await pool.run(lambda *, cancel: _until_cancelled(cancel, stopped), cancel=token)
    assert (caught.value.status, caught.value.kind) == (504, "timeout")
    assert "limits.request_timeout_s" in caught.value.detail
    assert token.reason == "request timeout" and stopped.is_set()
    assert pool.running == 0, "the 504 is answered once the worker has stopped"
    pool.shutdown()


async def test_a_cancelled_request_cancels_its_job() -> None:
    pool = RenderPool(limits())
    token, stopped = CancelToken(), threading.Event()
    task = asyncio.ensure_future(
        pool.run(lambda *, cancel: _until_cancelled(cancel, stopped), cancel=token)
    )
    while pool.running == 0:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert token.reason == "request cancelled"
    await asyncio.to_thread(stopped.wait, 30)
    pool.shutdown()  # waits for the worker
    assert stopped.is_set() and pool.running == 0
