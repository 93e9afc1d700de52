"""Motion stage: coarticulation, closed mouth in pauses, blinks, head motion, determinism."""

import numpy as np
import pytest

from avatar.config import compose
from avatar.motion.behaviour import blink_times
from avatar.motion.generate import MotionGenerator
from avatar.speech.timeline import PhonemeTimeline

FPS = 25


@pytest.fixture(scope="module")
def generator() -> MotionGenerator:
    from hydra.utils import instantiate

    return instantiate(compose("render").motion)


def _utterance():
    """'_ hello _(0.5 s)_ bob _' with a voiced, noisy audio track that is silent in pauses."""
    phones = ["_", "h", "ə", "l", "O", "_", "b", "ɑ", "b", "_"]
    durs = [0.3, 0.06, 0.05, 0.07, 0.2, 0.5, 0.08, 0.15, 0.08, 0.4]
    timeline = PhonemeTimeline.from_durations(phones, durs)
    sr = 16000
    audio = np.zeros(int(round(timeline.duration * sr)), np.float32)
    rng = np.random.default_rng(0)
    for p in timeline.phones:
        if p.phoneme != "_":
            a, b = int(p.start * sr), int(p.end * sr)
            audio[a:b] = 0.2 * rng.standard_normal(b - a)
    return timeline, audio, sr


def test_mouth_closed_in_pauses_and_open_in_speech(generator):
    timeline, audio, sr = _utterance()
    n = round(timeline.duration * FPS)
    track = generator.generate(timeline, audio, sr, n)
    opening = track["jaw_open"] + track["lip_open"]
    for start, end in timeline.pauses(min_duration=0.3):
        inner = slice(int(np.ceil((start + 0.1) * FPS)), int((end - 0.1) * FPS))
        assert np.all(opening[inner] < 1e-3), f"mouth open in pause {start:.2f}-{end:.2f}"
    vowel = next(p for p in timeline.phones if p.phoneme == "ɑ")
    k = int((vowel.start + vowel.end) / 2 * FPS)
    assert opening[k] > 0.4
    # the bilabials around the vowel press the lips
    b = next(p for p in timeline.phones if p.phoneme == "b")
    assert track["lip_press"][int((b.start + b.end) / 2 * FPS)] > 0.4


def test_no_snaps_and_lips_lead_the_sound(generator):
    timeline, audio, sr = _utterance()
    track = generator.generate(timeline, audio, sr, round(timeline.duration * FPS))
    jaw = track["jaw_open"]
    assert np.abs(np.diff(jaw)).max() < 0.35, "mouth channels must not jump between frames"
    first_sound = timeline.speech_spans[0][0]
    onset = int(np.argmax(jaw > 0.05))
    assert onset / FPS <= first_sound + 1e-9, "the mouth starts moving no later than the sound"


def test_deterministic_for_a_seed_and_seed_matters(generator):
    timeline, audio, sr = _utterance()
    n = round(timeline.duration * FPS)
    a = generator.generate(timeline, audio, sr, n)
    b = generator.generate(timeline, audio, sr, n)
    np.testing.assert_array_equal(a.values, b.values)
    other = instantiate_with(seed=7).generate(timeline, audio, sr, n)
    assert not np.array_equal(a["head_yaw"], other["head_yaw"])


def instantiate_with(**kw) -> MotionGenerator:
    from hydra.utils import instantiate

    return instantiate(compose("render", [f"motion.{k}={v}" for k, v in kw.items()]).motion)


@pytest.mark.parametrize("rate", [10, 15, 20])
def test_blink_rate_in_range(rate):
    rng = np.random.default_rng(1)
    times = blink_times(600.0, rng, rate_per_min=rate, min_interval_s=1.5, max_interval_s=9.0)
    per_min = len(times) / 10.0
    assert 0.75 * rate <= per_min <= 1.25 * rate
    assert np.diff(times).max() <= 9.0


def test_blinks_close_the_eyes_at_least_every_six_seconds(generator):
    n = 30 * FPS
    timeline = PhonemeTimeline.from_durations(["_"], [30.0])
    track = generator.generate(timeline, np.zeros(30 * 16000, np.float32), 16000, n)
    closed = track["blink_l"] > 0.8
    peaks = np.flatnonzero(closed[1:] & ~closed[:-1])
    assert len(peaks) >= 5
    assert np.all(np.diff(np.r_[0, peaks, n]) <= 6 * FPS)
    assert np.array_equal(track["blink_l"], track["blink_r"])


def test_head_motion_is_small_and_smooth(generator):
    n = 20 * FPS
    timeline = PhonemeTimeline.from_durations(["_"], [20.0])
    track = generator.generate(timeline, np.zeros(20 * 16000, np.float32), 16000, n)
    for ch in ("head_yaw", "head_pitch", "head_roll"):
        assert np.abs(track[ch]).max() < 6.0
        assert np.abs(np.diff(track[ch])).max() < 0.5
    away = (track["gaze_x"] != 0) | (track["gaze_y"] != 0)
    assert away.mean() < 0.3, "mostly eye contact"
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, away.astype(int), 0])))[::2]
    assert runs.max() <= 0.9 * FPS + 1, "every glance returns to the camera within a second"
