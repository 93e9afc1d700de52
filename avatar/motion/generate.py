"""MotionGenerator: phoneme timings + audio -> a complete MotionTrack (mouth, eyes, head)."""

from __future__ import annotations

import logging

import numpy as np

from avatar.motion.behaviour import (
    blink_curve,
    blink_times,
    head_motion,
    silent_spans,
    speech_activity,
)
from avatar.motion.coarticulation import coarticulate
from avatar.motion.track import CHANNELS, MOUTH_CHANNELS, MotionTrack
from avatar.motion.visemes import VISEMES
from avatar.speech.timeline import PhonemeTimeline

log = logging.getLogger(__name__)


class MotionGenerator:
    """Builds the per-frame motion of a speaking companion.

    The track holds every channel in :data:`avatar.motion.track.CHANNELS` plus the viseme
    weights as ``viseme.<name>`` channels (for evals and notebooks). Seeded: the same inputs
    and ``seed`` give the same track.
    """

    def __init__(
        self,
        *,
        fps: float,
        seed: int,
        lead_s: float,
        anticipation_s: float,
        carryover_s: float,
        smoothing_s: float,
        min_pause_s: float,
        pause_ramp_s: float,
        silence_db: float,
        articulation: float,
        blink_rate_per_min: float,
        blink_min_interval_s: float,
        blink_max_interval_s: float,
        blink_close_s: float,
        blink_hold_s: float,
        blink_open_s: float,
        head_sway_deg: float,
        speaking_sway_gain: float,
        nod_deg: float,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"motion.fps must be positive, got {fps}")
        if blink_rate_per_min <= 0:
            raise ValueError(
                f"motion.blink_rate_per_min must be positive, got {blink_rate_per_min}"
            )
        self.fps = float(fps)
        self.seed = int(seed)
        self._coart = dict(
            lead_s=lead_s,
            anticipation_s=anticipation_s,
            carryover_s=carryover_s,
            smoothing_s=smoothing_s,
            min_pause_s=min_pause_s,
            pause_ramp_s=pause_ramp_s,
            intensity=articulation,
        )
        self.min_pause_s = min_pause_s
        self.silence_db = silence_db
        self._blink = dict(
            rate_per_min=blink_rate_per_min,
            min_interval_s=blink_min_interval_s,
            max_interval_s=blink_max_interval_s,
        )
        self._blink_shape = dict(close_s=blink_close_s, hold_s=blink_hold_s, open_s=blink_open_s)
        self._head = dict(
            sway_deg=head_sway_deg, speaking_sway_gain=speaking_sway_gain, nod_deg=nod_deg
        )

    def generate(
        self,
        timeline: PhonemeTimeline,
        audio: np.ndarray,
        sample_rate: int,
        n_frames: int,
    ) -> MotionTrack:
        """Motion for one utterance.

        Args:
            timeline: phoneme timings of ``audio`` (seconds).
            audio: (S,) float32 mono speech in [-1, 1].
            sample_rate: Hz.
            n_frames: frames T of the video (``round(seconds * fps)``).

        Returns:
            A MotionTrack of T frames at ``fps``.
        """
        rng = np.random.default_rng(self.seed)
        quiet = silent_spans(
            audio, sample_rate, min_duration_s=self.min_pause_s, threshold_db=self.silence_db
        )
        weights, mouth = coarticulate(
            timeline, n_frames, self.fps, extra_pauses=quiet, **self._coart
        )
        track = MotionTrack.zeros(
            n_frames, self.fps, CHANNELS + tuple(f"viseme.{v}" for v in VISEMES)
        )
        for i, name in enumerate(MOUTH_CHANNELS):
            track.set(name, mouth[:, i])
        for i, v in enumerate(VISEMES):
            track.set(f"viseme.{v}", weights[:, i])
        onsets = blink_times(n_frames / self.fps, rng, **self._blink)
        closure = blink_curve(onsets, n_frames, self.fps, **self._blink_shape)
        track.set("blink_l", closure)
        track.set("blink_r", closure)
        activity = speech_activity(audio, sample_rate, n_frames, self.fps)
        for name, series in head_motion(
            n_frames, self.fps, rng, activity=activity, **self._head
        ).items():
            track.set(name, series)
        log.debug("motion: %d frames, %d blinks", n_frames, len(onsets))
        return track
