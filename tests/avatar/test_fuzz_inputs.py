"""Generated inputs (hypothesis): text, inline tags and config values either work or fail with
an AvatarError that names the problem; nothing else escapes, nothing crashes.

The number of examples is bounded (``max_examples``) so the file stays a few seconds; the
seed is derandomized, so a failure reproduces.
"""

from __future__ import annotations

import string

import numpy as np
import pytest
from hydra.errors import InstantiationException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar.audio import frame_count
from avatar.config import compose, pipeline_from_config
from avatar.errors import AvatarError, TextInputError
from avatar.motion.emotion import parse_tags

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

EMOTION_WORDS = ["smile", "sad", "happy", "angry", "surprised", "neutral", "joy", "nope", ""]
tags = st.builds(
    lambda name, level: f"[{name}{'' if level is None else f' {level}'}]",
    st.sampled_from(EMOTION_WORDS),
    st.one_of(st.none(), st.floats(-2, 3, allow_nan=False).map(lambda x: round(x, 2))),
)
words = st.text(alphabet=string.ascii_letters + string.digits + ".,!?'-; ", max_size=40)
scripts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=30
)
texts = st.lists(st.one_of(words, tags, scripts), max_size=6).map(" ".join)


@pytest.fixture(scope="module")
def pipeline(render_config_overrides):
    return pipeline_from_config(compose("render", [*render_config_overrides, "renderer.size=64"]))


@FUZZ
@given(text=texts)
def test_tags_parse_or_name_the_bad_tag(text: str) -> None:
    try:
        clean, found = parse_tags(text)
    except TextInputError as exc:
        assert "emotion" in str(exc) or "intensity" in str(exc)
        return
    assert "[" not in clean or not any(f"[{w}]" in clean for w in EMOTION_WORDS if w)
    for index, emotion, level in found:
        assert 0 <= index <= len(clean.split()) and 0.0 <= level <= 1.0
        assert emotion in {"happy", "sad", "angry", "surprised", "neutral"}


@FUZZ
@given(text=texts)
def test_any_text_is_spoken_or_refused_clearly(pipeline, text: str) -> None:
    """Speech and motion for any text: audio whose length the timeline covers, or a
    TextInputError; never another exception."""
    try:
        clean, _ = parse_tags(text)
        speech = pipeline.speak(clean)
    except TextInputError as exc:
        assert str(exc)
        return
    assert speech.duration > 0 and np.isfinite(speech.audio).all()
    assert speech.timeline.duration == pytest.approx(speech.duration, abs=1 / 24000)
    motion = pipeline.motion_for(speech)
    assert len(motion) == frame_count(speech.duration, motion.fps)
    assert np.isfinite(motion.values).all()


NUMERIC_KEYS = [
    "encoder.crf",
    "encoder.audio_bitrate",
    "encoder.threads",
    "renderer.size",
    "memory.identities",
    "render_threads",
    "render_processes",
    "render_processes_min_frames",
    "long_text.max_text_chars",
    "long_text.segment_chars",
    "long_text.first_segment_chars",
    "long_text.blend_s",
    "identity.min_eye_distance_px",
    "streaming.behaviour_seconds",
    "streaming.hold_s",
    "motion.fps",
    "motion.head_sway_deg",
    "motion.expressivity",
    "motion.blink_rate_per_min",
    "motion.emotion_intensity",
    "motion.nod_deg",
    "motion.breathing_hz",
    "motion.listening_nod_probability",
]
values = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
)


@FUZZ
@given(key=st.sampled_from(NUMERIC_KEYS), value=values)
def test_config_values_are_accepted_or_refused_by_name(render_config_overrides, key, value):
    """Any numeric value of a setting builds a pipeline or fails naming that setting."""
    text = repr(value) if not isinstance(value, float) or np.isfinite(value) else str(value)
    try:
        cfg = compose("render", [*render_config_overrides, f"{key}={text}"])
        pipeline_from_config(cfg)
    except (AvatarError, InstantiationException) as exc:
        cause = exc.__cause__ if isinstance(exc, InstantiationException) else exc
        assert isinstance(cause, AvatarError), f"{key}={text}: {type(cause).__name__}: {cause}"
        assert key.split(".")[-1] in str(cause), f"{key}={text}: {cause}"
