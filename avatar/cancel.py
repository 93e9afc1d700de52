"""Cancellation of long calls: a token the caller keeps and the work checks per frame.

A server hands each request's token to the pipeline and cancels it when the client goes away;
the render stops at its next check (before the next frame) with :class:`~avatar.errors.Cancelled`
and writes nothing.

>>> token = CancelToken()
>>> token.cancel("client left")
>>> token.check()
Traceback (most recent call last):
...
avatar.errors.Cancelled: client left
"""

from __future__ import annotations

import threading

from avatar.errors import Cancelled

__all__ = ["CancelToken", "check"]


class CancelToken:
    """A thread-safe, one-way flag: once cancelled it stays cancelled."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the work holding this token to stop (idempotent; the first reason is kept)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`~avatar.errors.Cancelled` if cancelled; a cheap no-op otherwise."""
        if self._event.is_set():
            raise Cancelled(self.reason)


def check(token: CancelToken | None) -> None:
    """:meth:`CancelToken.check` for an optional token."""
    if token is not None:
        token.check()
