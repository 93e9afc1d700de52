"""Fixtures of the service tests: an app over a temporary ``var_dir`` (SQLite), two tenants, an
httpx client on the app (ASGI, lifespan run), small frame sizes so renders stay fast.

Async tests run on anyio's pytest plugin: mark them ``pytest.mark.anyio`` (asyncio backend).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from serve.app import create_app
from serve.config import load

KEYS = {"alpha": "alpha-key-0123456789", "beta": "beta-key-0123456789"}
"""Two tenants seeded through AVATAR_API_KEYS."""


def auth(tenant: str) -> dict[str, str]:
    """The Authorization header of a seeded tenant."""
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def serve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a staging deployment sets: seeded keys, no LiveKit, no database URL."""
    monkeypatch.setenv("AVATAR_API_KEYS", ",".join(f"{t}:{k}" for t, k in KEYS.items()))
    for name in ("AVATAR_DATABASE_URL", "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make_app(serve_env: None, tmp_path: Path, identity_cache: Path) -> Callable[..., object]:
    """``make_app(*overrides, **settings_changes)``: an app over ``tmp_path/var`` (sizes 128 and
    256, default 128; the session's identity cache shared)."""

    def make(*overrides: str, **changes: object):  # noqa: ANN202
        settings, factory = load(
            [
                f"var_dir={tmp_path / 'var'}",
                "sizes=[128,256]",
                "default_size=128",
                f"render_overrides=['identity.cache_dir={identity_cache}']",
                *overrides,
            ]
        )
        if changes:
            settings = dataclasses.replace(settings, **changes)
        return create_app(settings, factory)

    return make


@pytest.fixture
async def client(make_app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    """An httpx client on a fresh app (its lifespan run: migrated, keys seeded)."""
    app = make_app()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://avatar.test") as c:
            yield c
