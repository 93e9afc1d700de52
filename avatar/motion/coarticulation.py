"""Coarticulation: a PhonemeTimeline -> per-frame viseme weights and mouth channels.

Each viseme segment exerts a dominance (after Cohen & Massaro, 1993) that is flat over the
segment and decays exponentially outside it, more slowly before the segment (anticipation) than
after it (carry-over). The mouth shape at time t is the dominance-weighted mean of the segments'
targets, evaluated ``lead_s`` ahead of t so that the lips lead the sound slightly. The curves are
computed on a 200 Hz grid, smoothed, and box-averaged over each video frame, so they never
snap. Pauses of at least ``min_pause_s`` are gated to an exactly closed mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from avatar.motion.track import MOUTH_CHANNELS
from avatar.motion.visemes import VISEME_DOMINANCE, VISEMES, phoneme_visemes, viseme_target_matrix
from avatar.speech.timeline import SILENCE, PhonemeTimeline

GRID_HZ = 200.0
"""Rate of the internal time grid, Hz."""


@dataclass(frozen=True)
class VisemeSegment:
    """One viseme over ``[start, end)`` seconds."""

    viseme: str
    start: float
    end: float


def viseme_segments(timeline: PhonemeTimeline) -> list[VisemeSegment]:
    """Split every phone into its viseme(s); pauses become ``sil``.

    >>> tl = PhonemeTimeline.from_durations(["_", "b", "O"], [0.1, 0.1, 0.2])
    >>> [(s.viseme, round(s.end - s.start, 2)) for s in viseme_segments(tl)]
    [('sil', 0.1), ('PP', 0.1), ('O', 0.12), ('U', 0.08)]
    """
    out: list[VisemeSegment] = []
    for phone in timeline.phones:
        if phone.phoneme == SILENCE:
            out.append(VisemeSegment("sil", phone.start, phone.end))
            continue
        t = phone.start
        for viseme, fraction in phoneme_visemes(phone.phoneme, timeline.alphabet):
            end = t + fraction * phone.duration
            out.append(VisemeSegment(viseme, t, end))
            t = end
    return out


NEGLIGIBLE_DECAYS = 170.0
"""How many decay time constants before and after a segment its dominance is evaluated.

Beyond this a segment's dominance is below ``2 * exp(-170) = 3e-74`` (2 is the largest
:data:`VISEME_DOMINANCE`). A viseme weight is a dominance divided by the total dominance, which
is at least the silence floor 1e-6, so leaving such a term out changes a weight by less than
``3e-68``: even summed over a million segments (3e-62) that is below half a float64 unit of the
smallest float32 (``2**-149 * 2**-53 = 1.5e-61``), so it cannot change any float32 result, and
the whole-grid formula it replaces gives the same float32 output
(``tests/avatar/motion/test_motion_linear.py`` compares them). Each segment then touches a
fixed window of ``170 * (anticipation_s + carryover_s)`` seconds (14 s by default), so the
work is linear in the length of the timeline.
"""


def _dominance(
    seg: VisemeSegment, t: np.ndarray, anticipation_s: float, carryover_s: float
) -> np.ndarray:
    """(N,) dominance of one segment on grid times ``t`` (seconds)."""
    before = np.clip(seg.start - t, 0.0, None)
    after = np.clip(t - seg.end, 0.0, None)
    decay = np.exp(-before / anticipation_s - after / carryover_s)
    return VISEME_DOMINANCE[seg.viseme] * decay


def segment_windows(
    segments: list[VisemeSegment], t: np.ndarray, *, anticipation_s: float, carryover_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Grid index ranges ``[lo, hi)``, each (S,), where the segments' dominance is evaluated:
    from :data:`NEGLIGIBLE_DECAYS` anticipation time constants before each segment to as many
    carry-over time constants after it, on the increasing grid times ``t`` (seconds)."""
    starts = np.array([s.start for s in segments], np.float64)
    ends = np.array([s.end for s in segments], np.float64)
    lo = np.searchsorted(t, starts - NEGLIGIBLE_DECAYS * anticipation_s, side="left")
    hi = np.searchsorted(t, ends + NEGLIGIBLE_DECAYS * carryover_s, side="right")
    return lo, hi


def dominance_grid(
    segments: list[VisemeSegment], t: np.ndarray, *, anticipation_s: float, carryover_s: float
) -> np.ndarray:
    """(N, V) summed dominance per viseme of ``segments`` on the increasing grid times ``t``.

    Each segment is evaluated only on its window (:func:`segment_windows`) and added in the
    segments' order, so every value is the sum the whole grid would give, less terms too small
    to reach a float32 result.
    """
    dominance = np.zeros((len(t), len(VISEMES)), np.float64)
    lo, hi = segment_windows(segments, t, anticipation_s=anticipation_s, carryover_s=carryover_s)
    for seg, a, b in zip(segments, lo.tolist(), hi.tolist(), strict=True):
        if b > a:
            dominance[a:b, VISEMES.index(seg.viseme)] += _dominance(
                seg, t[a:b], anticipation_s, carryover_s
            )
    return dominance


def pause_gate(pauses: list[tuple[float, float]], t: np.ndarray, *, ramp_s: float) -> np.ndarray:
    """(N,) factor in [0, 1]: 0 inside the ``(start, end)`` pauses (seconds), 1 elsewhere.

    The mouth closes over ``ramp_s`` after the last sound and opens ``ramp_s`` before the
    next one, so the closure never cuts into speech. ``t`` must be increasing (a time grid):
    each pause touches only the grid points inside it, so the work is linear in the length.
    """
    gate = np.ones_like(t)
    for start, end in pauses:
        a = int(np.searchsorted(t, start, side="left"))  # first t >= start
        b = int(np.searchsorted(t, end, side="right"))  # first t > end
        if b <= a:
            continue
        span = t[a:b]
        ramp = min(ramp_s, 0.5 * (end - start))
        # distance into the pause from its nearest edge, seconds
        inside = np.minimum(span - start, end - span)
        g = np.clip(1.0 - inside / max(ramp, 1e-6), 0.0, 1.0)
        g = g * g * (3.0 - 2.0 * g)  # smoothstep
        gate[a:b] = np.minimum(gate[a:b], g)
    return gate


def coarticulate(
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
    """Per-frame viseme weights and mouth channels.

    Args:
        timeline: phones with times in seconds.
        n_frames: frames T to produce; frame k covers ``[k/fps, (k+1)/fps)``.
        fps: frames per second.
        lead_s: how far the mouth leads the sound, seconds (anticipatory shift).
        anticipation_s: decay time constant of a segment's influence before it starts.
        carryover_s: decay time constant after it ends.
        smoothing_s: Gaussian sigma applied on the 200 Hz grid, seconds.
        min_pause_s: silences at least this long close the mouth completely.
        pause_ramp_s: closing/opening ramp at pause edges, seconds.
        intensity: scale of the opening channels (articulation strength).
        extra_pauses: more ``(start, end)`` silences in seconds, e.g. measured on the audio,
            where the timeline's phones run on into silence.

    Returns:
        ``(weights, mouth)``: (T, V) float32 viseme weights summing to 1 per frame
        (V = len(VISEMES)) and (T, M) float32 mouth channels in MOUTH_CHANNELS order.
    """
    duration = n_frames / fps
    t = np.arange(0.0, duration + 1.0 / fps, 1.0 / GRID_HZ) + lead_s  # (N,) grid times
    segments = viseme_segments(timeline) or [VisemeSegment("sil", 0.0, duration)]
    dominance = dominance_grid(  # (N, V)
        segments, t, anticipation_s=anticipation_s, carryover_s=carryover_s
    )
    # beyond the timeline, silence dominates
    tail = np.clip(t - timeline.duration, 0.0, None) + np.clip(-t, 0.0, None)
    dominance[:, VISEMES.index("sil")] += 1e-6 + 10.0 * (tail > 0)
    # (N, V) arrays are updated in place where that gives the same values, so the memory is a
    # few of them: 13 MB each per 10 minutes
    weights = dominance
    del dominance
    weights /= weights.sum(axis=1, keepdims=True)
    if smoothing_s > 0:
        weights = gaussian_filter1d(weights, smoothing_s * GRID_HZ, axis=0, mode="nearest")
    pauses = timeline.pauses(min_duration=min_pause_s) + list(extra_pauses or [])
    gate = pause_gate(pauses, t, ramp_s=pause_ramp_s)
    gate = np.minimum(gate, (t <= timeline.duration) & (t >= 0))
    sil = VISEMES.index("sil")
    weights *= gate[:, None]
    weights[:, sil] += 1.0 - gate
    mouth = weights @ viseme_target_matrix().astype(np.float64)  # (N, M)
    open_cols = [MOUTH_CHANNELS.index(c) for c in ("jaw_open", "lip_open")]
    mouth[:, open_cols] *= intensity
    return _frame_average(weights, fps, n_frames), _frame_average(mouth, fps, n_frames)


def _frame_average(x: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Box-average a (N, K) 200 Hz grid series over each frame interval -> (T, K) float32."""
    edges = np.round(np.arange(n_frames + 1) * GRID_HZ / fps).astype(int)
    edges = np.clip(edges, 0, len(x))
    csum = np.zeros((len(x) + 1, x.shape[1]), np.float64)
    np.cumsum(x, axis=0, out=csum[1:])
    counts = np.maximum(edges[1:] - edges[:-1], 1)[:, None]
    return ((csum[edges[1:]] - csum[edges[:-1]]) / counts).astype(np.float32)
