"""Live listening: causal nods, reactions and steadier eye contact from pushed mic audio."""

from __future__ import annotations

import math

import numpy as np
import pytest

from avatar.errors import AudioFormatError, MotionTrackError
from avatar.motion.live_listening import LiveListener
from avatar.motion.track import CHANNELS

FPS = 25.0
SR = 16000
COL = {name: CHANNELS.index(name) for name in CHANNELS}


def make(**changes) -> LiveListener:
    kwargs = dict(
        fps=FPS,
        nod_deg=3.0,
        nod_probability=1.0,
        reaction=0.3,
        min_pause_s=0.3,
        silence_db=-35.0,
        reference_dbfs=-20.0,
        contact=0.35,
        seed=0,
    )
    return LiveListener(**{**kwargs, **changes})


def tone(seconds: float, sr: int, dbfs: float = -20.0) -> np.ndarray:
    """A 200 Hz tone whose RMS is ``dbfs``."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (math.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


def speech(sr: int, *, start: float = 0.5, voiced: float = 1.5, total: float = 5.0) -> np.ndarray:
    """Silence, a voiced burst from ``start`` for ``voiced`` seconds, silence up to ``total``."""
    audio = np.zeros(int(round(total * sr)), np.float32)
    burst = tone(voiced, sr)
    audio[int(round(start * sr)) : int(round(start * sr)) + len(burst)] = burst
    return audio


def base_rows(n: int) -> np.ndarray:
    """(n, C) smooth, in-range motion: sinusoids on gaze and head, a constant mood."""
    t = np.arange(n) / FPS
    rows = np.zeros((n, len(CHANNELS)), np.float32)
    rows[:, COL["gaze_x"]] = 0.3 * np.sin(2 * np.pi * 0.7 * t)
    rows[:, COL["gaze_y"]] = 0.1 * np.sin(2 * np.pi * 0.5 * t + 1.0)
    rows[:, COL["head_yaw"]] = 2.0 * np.sin(2 * np.pi * 0.4 * t + 0.3)
    rows[:, COL["head_pitch"]] = 0.5 * np.sin(2 * np.pi * 0.3 * t)
    rows[:, COL["brow_raise"]] = 0.1
    rows[:, COL["smile"]] = 0.2
    return rows


def run(
    listener: LiveListener,
    audio: np.ndarray,
    sr: int,
    rows: np.ndarray,
    *,
    chunk_s: float = 0.01,
    batch: int = 1,
    speaking=lambda k: False,
) -> tuple[np.ndarray, list[bool]]:
    """Push ``audio`` in chunks so that a frame's audio is all pushed before ``apply`` handles
    it; returns the output rows and ``user_speaking`` after each batch."""
    chunk = max(int(round(chunk_s * sr)), 1)
    pushed, out, talking = 0, [], []
    for k in range(0, len(rows), batch):
        need = math.ceil(min(k + batch, len(rows)) * sr / FPS)
        while pushed < min(need, len(audio)):
            listener.push(audio[pushed : pushed + chunk], sr)
            pushed += chunk
        out.append(listener.apply(rows[k : k + batch], speaking(k)))
        talking.extend([listener.user_speaking] * len(out[-1]))
    return np.concatenate(out), talking


def onset(diff: np.ndarray) -> int:
    """Index of the first nonzero value."""
    return int(np.flatnonzero(np.abs(diff) > 1e-6)[0])


def test_silence_leaves_rows_unchanged():
    rows = base_rows(150)
    rng = np.random.default_rng(0)
    hiss = (1e-4 * rng.standard_normal(6 * SR)).astype(np.float32)  # -80 dBFS
    out, talking = run(make(), hiss, SR, rows, chunk_s=0.02)
    assert out.dtype == np.float32 and out.shape == rows.shape
    np.testing.assert_array_equal(out, rows)
    assert not any(talking)
    # no audio at all: missing audio is silence, never waited for
    np.testing.assert_array_equal(make().apply(rows, False), rows)


def test_nod_and_reaction_after_phrase_end():
    rows = base_rows(150)
    listener = make(nod_deg=3.0, reaction=0.3)
    out, talking = run(listener, speech(SR), SR, rows)
    end_frame = round((0.5 + 1.5 + 0.3) * FPS)  # voice stops at 2.0 s, + min_pause_s
    assert talking.index(True) <= round(0.5 * FPS) + 4  # a few voiced frames start speech
    assert abs(talking.index(False, talking.index(True)) - end_frame) <= 1
    pitch = out[:, COL["head_pitch"]] - rows[:, COL["head_pitch"]]
    brow = out[:, COL["brow_raise"]] - rows[:, COL["brow_raise"]]
    smile = out[:, COL["smile"]] - rows[:, COL["smile"]]
    assert abs(onset(pitch) - end_frame) <= 2
    assert pitch.max() == pytest.approx(3.0, rel=0.05) and pitch.min() >= -1e-6
    assert abs(int(np.argmax(pitch)) - (end_frame + 0.25 * FPS)) <= 2  # the nod's middle
    assert np.all(np.abs(pitch[round(end_frame + 0.6 * FPS) :]) < 1e-6)  # over in ~0.5 s
    assert brow.max() == pytest.approx(0.3, rel=0.05) and abs(onset(brow) - end_frame) <= 2
    assert smile.max() == pytest.approx(0.15, rel=0.05)
    assert np.all(np.abs(brow[round(end_frame + 0.9 * FPS) :]) < 1e-6)  # over in ~0.8 s
    # smooth: eases in (first frame a small share) and never steps more than a raised cosine
    assert pitch[onset(pitch)] < 0.1 * 3.0
    assert np.max(np.abs(np.diff(pitch))) <= 3.0 * math.pi / (0.5 * FPS) + 1e-3


def test_reaction_clipped_to_channel_ranges():
    rows = base_rows(150)
    rows[:, COL["brow_raise"]] = 0.95
    rows[:, COL["smile"]] = 0.95
    out, _ = run(make(reaction=1.0), speech(SR), SR, rows)
    assert out[:, COL["brow_raise"]].max() == 1.0 and out[:, COL["smile"]].max() == 1.0


def test_no_nod_with_probability_zero():
    rows = base_rows(150)
    out, talking = run(make(nod_probability=0.0), speech(SR), SR, rows)
    assert any(talking)
    for name in ("head_pitch", "brow_raise", "smile"):
        np.testing.assert_array_equal(out[:, COL[name]], rows[:, COL[name]])


def test_nods_drawn_from_the_seed():
    phrases = np.concatenate([speech(SR, start=0.2, voiced=0.6, total=1.6)] * 12)
    rows = base_rows(round(len(phrases) / SR * FPS))
    a, _ = run(make(nod_probability=0.5, seed=3), phrases, SR, rows)
    b, _ = run(make(nod_probability=0.5, seed=3), phrases, SR, rows)
    np.testing.assert_array_equal(a, b)
    pitch = a[:, COL["head_pitch"]] - rows[:, COL["head_pitch"]]
    nods = int(np.sum(np.diff((pitch > 1e-6).astype(int)) == 1))
    assert 1 <= nods <= 11  # some phrase ends get a nod, some not


def test_steadier_eye_contact_while_user_speaks():
    rows = base_rows(250)  # 10 s
    out, _ = run(make(contact=0.35), speech(SR, start=1.0, voiced=3.0, total=10.0), SR, rows)
    during = slice(round(1.6 * FPS), round(4.0 * FPS))  # after onset and ramp-in
    after = slice(round((4.0 + 0.3 + 1.0 + 0.5) * FPS), None)  # phrase end, hold, ramp-out
    for name in ("gaze_x", "gaze_y", "head_yaw"):
        x, y = rows[:, COL[name]], out[:, COL[name]]
        assert np.std(y[during]) / np.std(x[during]) == pytest.approx(0.35, abs=0.01)
        np.testing.assert_array_equal(y[: round(1.0 * FPS)], x[: round(1.0 * FPS)])
        np.testing.assert_array_equal(y[after], x[after])
        # eased in and out: no step beyond the motion's own plus a small ramp share
        bound = np.max(np.abs(np.diff(x))) + 0.15 * np.max(np.abs(x))
        assert np.max(np.abs(np.diff(y))) <= bound
    # still steadier about a second after the phrase end
    hold = round((4.0 + 0.3 + 0.8) * FPS)
    assert abs(out[hold, COL["head_yaw"]]) <= 0.4 * abs(rows[hold, COL["head_yaw"]]) + 1e-6


def test_companion_speaking_returns_rows_unchanged_and_keeps_time():
    rows = base_rows(150)
    out, talking = run(make(), speech(SR), SR, rows, speaking=lambda k: True)
    np.testing.assert_array_equal(out, rows)
    _, reference = run(make(), speech(SR), SR, rows)
    assert talking == reference  # the user's audio and the clock advanced all the same
    # a nod in progress is dropped when the companion starts talking, and not resumed
    end_frame = round(2.3 * FPS)
    talks = lambda k: end_frame + 3 <= k < end_frame + 5  # noqa: E731
    cut, _ = run(make(), speech(SR), SR, rows, speaking=talks)
    pitch = cut[:, COL["head_pitch"]] - rows[:, COL["head_pitch"]]
    assert np.any(pitch[end_frame : end_frame + 3] > 1e-6)
    assert np.all(np.abs(pitch[end_frame + 3 :]) < 1e-6)


def test_causal_and_independent_of_chunking():
    rows = base_rows(150)
    audio = speech(SR)
    fine, _ = run(make(), audio, SR, rows, chunk_s=0.01)
    coarse, _ = run(make(), audio, SR, rows, chunk_s=0.037)
    batched, _ = run(make(), audio, SR, rows, chunk_s=0.02, batch=7)
    np.testing.assert_array_equal(fine, coarse)
    np.testing.assert_array_equal(fine, batched)
    # a later change in the audio cannot reach back to earlier frames
    changed = audio.copy()
    changed[int(3.0 * SR) :] = tone(2.0, SR)
    later, _ = run(make(), changed, SR, rows, chunk_s=0.01)
    k = int(3.0 * FPS)
    np.testing.assert_array_equal(later[:k], fine[:k])
    assert not np.array_equal(later[k:], fine[k:])


@pytest.mark.parametrize("sr", [48000, 44100, 8000])
def test_same_phrase_end_at_any_rate(sr: int):
    rows = base_rows(150)
    ref, ref_talking = run(make(), speech(SR), SR, rows)
    out, talking = run(make(), speech(sr), sr, rows, chunk_s=0.02)
    assert talking == ref_talking
    col = COL["head_pitch"]
    assert onset(out[:, col] - rows[:, col]) == onset(ref[:, col] - rows[:, col])


def test_reset_starts_over():
    rows = base_rows(150)
    listener = make(nod_probability=0.5, seed=1)
    first, _ = run(listener, speech(SR, voiced=1.5, total=3.0), SR, rows[:75])
    listener.push(tone(0.5, SR), SR)  # pending audio and a phrase in progress are forgotten
    listener.apply(rows[:12], False)
    assert listener.user_speaking
    listener.reset()
    assert not listener.user_speaking
    again, _ = run(listener, speech(SR, voiced=1.5, total=3.0), SR, rows[:75])
    np.testing.assert_array_equal(again, first)


def test_from_motion_uses_the_listening_settings():
    from hydra.utils import instantiate

    from avatar.config import compose

    motion = instantiate(compose("render").motion)
    listener = LiveListener.from_motion(motion, reference_dbfs=-20.0)
    assert listener.fps == motion.fps == 25.0
    assert listener.nod_deg == pytest.approx(2.5 * motion.expressivity)
    assert listener.reaction == pytest.approx(0.25 * motion.expressivity)
    assert listener.nod_probability == pytest.approx(0.7)
    assert listener.threshold_db == pytest.approx(-20.0 + motion.silence_db)
    assert listener.seed == motion.seed
    loud = instantiate(compose("render", ["motion.expressivity=2.0"]).motion)
    louder = LiveListener.from_motion(loud, reference_dbfs=-20.0, seed=7)
    assert louder.nod_deg == pytest.approx(5.0) and louder.seed == 7
    out, _ = run(louder, speech(SR), SR, base_rows(150))
    assert out.shape == (150, len(CHANNELS)) and np.all(np.isfinite(out))


def test_bad_inputs_are_refused():
    listener = make()
    with pytest.raises(MotionTrackError):
        listener.apply(np.zeros((3, 5), np.float32), False)
    with pytest.raises(AudioFormatError):
        listener.push(np.zeros((160, 2), np.float32), SR)
    with pytest.raises(AudioFormatError):
        listener.push(np.zeros(160, np.float32), 0)
