"""The ``realtime`` settings node (``configs/realtime/default.yaml``, the only place its defaults
live), read by the LiveKit worker, the API's avatar dispatch and ``python -m serve.simulate``.
Importing it loads no LiveKit or torch code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from avatar.errors import ConfigValueError


@dataclass(frozen=True)
class RealtimeSettings:
    """The ``realtime`` config node.

    Attributes:
        audio_sample_rate: Hz of the published audio (and what the voice agent is asked to send).
        idle_lead_s: how far ahead of the clock idle frames are made, seconds.
        listen: react to the user's microphone (nods, reactions, steadier eye contact).
        max_sessions: real-time sessions one worker process takes before it reports full load.
    """

    audio_sample_rate: int
    idle_lead_s: float
    listen: bool
    max_sessions: int

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> RealtimeSettings:
        """Settings from a config node; an unknown key is an error naming it."""
        unknown = set(node) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigValueError(
                f"realtime: unknown key(s) {sorted(unknown)}; known: "
                f"{sorted(cls.__dataclass_fields__)}"
            )
        missing = set(cls.__dataclass_fields__) - set(node)
        if missing:
            raise ConfigValueError(f"realtime: missing key(s) {sorted(missing)}")
        settings = cls(**dict(node))
        if settings.max_sessions < 1 or not 0 <= settings.idle_lead_s <= 0.5:
            raise ConfigValueError(
                "realtime: need max_sessions >= 1 and idle_lead_s in [0, 0.5], got "
                f"{settings.max_sessions}, {settings.idle_lead_s}"
            )
        return settings

    @classmethod
    def default(cls) -> RealtimeSettings:
        """The shipped defaults (``configs/realtime/default.yaml``)."""
        import yaml

        from avatar.companion import configs_dir

        text = (configs_dir() / "realtime" / "default.yaml").read_text(encoding="utf-8")
        return cls.from_config(yaml.safe_load(text))
