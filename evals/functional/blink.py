"""Blink detection from eye openness, blink rate, and matching detections against known blinks.

Eye openness is :func:`evals.functional.mouth.eye_openness` (lid gap over eye width). A blink is
a short dip of the openness well below the clip's typical (median) openness; see
:func:`detect_blinks` for the exact rule.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["BlinkEvent", "blink_rate_per_min", "detect_blinks", "match_blinks"]

_MAD_TO_STD = 1.4826
"""Median absolute deviation -> standard deviation for Gaussian noise."""


class BlinkEvent(NamedTuple):
    """One detected blink (frame indices of the clip)."""

    start_frame: int
    """First frame below the threshold."""
    end_frame: int
    """One past the last frame below the threshold."""
    peak_frame: int
    """Frame of least openness (the most closed)."""


def _mean_openness(openness: np.ndarray) -> np.ndarray:
    """(T,) or (T, E) -> (T,) mean over eyes, NaN only where every eye is NaN."""
    x = np.asarray(openness, np.float64)
    if x.ndim == 2:
        ok = np.isfinite(x)
        total = np.where(ok, x, 0.0).sum(axis=1)
        count = ok.sum(axis=1)
        x = np.divide(total, count, out=np.full(len(x), np.nan), where=count > 0)
    if x.ndim != 1:
        raise ValueError(f"openness must be (T,) or (T, n_eyes), got {np.shape(openness)}")
    return x


def detect_blinks(
    openness: np.ndarray,
    fps: float,
    *,
    ratio: float = 0.6,
    noise_k: float = 4.0,
    merge_gap: int = 1,
    max_duration_s: float = 1.0,
) -> list[BlinkEvent]:
    """Finds blinks as dips of eye openness below a threshold relative to the clip's median.

    The rule:

    1. per frame, average the eyes (NaN eyes ignored; frames without a face are never closed);
    2. ``m`` = median openness over the clip, ``s`` = 1.4826 * median absolute deviation (a
       robust noise level; blinks occupy a few percent of frames, so neither moves with them);
    3. threshold = ``min(ratio * m, m - noise_k * s)``: a frame is closed when it is below both
       a fixed fraction of the typical openness and the noise band;
    4. runs of closed frames separated by at most ``merge_gap`` open (or NaN) frames merge into
       one event; events longer than ``max_duration_s`` are eyes kept shut, not blinks, and are
       dropped;
    5. each event's peak is its least-open frame.

    Args:
        openness: (T,) or (T, 2) eye openness per frame (e.g. :func:`eye_openness`), NaN allowed.
        fps: frames per second.
        ratio: fraction of the median openness below which a frame may be closed, in (0, 1).
        noise_k: how many robust standard deviations below the median a closed frame must be.
        merge_gap: largest gap in frames bridged inside one blink.
        max_duration_s: longest closure counted as a blink, seconds.

    Returns:
        Blink events in time order.

    Example:
        >>> x = np.full(50, 0.3); x[10:13] = [0.15, 0.05, 0.2]; x[30] = 0.1
        >>> [e.peak_frame for e in detect_blinks(x, 25.0)]
        [11, 30]
    """
    if not fps > 0 or not 0 < ratio < 1:
        raise ValueError(f"need fps > 0 and 0 < ratio < 1, got {fps}, {ratio}")
    x = _mean_openness(openness)
    if not np.isfinite(x).any():
        return []
    median = float(np.nanmedian(x))
    noise = _MAD_TO_STD * float(np.nanmedian(np.abs(x - median)))
    threshold = min(ratio * median, median - noise_k * noise)
    closed = np.isfinite(x) & (x < threshold)
    idx = np.flatnonzero(closed)
    if idx.size == 0:
        return []
    splits = np.flatnonzero(np.diff(idx) > merge_gap + 1) + 1
    events = []
    for run in np.split(idx, splits):
        start, end = int(run[0]), int(run[-1]) + 1
        if (end - start) / fps > max_duration_s:
            log.debug("closure at frames %d-%d is too long for a blink", start, end)
            continue
        events.append(BlinkEvent(start, end, int(run[np.argmin(x[run])])))
    return events


def blink_rate_per_min(events: list[BlinkEvent] | int, n_frames: int, fps: float) -> float:
    """Blinks per minute over a clip of ``n_frames`` at ``fps`` (0.0 for an empty clip).

    Example:
        >>> blink_rate_per_min(3, 300, 25.0)
        15.0
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    n = events if isinstance(events, int) else len(events)
    minutes = n_frames / fps / 60.0
    return n / minutes if minutes > 0 else 0.0


def match_blinks(
    detected_peaks: list[int] | np.ndarray,
    true_onsets: list[int] | np.ndarray,
    tolerance_frames: int,
) -> tuple[float, float]:
    """Precision and recall of detected blinks against known ones.

    Detections and true blinks are matched one-to-one when they are at most ``tolerance_frames``
    apart (a greedy sweep in time order, which gives a maximum matching for points on a line).
    Give a tolerance that covers the onset-to-peak delay (about 2 frames at 25 fps).

    Args:
        detected_peaks: frame of each detected blink (e.g. ``BlinkEvent.peak_frame``).
        true_onsets: frame of each true blink (e.g. from the motion track's schedule).
        tolerance_frames: largest allowed distance, frames (>= 0).

    Returns:
        (precision, recall) in [0, 1]: matched / detected and matched / true; each is 1.0 when
        its denominator is zero.

    Example:
        >>> match_blinks([12, 40, 90], [10, 41], tolerance_frames=3)
        (0.6666666666666666, 1.0)
    """
    if tolerance_frames < 0:
        raise ValueError(f"tolerance_frames must be >= 0, got {tolerance_frames}")
    det = np.sort(np.asarray(detected_peaks, np.float64).reshape(-1))
    true = np.sort(np.asarray(true_onsets, np.float64).reshape(-1))
    i = j = matched = 0
    while i < len(det) and j < len(true):
        if abs(det[i] - true[j]) <= tolerance_frames:
            matched, i, j = matched + 1, i + 1, j + 1
        elif det[i] < true[j]:
            i += 1
        else:
            j += 1
    precision = matched / len(det) if len(det) else 1.0
    recall = matched / len(true) if len(true) else 1.0
    return precision, recall
