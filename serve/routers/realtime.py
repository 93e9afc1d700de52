"""``GET /v1/realtime``: whether real time (LiveKit) is configured, for clients such as the demo
page, which shows its "Talk in real time" button only then.

The answer carries the LiveKit URL (public: clients connect to it) and never the key or
secret. Tokens themselves come from ``POST /v1/sessions/{id}/token`` (:mod:`serve.routers.tokens`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from serve.auth import Caller
from serve.state import ServeState

router = APIRouter(prefix="/v1", tags=["real time"])


class RealtimeOut(BaseModel):
    """Whether ``POST /v1/sessions/{id}/token`` can give a LiveKit token."""

    enabled: bool = Field(
        description="LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET are set",
        examples=[True],
    )
    url: str | None = Field(
        default=None,
        description="the LiveKit server clients join (null when not enabled)",
        examples=["wss://livekit.example.com"],
    )


@router.get("/realtime", response_model=RealtimeOut)
async def realtime(request: Request, who: Caller) -> RealtimeOut:
    """Whether real-time calls (LiveKit) are available on this deployment."""
    state: ServeState = request.app.state.serve
    lk = state.settings.livekit
    return RealtimeOut(enabled=lk is not None, url=lk.url if lk else None)
