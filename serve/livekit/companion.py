"""A companion's real-time face: the streaming session, the listener and the generator, built
from the ``realtime`` settings (:mod:`serve.livekit.settings`)."""

from __future__ import annotations

import numpy as np

from avatar.companion import CompanionSpec
from avatar.motion.live_listening import LiveListener
from avatar.pipeline import Pipeline
from serve.livekit.generator import CompanionVideoGenerator
from serve.livekit.settings import RealtimeSettings

__all__ = ["RealtimeSettings", "open_generator", "warm_up"]


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


def warm_up(pipeline: Pipeline, *, seconds: float = 0.6, sample_rate: int = 24000) -> None:
    """Run a throw-away session on quiet noise in 20 ms chunks, as a call feeds it.

    The first model calls at each input length (20 and 40 ms of audio, an utterance's start and
    end) set up their kernels, about 40 ms each; a job process does this before its call so that
    the call's first frame is not the one that pays.
    """
    session = pipeline.session("default")
    noise = np.random.default_rng(0).normal(0, 0.01, int(seconds * sample_rate))
    step = sample_rate // 50
    try:
        for start in range(0, len(noise), step):
            session.push_audio(noise[start : start + step].astype(np.float32), sample_rate)
        session.flush()
        session.idle(1)
    finally:
        session.close()
