"""One error body for every 4xx and 5xx: ``application/problem+json`` (RFC 9457).

``{"type", "title", "status", "detail"}`` plus ``Retry-After`` where waiting helps. Routes
raise :class:`Problem`; the core's anticipated errors (:class:`avatar.errors.AvatarError`) map
to a status by class; FastAPI's validation errors and unknown paths get the same shape; any
other exception is a 500 whose detail says nothing internal (the traceback goes to the log).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from avatar.errors import (
    AudioFormatError,
    AvatarError,
    Cancelled,
    CompanionSpecError,
    ConfigValueError,
    FaceNotFoundError,
    ImageReadError,
    MotionTrackError,
    OutputPathError,
    TextInputError,
    WeightsMissingError,
)

log = logging.getLogger(__name__)

__all__ = ["PROBLEM_JSON", "Problem", "install_problem_handlers", "problem_response"]

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://companion-avatar.dev/problems/"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    499: "Client closed request",
    500: "Internal server error",
    503: "Service unavailable",
    504: "Gateway timeout",
}
# core errors -> (status, problem type); the first matching class wins
_CORE_STATUS: list[tuple[type[BaseException], int, str]] = [
    (FaceNotFoundError, 422, "no-usable-face"),
    (ImageReadError, 422, "bad-image"),
    (AudioFormatError, 422, "bad-audio"),
    (TextInputError, 422, "bad-text"),
    (CompanionSpecError, 422, "bad-companion"),
    (ConfigValueError, 422, "bad-value"),
    (MotionTrackError, 422, "bad-motion"),
    (WeightsMissingError, 503, "model-missing"),
    (OutputPathError, 507, "storage"),
]


class Problem(Exception):
    """An HTTP error with its problem+json body.

    Args:
        status: HTTP status code.
        detail: what went wrong and how to fix it, for the client.
        kind: the problem type's last path segment (``.../problems/<kind>``).
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.kind = kind or _TITLES.get(status, "error").lower().replace(" ", "-")
        self.headers = headers or {}


def problem_response(
    status: int, detail: str, *, kind: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The problem+json response of ``status``."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + (kind or _TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def core_problem(exc: AvatarError) -> Problem:
    """The HTTP problem of a core error (its message is meant for the user)."""
    for cls, status, kind in _CORE_STATUS:
        if isinstance(exc, cls):
            return Problem(status, str(exc), kind=kind)
    return Problem(422, str(exc), kind="bad-input")


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "; ".join(parts) or "the request is not valid"


def install_problem_handlers(app: FastAPI) -> None:
    """Route every error through :func:`problem_response`."""

    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.detail, kind=exc.kind, headers=exc.headers)

    @app.exception_handler(AvatarError)
    async def _core(_: Request, exc: AvatarError) -> JSONResponse:
        p = core_problem(exc)
        return problem_response(p.status, p.detail, kind=p.kind)

    @app.exception_handler(Cancelled)
    async def _cancelled(_: Request, exc: Cancelled) -> JSONResponse:
        return problem_response(499, f"the render was cancelled: {exc}", kind="cancelled")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(422, _validation_detail(exc), kind="invalid-request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "an internal error occurred; it has been logged")
