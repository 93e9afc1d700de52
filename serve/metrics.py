"""Prometheus metrics of one app (its own registry): request and render latency histograms,
renders running and waiting. Served at ``GET /metrics``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)


class Metrics:
    """The app's metrics and the middleware that times every request by route template."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "avatar_http_request_seconds",
            "HTTP request latency by route and status",
            ("method", "route", "status"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.renders = Histogram(
            "avatar_render_seconds",
            "Render latency (request in to MP4 written) by kind",
            ("kind",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "avatar_render_queue_depth", "Renders running or waiting", registry=self.registry
        )
        self.in_flight = Gauge(
            "avatar_renders_in_flight", "Renders running on a worker", registry=self.registry
        )

    def pool_changed(self, depth: int, running: int) -> None:
        self.queue_depth.set(depth)
        self.in_flight.set(running)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            path = getattr(route, "path", "unmatched")
            self.requests.labels(request.method, path, str(status)).observe(
                time.perf_counter() - t0
            )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
