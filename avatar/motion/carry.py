"""Motion that continues: where one track ended (:class:`MotionCarry`), and the blend that
takes the next track on from there without a jump.

A long text is spoken in parts, each with a track of its own. Blinks, glances and the mood
carry over exactly (a blink or glance in progress finishes, the next blink keeps its interval,
the emotion holds without ramping in again); the slowly varying channels (head pose, which
holds breathing and nods, and expression) are made afresh and then blended: the new track
starts where the previous one was heading (its last value plus its last step) and the
difference fades out over ``blend_s`` with a smoothstep, so velocity is continuous at the
boundary too (*inertialization*: Bollo, "Inertialization: High-Performance Animation
Transitions in Gears of War", GDC 2018, here with a smoothstep decay).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avatar.motion.emotion import EmotionEvent
from avatar.motion.gaze import Glance
from avatar.motion.track import EXPRESSION_CHANNELS, HEAD_CHANNELS, MotionTrack

__all__ = ["BLENDED_CHANNELS", "MotionCarry", "blend_from"]

BLENDED_CHANNELS: tuple[str, ...] = HEAD_CHANNELS + EXPRESSION_CHANNELS
"""Channels a continuing track blends in from the previous one's end."""


@dataclass(frozen=True)
class MotionCarry:
    """The end of a track, for the next one to continue from.

    Attributes:
        emotion: the emotion on the face at the end (its ``time`` is not used).
        blink_onset_s: onset of the last blink in seconds relative to the end (<= 0; when
            there was none, the start of the track).
        glance: the glance in progress at the end (:data:`avatar.motion.gaze.NO_GLANCE`:
            looking into the camera).
        tail: (2, len(BLENDED_CHANNELS)) float32: the last two frames of
            :data:`BLENDED_CHANNELS` (degrees for the head, channel units for expression).
    """

    emotion: EmotionEvent
    blink_onset_s: float
    glance: Glance
    tail: np.ndarray

    @classmethod
    def after(
        cls, track: MotionTrack, *, emotion: EmotionEvent, blink_onset_s: float, glance: Glance
    ) -> MotionCarry:
        """The carry at the end of ``track`` (at least one frame); ``blink_onset_s`` in
        seconds from the track's start."""
        tail = np.stack([track[c][-2:] for c in BLENDED_CHANNELS], axis=1)
        if len(tail) == 1:  # a one-frame track: no step to continue
            tail = np.concatenate([tail, tail])
        return cls(emotion, blink_onset_s - track.duration, glance, tail.astype(np.float32))


def blend_from(track: MotionTrack, tail: np.ndarray, frames: int) -> None:
    """Make ``track`` (in place) continue from ``tail`` without a jump.

    Each channel of :data:`BLENDED_CHANNELS` gets an offset that puts its first frame at the
    previous track's last value plus its last step, fading to 0 over ``frames`` frames with a
    smoothstep (zero slope at both ends).

    Args:
        track: the new track, (T, C).
        tail: (2, len(BLENDED_CHANNELS)): the previous track's last two frames.
        frames: blend length in frames (0: no blend).

    >>> t = MotionTrack.zeros(5, 25)
    >>> tail = np.zeros((2, len(BLENDED_CHANNELS)), np.float32)
    >>> tail[:, 0] = [1.0, 2.0]  # head_yaw was rising by 1 per frame
    >>> blend_from(t, tail, 4)
    >>> [round(float(v), 3) for v in t["head_yaw"]]
    [3.0, 2.531, 1.5, 0.469, 0.0]
    """
    n = min(int(frames), len(track))
    if n <= 0:
        return
    x = np.arange(n) / frames
    fade = 1.0 - x * x * (3.0 - 2.0 * x)  # (n,) 1 -> 0
    heading = tail[-1] + (tail[-1] - tail[-2])  # (K,) where the previous track was going
    for k, name in enumerate(BLENDED_CHANNELS):
        series = track[name]
        offset = float(heading[k]) - float(series[0])
        series[:n] += (offset * fade).astype(np.float32)
