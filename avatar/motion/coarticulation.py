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


def _dominance(
    seg: VisemeSegment, t: np.ndarray, anticipation_s: float, carryover_s: float
) -> np.ndarray:
    """(N,) dominance of one segment on grid times ``t`` (seconds)."""
    before = np.clip(seg.start - t, 0.0, None)
    after = np.clip(t - seg.end, 0.0, None)
    decay = np.exp(-before / anticipation_s - after / carryover_s)
    return VISEME_DOMINANCE[seg.viseme] * decay


def pause_gate(pauses: list[tuple[float, float]], t: np.ndarray, *, ramp_s: float) -> np.ndarray:
    """(N,) factor in [0, 1]: 0 inside the ``(start, end)`` pauses (seconds), 1 elsewhere.

    The mouth closes over ``ramp_s`` after the last sound and opens ``ramp_s`` before the
    next one, so the closure never cuts into speech.
    """
    gate = np.ones_like(t)
    for start, end in pauses:
        ramp = min(ramp_s, 0.5 * (end - start))
        # distance into the pause from its nearest edge, seconds
        inside = np.minimum(t - start, end - t)
        g = np.clip(1.0 - inside / max(ramp, 1e-6), 0.0, 1.0)
        g = g * g * (3.0 - 2.0 * g)  # smoothstep
        gate = np.where((t >= start) & (t <= end), np.minimum(gate, g), gate)
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
    dominance = np.zeros((len(t), len(VISEMES)), np.float64)  # (N, V)
    for seg in segments:
        dominance[:, VISEMES.index(seg.viseme)] += _dominance(seg, t, anticipation_s, carryover_s)
    # beyond the timeline, silence dominates
    tail = np.clip(t - timeline.duration, 0.0, None) + np.clip(-t, 0.0, None)
    dominance[:, VISEMES.index("sil")] += 1e-6 + 10.0 * (tail > 0)
    weights = dominance / dominance.sum(axis=1, keepdims=True)
    if smoothing_s > 0:
        weights = gaussian_filter1d(weights, smoothing_s * GRID_HZ, axis=0, mode="nearest")
    pauses = timeline.pauses(min_duration=min_pause_s) + list(extra_pauses or [])
    gate = pause_gate(pauses, t, ramp_s=pause_ramp_s)
    gate = np.minimum(gate, (t <= timeline.duration) & (t >= 0))
    sil = VISEMES.index("sil")
    weights = weights * gate[:, None]
    weights[:, sil] += 1.0 - gate
    mouth = weights @ viseme_target_matrix().astype(np.float64)  # (N, M)
    open_cols = [MOUTH_CHANNELS.index(c) for c in ("jaw_open", "lip_open")]
    mouth[:, open_cols] *= intensity
    return _frame_average(weights, fps, n_frames), _frame_average(mouth, fps, n_frames)


def _frame_average(x: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """Box-average a (N, K) 200 Hz grid series over each frame interval -> (T, K) float32."""
    edges = np.round(np.arange(n_frames + 1) * GRID_HZ / fps).astype(int)
    edges = np.clip(edges, 0, len(x))
    csum = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)[:, None]
    return ((csum[edges[1:]] - csum[edges[:-1]]) / counts).astype(np.float32)
