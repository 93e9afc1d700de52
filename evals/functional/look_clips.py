"""Look metrics over clips: the per-frame measures of :mod:`evals.functional.look` on the frames
where each applies, pooled into sums (``_<metric>_update``) and values (``_<metric>_compute``).

- seam brightness on closed-mouth frames (mouth aperture below ``closed_below``, the lip-sync
  suite's closure threshold);
- edge hardness on open-mouth frames (aperture at or above ``open_above``);
- lid realism on closed eyes, one value per eye and frame: where the renderer closed them
  (its motion track's blinks, for clips rendered here: MediaPipe reads many render blinks as
  half open), else where the eye openness is below ``ratio`` times the clip's median openness
  of that eye (the blink metric's rule);
- sharpness match on every frame with a face.

Each reports the mean over the frames it measured, the fraction of them past its threshold
(``over``; the look is right when it is 0), and a worst or absolute value; NaN where no frame
applied. Frames come one at a time (:func:`~evals.functional._clips.iter_rgb8`), so streamed
clips are decoded once per metric and never held.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from evals.functional._clips import as_clips, iter_rgb8
from evals.functional.look import edge_hardness, lid_realism, seam_brightness, sharpness_match
from evals.functional.mouth import eye_openness, mouth_aperture

__all__ = [
    "BLINK_CLOSED",
    "blink_inputs",
    "edge_hardness_stats",
    "lid_realism_stats",
    "seam_brightness_stats",
    "sharpness_match_stats",
]

Sums = tuple[float, float, float, float]

BLINK_CLOSED = 0.9
"""A rendered eye is closed where its motion-track blink is at least this (1 = fully closed)."""


def _scan(
    video: Any,
    landmarks: Any,
    select: Callable[[int, np.ndarray], np.ndarray],
    measure: Callable[[np.ndarray, np.ndarray], Any],
) -> Iterator[float]:
    """Values of ``measure(frame, landmarks)`` where ``select`` picks them, clip by clip.

    Args:
        video: (B, T, 3, H, W) uint8 or float in [0, 1], or B clips (arrays or streamed).
        landmarks: (B, T, 478, 2|3) in pixels (NaN rows where no face), or B arrays.
        select: (clip index, its (T, 478, 2|3) landmarks) -> (T, K) bool: which of the K
            values of each frame to keep (K = 1 for one value a frame, 2 for one per eye).
        measure: one frame's K values (a float when K = 1); only called on frames with a pick.
    """
    clips = as_clips(video, 4, "video", dtype=None)
    tracks = as_clips(landmarks, 3, "landmarks", dtype=None)
    if len(clips) != len(tracks):
        raise ValueError(f"video has {len(clips)} clips but landmarks has {len(tracks)}")
    for i, (clip, lm) in enumerate(zip(clips, tracks, strict=True)):
        if len(clip) != len(lm):
            raise ValueError(f"clip {i}: {len(clip)} frames but {len(lm)} landmark rows")
        picked = select(i, lm)
        if not picked.any():
            continue
        for t, frame in enumerate(iter_rgb8(clip)):
            if picked[t].any():
                values = np.atleast_1d(np.asarray(measure(frame, lm[t]), np.float64))
                yield from values[picked[t]].tolist()


def _pool(values: Iterator[float], threshold: float, *, absolute: bool = False) -> Sums:
    """Sums of the finite values: (sum, worst, count, count past ``threshold``), or with
    ``absolute`` (sum, sum of |x|, count, count whose |x| is past ``threshold``)."""
    s = s_abs = n = n_over = 0.0
    worst = -math.inf
    for x in values:
        if not math.isfinite(x):
            continue
        s, s_abs, n = s + x, s_abs + abs(x), n + 1
        n_over += (abs(x) if absolute else x) > threshold
        worst = max(worst, x)
    return s, (s_abs if absolute else worst), n, n_over


def _mouth(
    below: float | None = None, above: float | None = None
) -> Callable[[int, np.ndarray], np.ndarray]:
    def select(_: int, lm: np.ndarray) -> np.ndarray:
        ap = mouth_aperture(lm)
        with np.errstate(invalid="ignore"):
            return ((ap < below) if below is not None else (ap >= above))[:, None]

    return select


def _seam_brightness_update(
    video: Any, landmarks: Any, *, closed_below: float, threshold: float
) -> Sums:
    """(sum, worst, frames, frames past ``threshold``) over closed-mouth frames."""
    return _pool(_scan(video, landmarks, _mouth(below=closed_below), seam_brightness), threshold)


def _edge_hardness_update(
    video: Any, landmarks: Any, *, open_above: float, threshold: float
) -> Sums:
    """(sum, worst, frames, frames past ``threshold``) over open-mouth frames."""
    return _pool(_scan(video, landmarks, _mouth(above=open_above), edge_hardness), threshold)


def _closed_eyes(ratio: float, blinks: Any | None) -> Callable[[int, np.ndarray], np.ndarray]:
    blink = None if blinks is None else as_clips(blinks, 2, "blinks")

    def select(i: int, lm: np.ndarray) -> np.ndarray:
        if blink is not None:  # the renderer's own closure: MediaPipe misses some render blinks
            if i >= len(blink) or blink[i].shape != (len(lm), 2):
                raise ValueError(f"blinks must be ({len(lm)}, 2) for clip {i} of the video")
            return blink[i] >= BLINK_CLOSED
        eo = eye_openness(lm)  # (T, 2), NaN where no face
        if not np.isfinite(eo).any():
            return np.zeros(eo.shape, bool)
        with np.errstate(invalid="ignore"):
            return eo < ratio * np.nanmedian(eo, axis=0)

    return select


def _lid_realism_update(
    video: Any, landmarks: Any, *, ratio: float, threshold: float, blinks: Any | None = None
) -> Sums:
    """(sum, worst, closed eyes, eyes past ``threshold``) over every closed eye of every frame
    (one value per eye; an open eye beside a closed one is not counted)."""
    return _pool(_scan(video, landmarks, _closed_eyes(ratio, blinks), lid_realism), threshold)


def blink_inputs(result: Any) -> dict[str, np.ndarray]:
    """``blinks`` ((1, T, 2) closure of the image-left and image-right eye in [0, 1]) of a clip
    rendered here, from its motion track's ``blink_l`` / ``blink_r``; ``{}`` for anything else
    (a peer's video: closed eyes are then found from the landmarks)."""
    motion = getattr(result, "motion", None)
    if motion is None or "blink_l" not in motion or "blink_r" not in motion:
        return {}
    if len(motion) != getattr(result, "n_frames", len(motion)):
        return {}  # not frame for frame with the video
    return {"blinks": np.stack([motion["blink_l"], motion["blink_r"]], axis=1)[None]}


def _sharpness_match_update(video: Any, landmarks: Any, *, threshold: float) -> Sums:
    """(sum, sum of |x|, frames, frames with |x| past ``threshold``) over frames with a face."""

    def select(_: int, lm: np.ndarray) -> np.ndarray:
        return np.isfinite(np.asarray(lm, np.float64)[..., :2]).all(axis=(1, 2))[:, None]

    return _pool(_scan(video, landmarks, select, sharpness_match), threshold, absolute=True)


def _worst_compute(s: float, worst: float, n: float, n_over: float) -> dict[str, float]:
    """``mean`` and ``worst`` value and the fraction ``over`` the threshold (NaN: no frame)."""
    if not n:
        return dict.fromkeys(("mean", "worst", "over"), math.nan)
    return {"mean": s / n, "worst": worst, "over": n_over / n}


def _abs_compute(s: float, s_abs: float, n: float, n_over: float) -> dict[str, float]:
    """``mean`` (signed), ``abs`` mean |x| and the fraction ``over`` the threshold."""
    if not n:
        return dict.fromkeys(("mean", "abs", "over"), math.nan)
    return {"mean": s / n, "abs": s_abs / n, "over": n_over / n}


def seam_brightness_stats(
    video: Any, landmarks: Any, *, closed_below: float, threshold: float
) -> dict[str, float]:
    """Seam brightness over the closed-mouth frames of a batch of clips.

    Args:
        video: (B, T, 3, H, W) uint8 or float in [0, 1], or B clips (arrays or streamed).
        landmarks: (B, T, 478, 2|3) MediaPipe landmarks in pixels (NaN rows: no face).
        closed_below: mouth aperture below which a frame is closed (e.g. 0.06).
        threshold: seam brightness (luma) past which a frame shows a seam
            (:data:`~evals.functional.look.SEAM_VISIBLE`).

    Returns:
        ``mean`` and ``worst`` seam brightness in luma, ``over`` the fraction of closed frames
        past ``threshold``; NaN without a closed-mouth frame.

    Example:
        >>> seam_brightness_stats(np.zeros((1, 2, 3, 8, 8)), np.full((1, 2, 478, 3), np.nan),
        ...                       closed_below=0.06, threshold=0.04)
        {'mean': nan, 'worst': nan, 'over': nan}
    """
    sums = _seam_brightness_update(video, landmarks, closed_below=closed_below, threshold=threshold)
    return _worst_compute(*sums)


def edge_hardness_stats(
    video: Any, landmarks: Any, *, open_above: float, threshold: float
) -> dict[str, float]:
    """Edge hardness over the open-mouth frames (aperture >= ``open_above``); as
    :func:`seam_brightness_stats`, in natural-log units."""
    return _worst_compute(
        *_edge_hardness_update(video, landmarks, open_above=open_above, threshold=threshold)
    )


def lid_realism_stats(
    video: Any, landmarks: Any, *, ratio: float, threshold: float, blinks: Any | None = None
) -> dict[str, float]:
    """Lid realism over closed eyes: where ``blinks`` ((B, T, 2) the renderer's closure per
    eye, :func:`blink_inputs`) is at least :data:`BLINK_CLOSED`, else where the openness is
    below ``ratio`` x the clip's median for that eye; as :func:`seam_brightness_stats`, in
    CIELAB Delta E, pooled over eyes."""
    sums = _lid_realism_update(video, landmarks, ratio=ratio, threshold=threshold, blinks=blinks)
    return _worst_compute(*sums)


def sharpness_match_stats(video: Any, landmarks: Any, *, threshold: float) -> dict[str, float]:
    """Sharpness match over every frame with a face: ``mean`` signed log-ratio, ``abs`` mean
    magnitude, ``over`` the fraction with magnitude past ``threshold``."""
    return _abs_compute(*_sharpness_match_update(video, landmarks, threshold=threshold))
