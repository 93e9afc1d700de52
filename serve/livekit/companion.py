"""A companion's real-time face: the streaming session, the listener and the generator, built
from the ``realtime`` settings (:mod:`serve.livekit.settings`)."""

from __future__ import annotations

from avatar.companion import CompanionSpec
from avatar.motion.live_listening import LiveListener
from avatar.pipeline import Pipeline
from serve.livekit.generator import CompanionVideoGenerator
from serve.livekit.settings import RealtimeSettings

__all__ = ["RealtimeSettings", "open_generator"]


def open_generator(
    pipeline: Pipeline,
    companion: CompanionSpec | str,
    settings: RealtimeSettings,
    *,
    seed: int | None = None,
) -> CompanionVideoGenerator:
    """The companion's generator: a new streaming session of ``pipeline`` (identity and
    renderer state shared with every other session of the same companion)."""
    session = pipeline.session(companion)
    listener = None
    if settings.listen:
        listener = LiveListener.from_motion(
            pipeline.motion, reference_dbfs=pipeline.streaming.reference_dbfs, seed=seed
        )
    return CompanionVideoGenerator(
        session,
        size=pipeline.size,
        audio_sample_rate=settings.audio_sample_rate,
        listener=listener,
        idle_lead_s=settings.idle_lead_s,
    )
