"""Emotions (config, API, inline tags), listening and idle behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from hydra.utils import instantiate

from avatar.audio import Audio
from avatar.config import compose, pipeline_from_config
from avatar.errors import TextInputError
from avatar.motion.emotion import EXPRESSION_TARGETS, EmotionEvent, parse_tags
from avatar.speech.tts import silence_speech

FPS = 25


@pytest.fixture(scope="module")
def pipeline(render_config_overrides):
    return pipeline_from_config(compose("render", render_config_overrides))


@pytest.fixture(scope="module")
def user_speech(pipeline) -> Audio:
    speech = pipeline.speak("Could you tell me the time? I have a meeting soon.")
    return Audio(speech.audio, speech.sample_rate)


def test_tags_parse_and_bad_tags_fail():
    clean, tags = parse_tags("[happy 0.8] Hello. [neutral] Bye.")
    assert clean == "Hello. Bye." and tags == [(0, "happy", 0.8), (1, "neutral", 1.0)]
    with pytest.raises(TextInputError, match="unknown emotion 'grumpy'"):
        parse_tags("Hi [grumpy] there")
    with pytest.raises(TextInputError, match=r"\[0, 1\]"):
        parse_tags("Hi [sad 3] there")


def test_tag_changes_expression_channels_and_the_face(pipeline, tmp_path):
    text = "Good morning. [smile] I am so glad to see you again."
    plain = pipeline.render_text(
        "default", "Good morning. I am so glad to see you again.", tmp_path / "plain.mp4"
    )
    tagged = pipeline.render_text("default", text, tmp_path / "tagged.mp4")
    late = slice(len(tagged.motion) - 15, len(tagged.motion))
    assert tagged.motion["smile"][late].mean() > plain.motion["smile"][late].mean() + 0.3
    assert tagged.motion["smile"][:5].max() < 0.05, "the tag applies from its word on"
    from avatar.media import read_mp4

    a, b = read_mp4(plain.path).frames, read_mp4(tagged.path).frames
    n = min(len(a), len(b))
    diff = np.abs(a[n - 5 : n].astype(int) - b[n - 5 : n].astype(int)).mean()
    assert diff > 1.0, "the smile shows in the rendered frames"


@pytest.mark.parametrize("emotion", sorted(EXPRESSION_TARGETS))
def test_every_emotion_by_config(emotion):
    gen = instantiate(
        compose("render", [f"motion.emotion={emotion}", "motion.emotion_intensity=1.0"]).motion
    )
    speech = silence_speech(1.0)
    track = gen.generate(speech.timeline, speech.audio, speech.sample_rate, FPS)
    for channel, value in EXPRESSION_TARGETS[emotion].items():
        if channel != "head_pitch":
            assert track[channel][-1] == pytest.approx(value, abs=0.05)


def test_emotion_by_api_and_unknown_emotion(pipeline, tmp_path):
    result = pipeline.render_text(
        "default", "Oh!", tmp_path / "s.mp4", emotion="surprised", emotion_intensity=0.8
    )
    assert result.motion["brow_raise"][-1] > 0.6
    with pytest.raises(ValueError, match="unknown emotion"):
        pipeline.render_text("default", "Oh!", tmp_path / "x.mp4", emotion="smug")


def test_idle_and_listening_keep_the_mouth_closed(pipeline, user_speech, tmp_path):
    result = pipeline.render_listening("default", user_speech, tmp_path / "listen.mp4")
    track = result.motion
    assert np.all(track["jaw_open"] < 1e-3) and np.all(track["lip_open"] < 1e-3)
    from avatar.identity.search import detect_faces
    from avatar.media import read_mp4

    frames = read_mp4(result.path).frames
    for frame in frames[::10]:
        lm = detect_faces(frame, max_faces=1)[0].landmarks
        gap = np.linalg.norm(lm[13, :2] - lm[14, :2]) / np.linalg.norm(lm[33, :2] - lm[263, :2])
        assert gap < 0.06
    # attentive nods at the end of the user's phrases: pitch dips below the idle sway
    idle = pipeline.motion_for(silence_speech(user_speech.duration, user_speech.sample_rate))
    assert (track["head_pitch"] - idle["head_pitch"]).max() > 1.0


def test_listening_is_steadier_eye_contact(pipeline, user_speech):
    speech = silence_speech(30.0)
    long_user = Audio(
        np.tile(user_speech.mono, 8)[: 30 * user_speech.sample_rate], user_speech.sample_rate
    )
    idle = pipeline.motion_for(speech)
    listening = pipeline.motion_for(speech, listen_to=long_user)
    away = lambda t: np.mean((t["gaze_x"] != 0) | (t["gaze_y"] != 0))  # noqa: E731
    assert away(listening) < away(idle)


def test_expression_event_blend_is_smooth():
    from avatar.motion.emotion import expression_channels

    ch = expression_channels(
        [EmotionEvent("neutral", 1, 0), EmotionEvent("happy", 1, 0.5)], 50, FPS, ramp_s=0.4
    )
    assert np.abs(np.diff(ch["smile"])).max() < 0.15
