"""MotionGenerator: phoneme timings + audio -> a complete MotionTrack (mouth, eyes, head, face)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from avatar.errors import ConfigValueError
from avatar.motion.behaviour import (
    blink_curve,
    blink_times,
    head_motion,
    silent_spans,
    speech_activity,
)
from avatar.motion.carry import MotionCarry, blend_from
from avatar.motion.coarticulation import coarticulate
from avatar.motion.emotion import (
    EmotionEvent,
    check_emotion,
    emotion_at_end,
    expression_channels,
)
from avatar.motion.gaze import NO_GLANCE, glances
from avatar.motion.listening import breathing, listening_motion
from avatar.motion.track import CHANNELS, MOUTH_CHANNELS, MotionTrack
from avatar.motion.visemes import VISEMES
from avatar.speech.timeline import PhonemeTimeline

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Range:
    """An interval of accepted values for one setting: ``[lo, hi]``, either end open."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below  # False for NaN

    def __str__(self) -> str:
        return (
            f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        )


SETTING_RANGES: dict[str, Range] = {
    "fps": Range(1, 120),
    "seed": Range(0, math.inf, hi_open=True, integer=True),
    "lead_s": Range(-0.2, 0.2),
    "anticipation_s": Range(0, 1, lo_open=True),
    "carryover_s": Range(0, 1, lo_open=True),
    "smoothing_s": Range(0, 0.2),
    "min_pause_s": Range(0, 10),
    "pause_ramp_s": Range(0, 1),
    "silence_db": Range(-120, -1),
    "articulation": Range(0, 3),
    "blink_rate_per_min": Range(0, 60, lo_open=True),
    "blink_min_interval_s": Range(0, 60, lo_open=True),
    "blink_max_interval_s": Range(0, 600, lo_open=True),
    "blink_close_s": Range(0, 1, lo_open=True),
    "blink_hold_s": Range(0, 1),
    "blink_open_s": Range(0, 1, lo_open=True),
    "head_sway_deg": Range(0, 10),
    "speaking_sway_gain": Range(0, 5),
    "nod_deg": Range(0, 15),
    "breathing_deg": Range(0, 5),
    "breathing_hz": Range(0, 2),
    "saccade_rate_per_min": Range(0, 120),
    "saccade_amplitude": Range(0, 1),
    "saccade_hold_s": Range(0, 5, lo_open=True),  # each end of the (shortest, longest) pair
    "emotion_intensity": Range(0, 1),
    "emotion_ramp_s": Range(0, 5),
    "expressivity": Range(0, 3),
    "listening_nod_deg": Range(0, 15),
    "listening_nod_probability": Range(0, 1),
    "listening_reaction": Range(0, 2),
}
"""Accepted values of every numeric ``motion.*`` setting (documented beside each key in
``configs/motion/default.yaml``)."""


def _refuse(key: str, value: object, expected: str) -> ConfigValueError:
    return ConfigValueError(
        f"motion.{key} must be {expected}, got {value!r}: set motion.{key} to such a value "
        "(the ranges are documented in configs/motion/default.yaml)"
    )


def _pair(key: str, value: object) -> list[object]:
    try:
        items = list(value)  # type: ignore[call-overload]
    except TypeError:
        items = []
    if len(items) != 2:
        raise _refuse(key, value, "a (shortest, longest) pair of seconds")
    return items


def _in_range(value: object, rng: Range) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return False
    if rng.integer and not isinstance(value, int | np.integer):
        return False
    return float(value) in rng


def check_motion_settings(settings: Mapping[str, object]) -> None:
    """Check each numeric setting against :data:`SETTING_RANGES`.

    Args:
        settings: ``MotionGenerator`` keyword arguments by name (others are ignored).

    Raises:
        ConfigValueError: naming ``motion.<key>``, the value and the accepted range.

    >>> check_motion_settings({"head_sway_deg": 1.2, "saccade_hold_s": [0.3, 0.9]})
    >>> check_motion_settings({"head_sway_deg": -1.0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    avatar.errors.ConfigValueError: motion.head_sway_deg must be in [0, 10], got -1.0: ...
    """
    for key, rng in SETTING_RANGES.items():
        if key not in settings:
            continue
        value = settings[key]
        if key == "saccade_hold_s":
            pair = _pair(key, value)
            if not all(_in_range(v, rng) for v in pair):
                raise _refuse(key, value, f"a (shortest, longest) pair of seconds, each in {rng}")
            if pair[0] > pair[1]:  # type: ignore[operator]
                raise _refuse(key, value, "ordered as (shortest, longest)")
        elif not _in_range(value, rng):
            raise _refuse(key, value, f"{'an integer ' if rng.integer else ''}in {rng}")
    low, high = settings.get("blink_min_interval_s"), settings.get("blink_max_interval_s")
    if low is not None and high is not None and high < low:  # type: ignore[operator]
        raise _refuse(
            "blink_max_interval_s", high, f"at least motion.blink_min_interval_s ({low!r})"
        )


class MotionGenerator:
    """Builds the per-frame motion of a companion that speaks, listens or idles.

    The track holds every channel in :data:`avatar.motion.track.CHANNELS` plus the viseme
    weights as ``viseme.<name>`` channels (for evals and notebooks). Seeded: the same inputs
    and ``seed`` give the same track. Every argument is a config value
    (``configs/motion/default.yaml`` documents each one and its range).

    Raises:
        ConfigValueError: a setting outside its range (:data:`SETTING_RANGES`) or an unknown
            ``emotion``; the message names ``motion.<key>``, the value and what is accepted.
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
        check_motion_settings(locals())  # every argument, by name
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
        if not isinstance(emotion, str):
            raise _refuse("emotion", emotion, "an emotion name")
        try:
            self.emotion = check_emotion(emotion, emotion_intensity)
        except ConfigValueError as e:
            raise ConfigValueError(f"motion.emotion: {e}") from None
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
        user = None if user_audio is None else (user_audio, int(user_sample_rate or sample_rate))
        track, _ = self._make(timeline, audio, sample_rate, n_frames, emotions, user, seed, None)
        return track

    def continue_from(
        self,
        carry: MotionCarry | None,
        timeline: PhonemeTimeline,
        audio: np.ndarray,
        sample_rate: int,
        n_frames: int,
        *,
        blend_s: float,
        emotions: list[EmotionEvent] | None = None,
        seed: int | None = None,
    ) -> tuple[MotionTrack, MotionCarry]:
        """Motion of the next part of a longer speech, continuing from where the last ended.

        With ``carry`` None this is :meth:`generate` (the first part). Otherwise the mood of
        the carry holds from frame 0 (no ramp in), a blink or glance in progress finishes,
        the next blink keeps its interval, and head pose and expression blend in from the
        previous end over ``blend_s`` (:func:`avatar.motion.carry.blend_from`).

        Args:
            carry: the end of the previous part (None: this is the first).
            timeline, audio, sample_rate, n_frames, emotions, seed: as for :meth:`generate`,
                for this part alone (times from its start).
            blend_s: seconds over which head pose and expression blend in.

        Returns:
            ``(track, carry)``: this part's T frames, and its end for the next part.
        """
        return self._make(
            timeline, audio, sample_rate, n_frames, emotions, None, seed, carry, blend_s
        )

    def _make(
        self,
        timeline: PhonemeTimeline,
        audio: np.ndarray,
        sample_rate: int,
        n_frames: int,
        emotions: list[EmotionEvent] | None,
        user: tuple[np.ndarray, int] | None,
        seed: int | None,
        carry: MotionCarry | None,
        blend_s: float = 0.0,
    ) -> tuple[MotionTrack, MotionCarry]:
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
        after = None if carry is None else carry.blink_onset_s
        onsets = blink_times(n_frames / self.fps, rng, after_s=after, **self._blink)
        shown = onsets if carry is None else np.r_[carry.blink_onset_s, onsets]
        closure = blink_curve(shown, n_frames, self.fps, **self._blink_shape)
        track.set("blink_l", closure)
        track.set("blink_r", closure)
        activity = speech_activity(audio, sample_rate, n_frames, self.fps)
        head = head_motion(n_frames, self.fps, rng, activity=activity, **self._head)
        head["head_pitch"] = head["head_pitch"] + breathing(n_frames, self.fps, rng, **self._breath)
        for name, series in head.items():
            track.set(name, series)
        listening = contact = None
        if user is not None:
            listening = listening_motion(*user, n_frames, self.fps, rng, **self._listen)
            contact = np.clip(0.3 + speech_activity(*user, n_frames, self.fps), 0.0, 1.0)
        held = NO_GLANCE if carry is None else carry.glance
        gaze_x, gaze_y, glance = glances(
            n_frames, self.fps, rng, contact=contact, held=held, **self._saccade
        )
        track.set("gaze_x", gaze_x)
        track.set("gaze_y", gaze_y)
        mood = EmotionEvent(self.emotion, self.emotion_intensity, 0.0)
        if carry is not None:
            mood = EmotionEvent(carry.emotion.emotion, carry.emotion.intensity, 0.0)
        events = [mood, *(emotions or [])]
        self._add_expression(track, events, listening, None if carry is None else mood)
        if carry is not None:
            blend_from(track, carry.tail, int(round(blend_s * self.fps)))
        log.debug("motion: %d frames, %d blinks", n_frames, len(onsets))
        last_blink = float(shown[-1]) if len(shown) else 0.0
        end = MotionCarry.after(
            track, emotion=emotion_at_end(events), blink_onset_s=last_blink, glance=glance
        )
        return track, end

    def _add_expression(
        self,
        track: MotionTrack,
        events: list[EmotionEvent],
        listening: dict[str, np.ndarray] | None,
        held: EmotionEvent | None,
    ) -> None:
        offsets = expression_channels(
            events, len(track), self.fps, ramp_s=self.emotion_ramp_s, held=held
        )
        for extra in (listening or {}).items():
            offsets[extra[0]] = offsets.get(extra[0], 0.0) + extra[1]
        for name, series in offsets.items():
            scale = self.expressivity if name != "jaw_open" else 1.0
            track.set(name, track[name] + scale * series)
