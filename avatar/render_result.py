"""RenderResult: what one render of :class:`avatar.pipeline.Pipeline` produced (an MP4 file or
a stream), its stage timings and the intermediate results (identity, motion, speech)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from avatar.identity.types import AvatarIdentity
from avatar.motion.track import MotionTrack
from avatar.speech.tts import Speech

__all__ = ["RenderResult"]


@dataclass
class RenderResult:
    """What a render produced.

    Attributes:
        path: the written MP4; None when the render went to a sink (a fragmented stream).
        n_frames: video frames written.
        fps: frames per second.
        audio_seconds: length of the speech, seconds.
        timings: seconds per stage (``tts``, ``identity``, ``motion``, ``render``,
            ``encode``; render and encode overlap, each in its own thread), ``first_frame``
            (from the start of the request) and ``total`` (wall seconds, end to end).
        identity: the identity used.
        motion: the motion track rendered.
        speech: the speech (audio, rate, timeline); None for a text rendered in segments
            (:mod:`avatar.long_text`: its audio is only in the MP4, to bound memory).
        boundaries: the frames at which a segment after the first starts (texts rendered in
            segments; empty otherwise).
    """

    path: Path | None
    n_frames: int
    fps: float
    audio_seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    identity: AvatarIdentity | None = None
    motion: MotionTrack | None = None
    speech: Speech | None = None
    boundaries: list[int] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        """End-to-end wall seconds per second of audio (lower is faster)."""
        return self.timings.get("total", float("nan")) / max(self.audio_seconds, 1e-9)
