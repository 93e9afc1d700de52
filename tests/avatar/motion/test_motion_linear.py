"""Motion in linear time: coarticulation evaluated over each segment's window gives the float32
output of the whole-grid formula (kept here as the reference), each segment or pause touches only
its own neighbourhood of the grid, and blinks, emotion blends and loudness evaluated span by
span equal their whole-track formulas.

The equality is exact: with the window cut at 100 decay time constants instead of
``NEGLIGIBLE_DECAYS`` (170), the 60 s and long-pause cases already differ in float32 (by
subnormal values, around 1e-44).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from avatar.config import compose
from avatar.motion.behaviour import blink_curve, silent_spans, speech_activity
from avatar.motion.coarticulation import (
    GRID_HZ,
    NEGLIGIBLE_DECAYS,
    VisemeSegment,
    coarticulate,
    dominance_grid,
    pause_gate,
    segment_windows,
    viseme_segments,
)
from avatar.motion.emotion import EXPRESSION_TARGETS, EmotionEvent, expression_channels
from avatar.motion.track import MOUTH_CHANNELS
from avatar.motion.visemes import VISEME_DOMINANCE, VISEMES, viseme_target_matrix
from avatar.speech.timeline import Phone, PhonemeTimeline

FPS = 25.0
KEYS = ("lead_s", "anticipation_s", "carryover_s", "smoothing_s", "min_pause_s", "pause_ramp_s")
CONSONANTS = list("pbmfvθðtdnlkɡŋhʃʒszɹwj")
VOWELS = list("ɑæʌɛəɪiuʊɔoAIOW")


@pytest.fixture(scope="module")
def settings() -> dict[str, float]:
    motion = compose("render").motion
    return {k: float(motion[k]) for k in KEYS} | {"intensity": float(motion.articulation)}


def reference_coarticulate(
    timeline: PhonemeTimeline,
    n_frames: int,
    fps: float,
    *,
    lead_s: float,
    anticipation_s: float,
    carryover_s: float,
    smoothing_s: float,
    min_pause_s: float,
    pause_ramp_s: float,
    intensity: float = 1.0,
    extra_pauses: list[tuple[float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The whole-grid formula: every segment's dominance and every pause over every grid
    point (quadratic time), as ``coarticulate`` computed it before the windows."""
    duration = n_frames / fps
    t = np.arange(0.0, duration + 1.0 / fps, 1.0 / GRID_HZ) + lead_s
    segments = viseme_segments(timeline) or [VisemeSegment("sil", 0.0, duration)]
    dominance = np.zeros((len(t), len(VISEMES)), np.float64)
    for seg in segments:
        before = np.clip(seg.start - t, 0.0, None)
        after = np.clip(t - seg.end, 0.0, None)
        decay = np.exp(-before / anticipation_s - after / carryover_s)
        dominance[:, VISEMES.index(seg.viseme)] += VISEME_DOMINANCE[seg.viseme] * decay
    tail = np.clip(t - timeline.duration, 0.0, None) + np.clip(-t, 0.0, None)
    dominance[:, VISEMES.index("sil")] += 1e-6 + 10.0 * (tail > 0)
    weights = dominance / dominance.sum(axis=1, keepdims=True)
    if smoothing_s > 0:
        weights = gaussian_filter1d(weights, smoothing_s * GRID_HZ, axis=0, mode="nearest")
    gate = np.ones_like(t)
    for start, end in timeline.pauses(min_duration=min_pause_s) + list(extra_pauses or []):
        ramp = min(pause_ramp_s, 0.5 * (end - start))
        inside = np.minimum(t - start, end - t)
        g = np.clip(1.0 - inside / max(ramp, 1e-6), 0.0, 1.0)
        g = g * g * (3.0 - 2.0 * g)
        gate = np.where((t >= start) & (t <= end), np.minimum(gate, g), gate)
    gate = np.minimum(gate, (t <= timeline.duration) & (t >= 0))
    sil = VISEMES.index("sil")
    weights = weights * gate[:, None]
    weights[:, sil] += 1.0 - gate
    mouth = weights @ viseme_target_matrix().astype(np.float64)
    open_cols = [MOUTH_CHANNELS.index(c) for c in ("jaw_open", "lip_open")]
    mouth[:, open_cols] *= intensity
    return _frame_average(weights, fps, n_frames), _frame_average(mouth, fps, n_frames)


def _frame_average(x: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    edges = np.round(np.arange(n_frames + 1) * GRID_HZ / fps).astype(int)
    edges = np.clip(edges, 0, len(x))
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)[:, None]
    return ((csum[edges[1:]] - csum[edges[:-1]]) / counts).astype(np.float32)


def generated(seconds: float, seed: int, *, long_pauses: bool = False) -> PhonemeTimeline:
    """Words of 2-6 phones with short pauses between phrases (and, with ``long_pauses``,
    silences of 5-40 s), cut at ``seconds``."""
    rng = np.random.default_rng(seed)
    phones, durations = ["_"], [float(rng.uniform(0.1, 0.5))]
    while sum(durations) < seconds:
        for _ in range(int(rng.integers(2, 7))):
            vowel = rng.random() < 0.4
            phones.append(str(rng.choice(VOWELS if vowel else CONSONANTS)))
            durations.append(float(rng.uniform(0.07, 0.2) if vowel else rng.uniform(0.03, 0.09)))
        if rng.random() < 0.3:
            phones.append("_")
            long = long_pauses and rng.random() < 0.2
            durations.append(float(rng.uniform(5, 40) if long else rng.uniform(0.05, 0.8)))
    tl = PhonemeTimeline.from_durations(phones, durations)
    kept = [p for p in tl.phones if p.start < seconds]
    return PhonemeTimeline(
        [Phone(p.phoneme, p.start, min(p.end, seconds)) for p in kept], [], seconds
    )


def _short() -> PhonemeTimeline:
    phones = ["_", "h", "ə", "l", "O", "_", "b", "ɑ", "b", "_"]
    return PhonemeTimeline.from_durations(
        phones, [0.3, 0.06, 0.05, 0.07, 0.2, 0.5, 0.08, 0.15, 0.08, 0.4]
    )


def _rare_visemes_far_apart() -> PhonemeTimeline:
    """Each of f, ʃ and θ occurs once, tens of seconds from the others, with gaps in the
    phones (no silence phone) so the total dominance there is only decays and the floor."""
    phones = [
        Phone("f", 0.2, 0.3),
        Phone("ɑ", 0.3, 0.5),
        Phone("ʃ", 25.0, 25.1),
        Phone("u", 25.1, 25.3),
        Phone("θ", 70.0, 70.08),
        Phone("i", 70.08, 70.3),
    ]
    return PhonemeTimeline(phones, [], 71.0)


CASES = {
    "short": (_short, {}),
    "long pauses": (lambda: generated(150.0, 1, long_pauses=True), {}),
    "60 s": (lambda: generated(60.0, 2), {}),
    "60 s, audio pauses, slow decays, lagging": (
        lambda: generated(60.0, 3),
        {
            "extra_pauses": [(3.0, 4.5), (4.0, 9.0), (30.0, 30.2), (59.5, 61.0)],
            "anticipation_s": 0.12,
            "carryover_s": 0.09,
            "lead_s": -0.02,
            "smoothing_s": 0.0,
        },
    ),
    "rare visemes far apart": (_rare_visemes_far_apart, {}),
    "empty timeline": (lambda: PhonemeTimeline([], [], 2.0), {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_windowed_coarticulation_equals_the_whole_grid_formula_in_float32(settings, case):
    make, changes = CASES[case]
    timeline = make()
    kwargs = settings | changes
    n = int(round(timeline.duration * FPS))
    weights, mouth = coarticulate(timeline, n, FPS, **kwargs)
    ref_weights, ref_mouth = reference_coarticulate(timeline, n, FPS, **kwargs)
    assert weights.dtype == mouth.dtype == np.float32
    assert weights.shape == (n, len(VISEMES)) and mouth.shape == (n, len(MOUTH_CHANNELS))
    np.testing.assert_array_equal(weights, ref_weights)
    np.testing.assert_array_equal(mouth, ref_mouth)
    # the cases exercise both an open mouth and a gated, exactly closed one
    assert mouth[:, 0].max() > 0.2 or not timeline.phones
    assert weights[:, VISEMES.index("sil")].max() == 1.0


def test_a_segment_touches_only_its_window(settings):
    """Adding a segment 20 s away leaves every float64 dominance value outside its window
    exactly as it was (the whole-grid formula would add e^-400 there)."""
    a, c = settings["anticipation_s"], settings["carryover_s"]
    t = np.arange(0.0, 40.0, 1.0 / GRID_HZ)
    near = [VisemeSegment("aa", 1.0, 1.2), VisemeSegment("sil", 1.2, 2.0)]
    far = VisemeSegment("FF", 21.0, 21.1)
    without = dominance_grid(near, t, anticipation_s=a, carryover_s=c)
    with_far = dominance_grid([*near, far], t, anticipation_s=a, carryover_s=c)
    reach = t < far.start - NEGLIGIBLE_DECAYS * a
    assert reach.sum() > 1000
    np.testing.assert_array_equal(with_far[reach], without[reach])
    assert np.all(with_far[reach, VISEMES.index("FF")] == 0.0)
    inside = (t >= far.start) & (t < far.end)
    np.testing.assert_array_equal(with_far[inside, VISEMES.index("FF")], VISEME_DOMINANCE["FF"])
    # and frames far from the new segment are those of the track without it
    short = PhonemeTimeline.from_durations(["_", "ɑ", "_"], [1.0, 0.2, 28.8])
    extra = PhonemeTimeline.from_durations(["_", "ɑ", "_", "f", "_"], [1.0, 0.2, 19.8, 0.1, 8.9])
    n = int(30.0 * FPS)
    w0, m0 = coarticulate(short, n, FPS, **settings)
    w1, m1 = coarticulate(extra, n, FPS, **settings)
    early = slice(0, int(10.0 * FPS))
    np.testing.assert_array_equal(w1[early], w0[early])
    np.testing.assert_array_equal(m1[early], m0[early])
    assert m1[int(21.05 * FPS), MOUTH_CHANNELS.index("lower_lip_tuck")] > 0.3


def test_the_work_per_segment_is_bounded(settings):
    """Every segment's window is its length plus a fixed reach, whatever the timeline's
    length, so the evaluated points grow linearly with it."""
    a, c = settings["anticipation_s"], settings["carryover_s"]
    per_point = []
    for seconds in (30.0, 120.0, 480.0):
        segments = viseme_segments(generated(seconds, 4))
        t = np.arange(0.0, seconds, 1.0 / GRID_HZ)
        lo, hi = segment_windows(segments, t, anticipation_s=a, carryover_s=c)
        reach = NEGLIGIBLE_DECAYS * (a + c)
        lengths = np.array([s.end - s.start for s in segments])
        assert np.all(hi - lo <= (lengths + reach) * GRID_HZ + 2)
        per_point.append(float((hi - lo).sum()) / len(t))
    # evaluated points per grid point: constant (not growing with the length)
    assert max(per_point) < 1.2 * min(per_point[1:]) and max(per_point) < 250


def test_a_pause_touches_only_its_span():
    t = np.arange(0.0, 600.0, 1.0 / GRID_HZ)
    gate = pause_gate([(100.0, 101.0), (400.0, 400.1)], t, ramp_s=0.08)
    outside = ~(((t >= 100.0) & (t <= 101.0)) | ((t >= 400.0) & (t <= 400.1)))
    assert np.all(gate[outside] == 1.0)
    assert gate[int(100.5 * GRID_HZ)] == 0.0 and 0.0 < gate[int(400.02 * GRID_HZ)] < 1.0


def reference_blink_curve(onsets_s, n_frames, fps, *, close_s, hold_s, open_s):
    """Every blink over every sample (the formula before the per-blink spans)."""
    sub = 8
    t = (np.arange(n_frames * sub) + 0.5) / (fps * sub)
    closure = np.zeros_like(t)
    for onset in onsets_s:
        dt = t - onset
        closing = np.clip(dt / close_s, 0.0, 1.0)
        opening = np.clip(1.0 - (dt - close_s - hold_s) / open_s, 0.0, 1.0)
        c = np.where(dt < close_s + hold_s, closing, opening)
        c = np.where(dt < 0, 0.0, c)
        closure = np.maximum(closure, np.sin(0.5 * np.pi * c) ** 2)
    return closure.reshape(n_frames, sub).max(axis=1).astype(np.float32)


def reference_expression_channels(events, n_frames, fps, *, ramp_s):
    """Every emotion event over every frame (the formula before the per-event spans)."""
    names = sorted({k for t in EXPRESSION_TARGETS.values() for k in t})
    out = {k: np.zeros(n_frames, np.float64) for k in names}
    t = np.arange(n_frames) / fps
    current = {k: 0.0 for k in names}
    for event in sorted(events, key=lambda e: e.time):
        target = {k: event.intensity * EXPRESSION_TARGETS[event.emotion].get(k, 0.0) for k in names}
        blend = np.clip((t - event.time) / max(ramp_s, 1e-6), 0.0, 1.0)
        blend = blend * blend * (3.0 - 2.0 * blend)
        for k in names:
            out[k] = np.where(
                t >= event.time, current[k] + blend * (target[k] - current[k]), out[k]
            )
        current = target
    return {k: v.astype(np.float32) for k, v in out.items()}


def reference_frame_rms(audio, sample_rate, n_frames, fps):
    """Per-frame RMS one frame at a time (the loop before the gathered rows)."""
    hop = sample_rate / fps
    env = np.zeros(n_frames, np.float32)
    for k in range(n_frames):
        seg = audio[int(round(k * hop)) : int(round((k + 1) * hop))]
        if seg.size:
            env[k] = np.sqrt(np.mean(seg.astype(np.float64) ** 2))
    return env


def reference_silent_spans(audio, sample_rate, *, min_duration_s, threshold_db):
    """Quiet runs found frame by frame (the loop before the vectorized run search)."""
    hop = max(int(round(0.02 * sample_rate)), 1)
    n = len(audio) // hop
    frames = audio[: n * hop].reshape(n, hop).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    quiet = 20.0 * np.log10(np.maximum(rms / rms.max(), 1e-12)) < threshold_db
    spans, start = [], None
    for i, q in enumerate(np.r_[quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) * hop / sample_rate >= min_duration_s:
                spans.append((start * hop / sample_rate, min(i * hop, len(audio)) / sample_rate))
            start = None
    return spans


@pytest.mark.parametrize("seed", range(4))
def test_blinks_and_emotions_equal_the_whole_track_formulas(seed):
    rng = np.random.default_rng(seed)
    fps = [25.0, 30.0, 24.0, 12.5][seed]
    n = int(rng.integers(200, 3000))
    onsets = np.sort(rng.uniform(-0.5, n / fps + 0.5, 40))
    shape = {"close_s": 0.08, "hold_s": float(rng.uniform(0, 0.1)), "open_s": 0.15}
    closure = blink_curve(onsets, n, fps, **shape)
    np.testing.assert_array_equal(closure, reference_blink_curve(onsets, n, fps, **shape))
    assert closure.max() > 0.9 and closure.min() == 0.0
    emotions = ["happy", "sad", "angry", "neutral", "surprised"]
    times = [*rng.uniform(-1, n / fps + 1, 12), 2.0, 2.0]  # a tie: the later event wins
    events = [EmotionEvent(str(rng.choice(emotions)), float(rng.uniform()), t) for t in times]
    for ramp in (0.0, 0.4):
        got = expression_channels(events, n, fps, ramp_s=ramp)
        want = reference_expression_channels(events, n, fps, ramp_s=ramp)
        assert got.keys() == want.keys()
        for k in got:
            np.testing.assert_array_equal(got[k], want[k])


@pytest.mark.parametrize(("sample_rate", "fps"), [(16000, 25.0), (22050, 30.0), (24000, 29.97)])
def test_loudness_and_silences_equal_the_frame_loop(sample_rate, fps):
    rng = np.random.default_rng(sample_rate)
    audio = (0.2 * rng.standard_normal(sample_rate * 7)).astype(np.float32)
    audio[sample_rate : 2 * sample_rate] = 0.0
    audio[int(4.5 * sample_rate) : int(4.6 * sample_rate)] *= 1e-4
    n = int(7.3 * fps)  # a little longer than the audio: the last frames are empty
    env = reference_frame_rms(audio, sample_rate, n, fps)
    db = 20.0 * np.log10(np.maximum(env / env.max(), 1e-8))
    want = np.clip((db + 50.0) / 50.0, 0.0, 1.0).astype(np.float32)
    np.testing.assert_array_equal(speech_activity(audio, sample_rate, n, fps), want)
    spans = silent_spans(audio, sample_rate, min_duration_s=0.05, threshold_db=-35)
    assert spans == reference_silent_spans(
        audio, sample_rate, min_duration_s=0.05, threshold_db=-35
    )
    np.testing.assert_allclose(spans, [(1.0, 2.0), (4.5, 4.6)], atol=0.02)  # 20 ms frames
