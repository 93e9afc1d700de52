"""What the routes that send the avatar worker into a room share: LiveKit must be configured
(503 naming the variables otherwise) and the dispatch must be accepted (503 with
``Retry-After`` when LiveKit refuses or does not answer)."""

from __future__ import annotations

import logging

from serve.livekit_tokens import dispatch_avatar
from serve.problems import Problem
from serve.settings import LiveKitSettings
from serve.state import ServeState

log = logging.getLogger(__name__)


def livekit_of(state: ServeState) -> LiveKitSettings:
    """The LiveKit server's settings, or 503 when real time is not configured."""
    lk = state.settings.livekit
    if lk is None:
        raise Problem(
            503,
            "real time is not configured: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
            kind="livekit-not-configured",
        )
    return lk


async def dispatch_or_503(
    state: ServeState, lk: LiveKitSettings, *, room: str, metadata: str
) -> str:
    """Dispatch the avatar worker (``tokens.agent_name``) into ``room``; returns the dispatch id."""
    try:
        return await dispatch_avatar(
            lk, agent_name=state.settings.agent_name, room=room, metadata=metadata
        )
    except Exception as exc:  # the server is configured but unreachable or refusing
        log.warning("agent dispatch to %s failed: %s", lk.url, exc)
        raise Problem(
            503,
            f"LiveKit at {lk.url} did not accept the avatar's dispatch ({type(exc).__name__}); "
            "check LIVEKIT_URL and the API key, or retry",
            kind="livekit-unavailable",
            headers={"Retry-After": "5"},
        ) from None
