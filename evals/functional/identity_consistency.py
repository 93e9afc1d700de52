"""Identity consistency of rendered frames against a companion's reference images (ID-dlib).

Inputs are face descriptors: per clip an (N, D) array of the sampled frames' descriptors (NaN rows
where no face was found) and an (R, D) array of the reference images' descriptors, from the same
embedder (:class:`~evals.functional.identity.DlibFaceEmbedder`, whose distances below 0.6 read as
the same person). Three measures:

- distance: each frame's distance to its closest reference, averaged over frames;
- retention: how far the references are from each other divided by how far the frames are from
  the references (>= 1: the render is as much the companion as its own images are alike);
- drift: the trend of the frame-to-closest-reference distance over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from evals.functional._clips import as_clips, as_numpy
from evals.functional.identity import SAME_PERSON_THRESHOLD, identity_distance

__all__ = ["identity_distance_stats", "identity_drift", "identity_retention"]


def _refs(references: Any) -> np.ndarray:
    refs = np.atleast_2d(as_numpy(references))
    if refs.ndim != 2 or len(refs) == 0 or not np.isfinite(refs).all():
        raise ValueError(f"references must be finite (R >= 1, D) descriptors, got {refs.shape}")
    return refs


def _closest(emb: np.ndarray, refs: np.ndarray) -> np.ndarray:
    """(N,) distance of each finite row to its closest reference (rows with NaN dropped)."""
    ok = np.isfinite(emb).all(axis=1)
    if emb.shape[1] != refs.shape[1]:
        raise ValueError(f"descriptor sizes differ: frames {emb.shape[1]}, refs {refs.shape[1]}")
    if not ok.any():
        return np.zeros(0)
    closest: np.ndarray = identity_distance(emb[ok], refs).min(axis=1)
    return closest


def _identity_distance_update(
    embeddings: Any, references: Any, threshold: float
) -> tuple[float, float, float, float, float]:
    """Sums: (closest distance, faces, frames, faces below threshold); and the max distance."""
    refs = _refs(references)
    s_dist = n_face = n_frames = n_same = 0.0
    worst = 0.0
    for emb in as_clips(embeddings, 2, "embeddings"):
        d = _closest(emb, refs)
        s_dist += float(d.sum())
        n_face += d.size
        n_frames += len(emb)
        n_same += float((d < threshold).sum())
        worst = max(worst, float(d.max(initial=0.0)))
    return s_dist, n_face, n_frames, n_same, worst


def _identity_distance_compute(
    s_dist: float, n_face: float, n_frames: float, n_same: float, worst: float
) -> dict[str, float]:
    nan = float("nan")
    return {
        "distance": s_dist / n_face if n_face else nan,
        "max": worst if n_face else nan,
        "same_person": n_same / n_face if n_face else nan,
        "no_face": 1.0 - n_face / n_frames if n_frames else nan,
    }


def identity_distance_stats(
    embeddings: Any, references: Any, *, threshold: float = SAME_PERSON_THRESHOLD
) -> dict[str, float]:
    """ID-dlib distance of sampled frames to the closest reference, pooled over frames.

    Args:
        embeddings: (B, N, D) descriptors of N sampled frames per clip (NaN rows: no face), or B
            (N_i, D) arrays.
        references: (R, D) descriptors of the companion's images.
        threshold: same-person distance (0.6 for dlib).

    Returns:
        ``distance`` mean closest distance (>= 0, lower is better), ``max`` the largest,
        ``same_person`` fraction of faces below ``threshold``, ``no_face`` fraction of sampled
        frames without a face.

    Example:
        >>> refs = np.zeros((1, 4)); emb = np.array([[[0.3, 0, 0, 0], [np.nan] * 4]])
        >>> identity_distance_stats(emb, refs)
        {'distance': 0.3, 'max': 0.3, 'same_person': 1.0, 'no_face': 0.5}
    """
    return _identity_distance_compute(*_identity_distance_update(embeddings, references, threshold))


def _identity_retention_update(embeddings: Any, references: Any) -> tuple[float, float]:
    """Sums: (per-clip retention ratio, clips with a face)."""
    refs = _refs(references)
    if len(refs) < 2:
        raise ValueError(f"retention needs >= 2 reference images with a face, got {len(refs)}")
    pair = identity_distance(refs, refs)
    spread = float(pair[np.triu_indices(len(refs), 1)].mean())
    s_ratio = n = 0.0
    for emb in as_clips(embeddings, 2, "embeddings"):
        ok = np.isfinite(emb).all(axis=1)
        if not ok.any():
            continue
        render = float(identity_distance(emb[ok], refs).mean())
        s_ratio += spread / max(render, 1e-12)
        n += 1
    return s_ratio, n


def identity_retention(embeddings: Any, references: Any) -> dict[str, float]:
    """Retention: reference-to-reference spread over render-to-reference distance, per clip.

    Args:
        embeddings: (B, N, D) descriptors of sampled frames (NaN rows: no face), or B (N_i, D).
        references: (R, D) descriptors of the companion's images, R >= 2.

    Returns:
        ``ratio``: mean over clips of (mean pairwise distance between references) / (mean
        distance from each frame to each reference); >= 1 means the frames are as close to the
        images as the images are to each other (higher is better); NaN without faces.

    Raises:
        ValueError: fewer than two references (the spread is undefined).

    Example:
        >>> refs = np.array([[0.0, 0.0], [0.4, 0.0]])
        >>> identity_retention(np.array([[[0.2, 0.0]]]), refs)
        {'ratio': 2.0}
    """
    s_ratio, n = _identity_retention_update(embeddings, references)
    return {"ratio": s_ratio / n if n else float("nan")}


def _identity_drift_update(
    embeddings: Any, references: Any, times_s: Any, min_faces: int
) -> tuple[float, float, float]:
    """Sums: (slope per minute, late-minus-early distance, clips with >= ``min_faces`` faces)."""
    refs = _refs(references)
    embs = as_clips(embeddings, 2, "embeddings")
    times: Sequence[np.ndarray] = as_clips(times_s, 1, "times_s")
    if len(times) != len(embs):
        raise ValueError(f"{len(embs)} clips of embeddings but {len(times)} of times")
    s_slope = s_late = n = 0.0
    for emb, t in zip(embs, times, strict=True):
        if len(t) != len(emb):
            raise ValueError(f"times_s has {len(t)} entries for {len(emb)} frames")
        ok = np.isfinite(emb).all(axis=1) & np.isfinite(t)
        if ok.sum() < min_faces or np.ptp(t[ok]) <= 0:
            continue
        d = identity_distance(emb[ok], refs).min(axis=1)
        tt = t[ok] / 60.0
        slope = float(np.polyfit(tt, d, 1)[0])
        third = max(1, len(d) // 3)
        s_slope += slope
        s_late += float(d[-third:].mean() - d[:third].mean())
        n += 1
    return s_slope, s_late, n


def _identity_drift_compute(s_slope: float, s_late: float, n: float) -> dict[str, float]:
    nan = float("nan")
    if not n:
        return {"slope_per_min": nan, "late_minus_early": nan}
    return {"slope_per_min": s_slope / n, "late_minus_early": s_late / n}


def identity_drift(
    embeddings: Any, references: Any, times_s: Any, *, min_faces: int = 3
) -> dict[str, float]:
    """Trend of the closest-reference distance over each clip, averaged over clips.

    Args:
        embeddings: (B, N, D) descriptors of sampled frames (NaN rows: no face), or B (N_i, D).
        references: (R, D) descriptors of the companion's images.
        times_s: (B, N) time of each sampled frame in seconds, or B (N_i,) arrays.
        min_faces: fewest faces for a clip's trend to count.

    Returns:
        ``slope_per_min``: least-squares slope of the distance, per minute (> 0: drifting away
        from the references); ``late_minus_early``: mean distance over the last third of the
        samples minus the first third. NaN when no clip has enough faces.

    Example:
        >>> emb = np.array([[[0.1, 0.0], [0.2, 0.0], [0.3, 0.0]]])
        >>> out = identity_drift(emb, np.zeros((1, 2)), np.array([[0.0, 30.0, 60.0]]))
        >>> round(out["slope_per_min"], 6), round(out["late_minus_early"], 6)
        (0.2, 0.2)
    """
    return _identity_drift_compute(
        *_identity_drift_update(embeddings, references, times_s, min_faces)
    )
