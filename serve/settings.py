"""ServeSettings: the service's settings, from ``configs/serve.yaml`` plus the environment.

Plain frozen dataclasses (no Hydra below the entry point, :mod:`serve.config`). Every value is
checked here, with the config key or environment variable named in the error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avatar.errors import ConfigValueError
from serve.livekit.settings import RealtimeSettings

__all__ = ["LiveKitSettings", "Limits", "ServeSettings", "parse_api_keys"]

MAX_TOKEN_TTL_S = 600


@dataclass(frozen=True)
class Limits:
    """Request and capacity limits (config node ``limits``)."""

    max_text_chars: int
    max_upload_mb: float
    max_images: int
    max_audio_seconds: float
    workers: int
    queue: int
    tenant_concurrency: int
    tenant_rate_per_min: int
    request_timeout_s: float

    def __post_init__(self) -> None:
        for name in ("max_text_chars", "max_images", "workers", "tenant_concurrency"):
            _positive(f"limits.{name}", getattr(self, name))
        for name in ("max_upload_mb", "max_audio_seconds", "request_timeout_s"):
            _positive(f"limits.{name}", getattr(self, name))
        if self.queue < 0 or self.tenant_rate_per_min < 1:
            raise ConfigValueError("limits.queue must be >= 0 and limits.tenant_rate_per_min >= 1")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


@dataclass(frozen=True)
class LiveKitSettings:
    """The LiveKit server (``LIVEKIT_URL``, ``LIVEKIT_API_KEY``, ``LIVEKIT_API_SECRET``)."""

    url: str
    api_key: str
    api_secret: str = field(repr=False)


@dataclass(frozen=True)
class ServeSettings:
    """Everything :func:`serve.app.create_app` needs.

    Attributes:
        host, port: where uvicorn listens.
        var_dir: the service's state: database (SQLite default), companion images, MP4 cache.
        database_url: SQLAlchemy URL (``AVATAR_DATABASE_URL``; SQLite in ``var_dir`` by default).
        api_keys: tenant name -> API key seeded at start (``AVATAR_API_KEYS``).
        livekit: the LiveKit server, or None (then ``/token`` answers 503).
        render_overrides: ``configs/render.yaml`` overrides of the served pipelines.
        sizes: frame sizes sessions may ask for; default_size: a session's default.
        limits: request and capacity limits.
        session_idle_ttl_s, cleanup_interval_s, cache_entries: session lifetime and cache.
        token_ttl_s: LiveKit token lifetime (<= 600 s); agent_name: the avatar worker's name.
        realtime: the real-time sessions (config node ``realtime``): audio rate, idle lead,
            listening, sessions per worker process.
    """

    host: str
    port: int
    var_dir: Path
    database_url: str
    api_keys: dict[str, str] = field(repr=False)
    livekit: LiveKitSettings | None
    render_overrides: tuple[str, ...]
    sizes: tuple[int, ...]
    default_size: int
    limits: Limits
    session_idle_ttl_s: float
    cleanup_interval_s: float
    cache_entries: int
    token_ttl_s: int
    agent_name: str
    realtime: RealtimeSettings

    def __post_init__(self) -> None:
        if self.default_size not in self.sizes:
            raise ConfigValueError(f"default_size {self.default_size} is not in sizes {self.sizes}")
        if not 0 < self.token_ttl_s <= MAX_TOKEN_TTL_S:
            raise ConfigValueError(f"tokens.ttl_s must be in (0, {MAX_TOKEN_TTL_S}]")
        _positive("sessions.idle_ttl_s", self.session_idle_ttl_s)
        _positive("sessions.cleanup_interval_s", self.cleanup_interval_s)
        _positive("sessions.cache_entries", self.cache_entries)

    @classmethod
    def from_config(
        cls, cfg: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> ServeSettings:
        """Settings from a resolved ``configs/serve.yaml`` mapping and the environment."""
        env = os.environ if env is None else env
        var_dir = Path(str(cfg["var_dir"])).expanduser()
        url = env.get("AVATAR_DATABASE_URL") or f"sqlite:///{var_dir / 'avatar.db'}"
        lk = [env.get(k, "") for k in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")]
        if any(lk) and not all(lk):
            raise ConfigValueError(
                "LiveKit needs all of LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
            )
        sessions, tokens = cfg["sessions"], cfg["tokens"]
        return cls(
            host=str(cfg["host"]),
            port=int(cfg["port"]),
            var_dir=var_dir,
            database_url=url,
            api_keys=parse_api_keys(env.get("AVATAR_API_KEYS", "")),
            livekit=LiveKitSettings(*lk) if all(lk) else None,
            render_overrides=tuple(cfg["render_overrides"]),
            sizes=tuple(int(s) for s in cfg["sizes"]),
            default_size=int(cfg["default_size"]),
            limits=Limits(**dict(cfg["limits"])),
            session_idle_ttl_s=float(sessions["idle_ttl_s"]),
            cleanup_interval_s=float(sessions["cleanup_interval_s"]),
            cache_entries=int(sessions["cache_entries"]),
            token_ttl_s=int(tokens["ttl_s"]),
            agent_name=str(tokens["agent_name"]),
            realtime=RealtimeSettings.from_config(cfg["realtime"]),
        )


def parse_api_keys(text: str) -> dict[str, str]:
    """``"alpha:KEY1,beta:KEY2"`` -> ``{"alpha": "KEY1", "beta": "KEY2"}``.

    >>> parse_api_keys("alpha:key-one-1, beta:key-two-2")
    {'alpha': 'key-one-1', 'beta': 'key-two-2'}
    """
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, key = item.partition(":")
        if not sep or not name.strip() or len(key.strip()) < 8:
            raise ConfigValueError(
                "AVATAR_API_KEYS must be 'tenant:key,...' with keys of at least 8 characters"
            )
        out[name.strip()] = key.strip()
    return out


def _positive(key: str, value: float) -> None:
    if not value > 0:
        raise ConfigValueError(f"{key} must be > 0, got {value!r}")
