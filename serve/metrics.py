"""Prometheus metrics of one app (its own registry): request and render latency histograms
(renders by kind: text, audio, stream), a stream's time to first bytes, renders running and
waiting. Served at ``GET /metrics``."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Metrics", "MetricsMiddleware"]

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
            "Render latency (admitted to MP4 written or streamed) by kind: text, audio, stream",
            ("kind",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stream_first_byte = Histogram(
            "avatar_stream_first_byte_seconds",
            "Streamed generate (?stream=true): seconds from admission to the first bytes",
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """:meth:`Metrics.middleware` as a plain ASGI middleware
    (``app.add_middleware(MetricsMiddleware, metrics=...)``).

    Unlike a ``@app.middleware("http")`` function (Starlette's ``BaseHTTPMiddleware``), it
    passes a streamed body through untouched: when a stream fails after its first byte, the
    server can close the connection, so the client sees the body cut short instead of a clean
    end. Latency runs to the end of the response.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - t0
            )
