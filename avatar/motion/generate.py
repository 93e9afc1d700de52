"""MotionGenerator: phoneme timings + audio -> a complete MotionTrack (mouth, eyes, head, face)."""

from __future__ import annotations

import logging

import numpy as np

from avatar.errors import ConfigValueError
from avatar.motion.behaviour import (
    blink_curve,
    blink_times,
    head_motion,
    silent_spans,
    speech_activity,
)
from avatar.motion.coarticulation import coarticulate
from avatar.motion.emotion import EmotionEvent, check_emotion, expression_channels
from avatar.motion.gaze import saccades
from avatar.motion.listening import breathing, listening_motion
from avatar.motion.track import CHANNELS, MOUTH_CHANNELS, MotionTrack
from avatar.motion.visemes import VISEMES
from avatar.speech.timeline import PhonemeTimeline

log = logging.getLogger(__name__)


class MotionGenerator:
    """Builds the per-frame motion of a companion that speaks, listens or idles.

    The track holds every channel in :data:`avatar.motion.track.CHANNELS` plus the viseme
    weights as ``viseme.<name>`` channels (for evals and notebooks). Seeded: the same inputs
    and ``seed`` give the same track. Every argument is a config value
    (``configs/motion/default.yaml`` documents each one).
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
        breathing_deg: float,
        breathing_hz: float,
        saccade_rate_per_min: float,
        saccade_amplitude: float,
        saccade_hold_s: tuple[float, float],
        emotion: str,
        emotion_intensity: float,
        emotion_ramp_s: float,
        expressivity: float,
        listening_nod_deg: float,
        listening_nod_probability: float,
        listening_reaction: float,
    ) -> None:
        if fps <= 0:
            raise ConfigValueError(f"motion.fps must be positive, got {fps}")
        if blink_rate_per_min <= 0:
            raise ConfigValueError(f"motion.blink_rate_per_min must be > 0: {blink_rate_per_min}")
        self.fps = float(fps)
        self.seed = int(seed)
        self.min_pause_s, self.silence_db = min_pause_s, silence_db
        self._coart = dict(
            lead_s=lead_s,
            anticipation_s=anticipation_s,
            carryover_s=carryover_s,
            smoothing_s=smoothing_s,
            min_pause_s=min_pause_s,
            pause_ramp_s=pause_ramp_s,
            intensity=articulation,
        )
        self._blink = dict(
            rate_per_min=blink_rate_per_min,
            min_interval_s=blink_min_interval_s,
            max_interval_s=blink_max_interval_s,
        )
        self._blink_shape = dict(close_s=blink_close_s, hold_s=blink_hold_s, open_s=blink_open_s)
        self._head = dict(
            sway_deg=head_sway_deg, speaking_sway_gain=speaking_sway_gain, nod_deg=nod_deg
        )
        self._breath = dict(degrees=breathing_deg, rate_hz=breathing_hz)
        self._saccade = dict(
            rate_per_min=saccade_rate_per_min,
            amplitude=saccade_amplitude,
            hold_s=tuple(saccade_hold_s),
        )
        self.emotion = check_emotion(emotion, emotion_intensity)
        self.emotion_intensity = float(emotion_intensity)
        self.emotion_ramp_s = emotion_ramp_s
        self.expressivity = float(expressivity)
        self._listen = dict(
            nod_deg=listening_nod_deg,
            nod_probability=listening_nod_probability,
            reaction=listening_reaction,
            min_pause_s=0.3,
            silence_db=silence_db,
        )

    def generate(
        self,
        timeline: PhonemeTimeline,
        audio: np.ndarray,
        sample_rate: int,
        n_frames: int,
        *,
        emotions: list[EmotionEvent] | None = None,
        user_audio: np.ndarray | None = None,
        user_sample_rate: int | None = None,
        seed: int | None = None,
    ) -> MotionTrack:
        """Motion for one stretch of time.

        Args:
            timeline: phoneme timings of ``audio`` (seconds); all silence when idle/listening.
            audio: (S,) float32 mono speech of the companion in [-1, 1] (zeros when silent).
            sample_rate: Hz.
            n_frames: frames T of the video (``round(seconds * fps)``).
            emotions: emotion changes; the configured emotion holds before the first one.
            user_audio: (S',) float32 mono speech of the user over the same time span: the
                companion listens (attentive nods and reactions at the user's phrase ends,
                steadier eye contact).
            user_sample_rate: Hz of ``user_audio``.
            seed: this track's seed (None: the configured ``seed``).

        Returns:
            A MotionTrack of T frames at ``fps``.
        """
        rng = np.random.default_rng(self.seed if seed is None else seed)
        quiet = silent_spans(
            audio, sample_rate, min_duration_s=self.min_pause_s, threshold_db=self.silence_db
        )
        weights, mouth = coarticulate(
            timeline, n_frames, self.fps, extra_pauses=quiet, **self._coart
        )
        names = CHANNELS + tuple(f"viseme.{v}" for v in VISEMES)
        track = MotionTrack.zeros(n_frames, self.fps, names)
        for i, name in enumerate(MOUTH_CHANNELS):
            track.set(name, mouth[:, i])
        for i, v in enumerate(VISEMES):
            track.set(f"viseme.{v}", weights[:, i])
        onsets = blink_times(n_frames / self.fps, rng, **self._blink)
        closure = blink_curve(onsets, n_frames, self.fps, **self._blink_shape)
        track.set("blink_l", closure)
        track.set("blink_r", closure)
        activity = speech_activity(audio, sample_rate, n_frames, self.fps)
        head = head_motion(n_frames, self.fps, rng, activity=activity, **self._head)
        head["head_pitch"] = head["head_pitch"] + breathing(n_frames, self.fps, rng, **self._breath)
        for name, series in head.items():
            track.set(name, series)
        listening = None
        if user_audio is not None:
            listening = listening_motion(
                user_audio,
                int(user_sample_rate or sample_rate),
                n_frames,
                self.fps,
                rng,
                **self._listen,
            )
        contact = None
        if user_audio is not None:
            contact = speech_activity(
                user_audio, int(user_sample_rate or sample_rate), n_frames, self.fps
            )
            contact = np.clip(0.3 + contact, 0.0, 1.0)
        gaze_x, gaze_y = saccades(n_frames, self.fps, rng, contact=contact, **self._saccade)
        track.set("gaze_x", gaze_x)
        track.set("gaze_y", gaze_y)
        self._add_expression(track, emotions or [], listening)
        log.debug("motion: %d frames, %d blinks", n_frames, len(onsets))
        return track

    def _add_expression(
        self,
        track: MotionTrack,
        emotions: list[EmotionEvent],
        listening: dict[str, np.ndarray] | None,
    ) -> None:
        base = EmotionEvent(self.emotion, self.emotion_intensity, 0.0)
        events = [base, *emotions]
        offsets = expression_channels(events, len(track), self.fps, ramp_s=self.emotion_ramp_s)
        for extra in (listening or {}).items():
            offsets[extra[0]] = offsets.get(extra[0], 0.0) + extra[1]
        for name, series in offsets.items():
            scale = self.expressivity if name != "jaw_open" else 1.0
            track.set(name, track[name] + scale * series)
