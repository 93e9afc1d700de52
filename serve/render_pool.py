"""RenderPool: CPU work off the event loop, bounded, fair between tenants, cancellable.

- ``workers`` threads run renders (and identity derivations); up to ``queue`` more wait.
  Beyond that a request is refused at once with 503 and a ``Retry-After`` estimated from
  recent render times, instead of piling up.
- Each tenant may have ``tenant_concurrency`` renders running or waiting and
  ``tenant_rate_per_min`` requests a minute; beyond either, 429 with ``Retry-After``.
- Each job gets a :class:`~avatar.cancel.CancelToken`: the route cancels it when its client
  disconnects, and the pool when ``request_timeout_s`` passes (504); the render stops before
  its next frame and writes nothing.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from avatar.cancel import CancelToken
from serve.problems import Problem
from serve.settings import Limits

__all__ = ["RenderPool"]

T = TypeVar("T")


class RenderPool:
    """See the module docstring.

    Args:
        limits: worker, queue and per-tenant limits.
        on_change: called with (running + waiting, running) whenever they change (metrics).
    """

    def __init__(self, limits: Limits, on_change: Callable[[int, int], None] | None = None) -> None:
        self.limits = limits
        self._executor = ThreadPoolExecutor(limits.workers, thread_name_prefix="render")
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._running = 0
        self._tenants: Counter[str] = Counter()
        self._recent: dict[str, deque[float]] = {}
        self._durations: deque[float] = deque(maxlen=50)
        self._on_change = on_change or (lambda _a, _r: None)

    @property
    def depth(self) -> int:
        """Renders running or waiting."""
        return self._admitted

    @property
    def running(self) -> int:
        """Renders running on a worker now (0 once a cancelled render has stopped)."""
        return self._running

    def _retry_after(self) -> int:
        typical = sorted(self._durations)[len(self._durations) // 2] if self._durations else 2.0
        waves = max(1.0, self._admitted / self.limits.workers)
        return max(1, math.ceil(typical * waves))

    @contextmanager
    def admitted(self, tenant_id: str, *, counts_for_rate: bool = True) -> Iterator[None]:
        """Hold a place for one job of ``tenant_id`` or raise the 503 / 429 :class:`Problem`."""
        now = time.monotonic()
        with self._lock:
            recent = self._recent.setdefault(tenant_id, deque())
            while recent and now - recent[0] > 60.0:
                recent.popleft()
            if counts_for_rate and len(recent) >= self.limits.tenant_rate_per_min:
                wait = max(1, math.ceil(60.0 - (now - recent[0])))
                raise Problem(
                    429,
                    f"over {self.limits.tenant_rate_per_min} requests a minute for this tenant "
                    "(limits.tenant_rate_per_min)",
                    kind="rate-limited",
                    headers={"Retry-After": str(wait)},
                )
            if self._tenants[tenant_id] >= self.limits.tenant_concurrency:
                raise Problem(
                    429,
                    f"this tenant has {self._tenants[tenant_id]} renders running or waiting "
                    f"(limits.tenant_concurrency={self.limits.tenant_concurrency})",
                    kind="too-many-renders",
                    headers={"Retry-After": str(self._retry_after())},
                )
            if self._admitted >= self.limits.workers + self.limits.queue:
                raise Problem(
                    503,
                    f"the service is busy ({self._admitted} renders running or waiting); retry",
                    kind="busy",
                    headers={"Retry-After": str(self._retry_after())},
                )
            if counts_for_rate:
                recent.append(now)
            self._admitted += 1
            self._tenants[tenant_id] += 1
            self._on_change(self._admitted, self._running)
        try:
            yield
        finally:
            with self._lock:
                self._admitted -= 1
                self._tenants[tenant_id] -= 1
                if not self._tenants[tenant_id]:
                    del self._tenants[tenant_id]
                self._on_change(self._admitted, self._running)

    def _timed(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self._lock:
            self._running += 1
            self._on_change(self._admitted, self._running)
        t0 = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            with self._lock:
                self._running -= 1
                self._durations.append(time.monotonic() - t0)
                self._on_change(self._admitted, self._running)

    async def run(self, fn: Callable[..., T], *args: Any, cancel: CancelToken, **kwargs: Any) -> T:
        """Run ``fn(*args, cancel=cancel, **kwargs)`` on a worker (inside :meth:`admitted`).

        A job still running after ``limits.request_timeout_s`` is cancelled and raises a 504
        :class:`Problem`.
        """
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(
            self._executor, lambda: self._timed(fn, *args, cancel=cancel, **kwargs)
        )
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.limits.request_timeout_s)
        except TimeoutError:
            cancel.cancel("request timeout")
            try:  # the worker stops before its next frame; whatever it ends with, it is a 504
                await future
            except Exception:  # avatar.errors.Cancelled included
                pass
            raise Problem(
                504,
                f"the render took over {self.limits.request_timeout_s:g} s "
                "(limits.request_timeout_s) and was stopped",
                kind="timeout",
            ) from None
        except asyncio.CancelledError:  # the request task itself was cancelled
            cancel.cancel("request cancelled")
            future.add_done_callback(_retrieve)  # the worker ends with Cancelled: not an error
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a future's outcome as seen (nobody awaits it any more)."""
    if not future.cancelled():
        future.exception()
