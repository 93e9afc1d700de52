"""Emotion: named expressions with intensity, inline text tags, and their expression channels.

An emotion is a target for the expression channels (brows, smile, cheeks, eye squint) plus a
small bias on head pitch. Emotions are set by config (the companion's default mood), by the
API, or inline in the text with tags such as ``[smile]``, ``[sad 0.5]`` or ``[neutral]``; a
tag takes effect from the word that follows it, and the face blends to it over ``ramp_s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from avatar.errors import ConfigValueError, TextInputError
from avatar.speech.timeline import PhonemeTimeline

EXPRESSION_TARGETS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"smile": 0.75, "cheek_raise": 0.6, "eye_squint": 0.3, "brow_raise": 0.1},
    "sad": {"smile": -0.7, "brow_raise": -0.4, "eye_squint": 0.15, "head_pitch": 2.5},
    "surprised": {"brow_raise": 1.0, "eye_squint": -0.5, "jaw_open": 0.12, "head_pitch": -1.5},
    "angry": {"brow_raise": -0.8, "eye_squint": 0.45, "smile": -0.2},
}
"""Channel offsets at intensity 1 (``head_pitch`` in degrees; others in channel units)."""

TAG_ALIASES = {
    "smile": "happy",
    "joy": "happy",
    "frown": "sad",
    "surprise": "surprised",
    "calm": "neutral",
}
_TAG = re.compile(r"\[\s*([A-Za-z]+)(?:\s+([0-9]*\.?[0-9]+))?\s*\]")


@dataclass(frozen=True)
class EmotionEvent:
    """``emotion`` at ``intensity`` in [0, 1] from ``time`` seconds on."""

    emotion: str
    intensity: float
    time: float


def check_emotion(name: str, intensity: float) -> str:
    """The canonical emotion name; raises ValueError for an unknown name or intensity."""
    canon = TAG_ALIASES.get(name.lower(), name.lower())
    if canon not in EXPRESSION_TARGETS:
        known = ", ".join(sorted({*EXPRESSION_TARGETS, *TAG_ALIASES}))
        raise ConfigValueError(f"unknown emotion {name!r}; known: {known}")
    if not 0.0 <= intensity <= 1.0:
        raise ConfigValueError(f"emotion intensity must be in [0, 1], got {intensity}")
    return canon


def parse_tags(text: str) -> tuple[str, list[tuple[int, str, float]]]:
    """Strip emotion tags from ``text``.

    Returns:
        ``(clean_text, tags)`` where each tag is ``(word_index, emotion, intensity)``: the
        index of the word (in ``clean_text.split()``) from which it applies.

    Raises:
        TextInputError: a tag names an unknown emotion or an intensity outside [0, 1].

    >>> parse_tags("Hi! [smile] Good to see you. [sad 0.4] But I must go.")
    ('Hi! Good to see you. But I must go.', [(1, 'happy', 1.0), (5, 'sad', 0.4)])
    """
    tags: list[tuple[int, str, float]] = []
    pieces: list[str] = []
    cursor = 0
    words_before = 0
    for m in _TAG.finditer(text):
        pieces.append(text[cursor : m.start()])
        intensity = float(m.group(2)) if m.group(2) else 1.0
        try:
            emotion = check_emotion(m.group(1), intensity)
        except ValueError as e:
            raise TextInputError(f"emotion tag {m.group(0)!r}: {e}") from None
        words_before += len(pieces[-1].split())  # pieces are joined with spaces: words add up
        tags.append((words_before, emotion, intensity))
        cursor = m.end()
    pieces.append(text[cursor:])
    clean = " ".join(" ".join(pieces).split())
    return clean, tags


def tag_events(
    tags: list[tuple[int, str, float]], timeline: PhonemeTimeline, n_words: int
) -> list[EmotionEvent]:
    """Place word-indexed tags in time using the timeline's word spans.

    When the TTS's words do not line up one to one with the text's words (numbers, for
    example, are read as several), the word index is mapped proportionally.
    """
    events = []
    words = timeline.words
    for index, emotion, intensity in tags:
        if not words:
            t = timeline.duration * index / max(n_words, 1)
        else:
            k = index if len(words) == n_words else round(index * len(words) / max(n_words, 1))
            t = words[k].start if k < len(words) else timeline.duration
        events.append(EmotionEvent(emotion, intensity, max(t - 0.1, 0.0)))
    return events


def expression_channels(
    events: list[EmotionEvent],
    n_frames: int,
    fps: float,
    *,
    ramp_s: float,
    held: EmotionEvent | None = None,
) -> dict[str, np.ndarray]:
    """(T,) offsets per channel for a sequence of emotion events, blended over ``ramp_s``.

    Args:
        events: emotion changes, times in seconds from frame 0.
        n_frames: T.
        fps: frames per second.
        ramp_s: blend time from one emotion to the next, seconds.
        held: the emotion already on the face before frame 0 (a track that continues
            another); the first event blends from it. None: from neutral.

    >>> ch = expression_channels([EmotionEvent("happy", 1.0, 0.0)], 10, 25.0, ramp_s=0.2)
    >>> round(float(ch["smile"][-1]), 2)
    0.75
    """
    names = sorted({k for t in EXPRESSION_TARGETS.values() for k in t})
    out = {k: np.zeros(n_frames, np.float64) for k in names}
    t = np.arange(n_frames) / fps
    current = {k: 0.0 for k in names}
    if held is not None:
        current = {k: held.intensity * EXPRESSION_TARGETS[held.emotion].get(k, 0.0) for k in names}
    ordered = sorted(events, key=lambda e: e.time)
    # each event holds from its time until the next one takes over: frames [lo, hi) only
    starts = np.searchsorted(t, [e.time for e in ordered], side="left").tolist()
    for i, event in enumerate(ordered):
        lo, hi = starts[i], starts[i + 1] if i + 1 < len(ordered) else n_frames
        target = {k: event.intensity * EXPRESSION_TARGETS[event.emotion].get(k, 0.0) for k in names}
        if hi > lo:
            blend = np.clip((t[lo:hi] - event.time) / max(ramp_s, 1e-6), 0.0, 1.0)
            blend = blend * blend * (3.0 - 2.0 * blend)
            for k in names:
                out[k][lo:hi] = current[k] + blend * (target[k] - current[k])
        current = target
    return {k: v.astype(np.float32) for k, v in out.items()}


def emotion_at_end(events: list[EmotionEvent]) -> EmotionEvent:
    """The emotion in effect after the last of ``events`` (the latest; of equal times, the
    last given, as :func:`expression_channels` orders them).

    >>> emotion_at_end([EmotionEvent("sad", 0.5, 1.0), EmotionEvent("happy", 1.0, 0.0)])
    EmotionEvent(emotion='sad', intensity=0.5, time=1.0)
    """
    return sorted(events, key=lambda e: e.time)[-1]
