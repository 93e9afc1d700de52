"""Viseme agreement: the dominant viseme of a rendered motion track vs the coarticulated truth.

The truth is :func:`avatar.motion.coarticulation.coarticulate` on the reference
:class:`~avatar.speech.timeline.PhonemeTimeline` (known phoneme timings); the render side is the
``viseme.<name>`` channels of the :class:`~avatar.motion.track.MotionTrack` the pipeline produced
(``RenderResult.motion``). Agreement is the fraction of frames whose arg-max viseme matches,
over all frames and over speech frames (the truth's dominant viseme is not ``sil``), since long
silences inflate the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from avatar.motion.coarticulation import coarticulate
from avatar.motion.track import MotionTrack
from avatar.motion.visemes import VISEMES
from avatar.speech.timeline import PhonemeTimeline
from evals.functional._clips import as_clips

__all__ = [
    "COARTICULATION",
    "reference_visemes",
    "track_visemes",
    "viseme_agreement",
    "viseme_inputs",
]

SIL = VISEMES.index("sil")

COARTICULATION: dict[str, float] = {
    "lead_s": 0.03,
    "anticipation_s": 0.05,
    "carryover_s": 0.035,
    "smoothing_s": 0.012,
    "min_pause_s": 0.15,
    "pause_ramp_s": 0.08,
}
"""Defaults of ``coarticulate`` (``configs/motion/default.yaml``); pass the run's own to match."""


def track_visemes(track: MotionTrack) -> np.ndarray:
    """The (T, V) viseme weights of a motion track, V = ``len(VISEMES)`` in VISEMES order.

    Raises:
        ValueError: the track has no ``viseme.<name>`` channels.
    """
    names = [f"viseme.{v}" for v in VISEMES]
    missing = [n for n in names if n not in track]
    if len(missing) == len(names):
        raise ValueError("motion track has no viseme.<name> channels")
    return np.stack([track.get(n) for n in names], axis=1).astype(np.float64)


def reference_visemes(
    timeline: PhonemeTimeline,
    n_frames: int,
    fps: float,
    coarticulation: Mapping[str, float] | None = None,
) -> np.ndarray:
    """The (T, V) coarticulated viseme weights of known phoneme timings (rows sum to 1).

    Args:
        timeline: reference phoneme timings, seconds.
        n_frames: T, frames of the clip.
        fps: frames per second.
        coarticulation: ``coarticulate`` keyword arguments (default :data:`COARTICULATION`).
    """
    kwargs = dict(COARTICULATION) | dict(coarticulation or {})
    weights, _ = coarticulate(timeline, n_frames, fps, **kwargs)  # type: ignore[arg-type]
    return weights.astype(np.float64)


def _viseme_agreement_update(visemes: Any, target_visemes: Any) -> tuple[float, ...]:
    """Sums: (agreeing frames, frames, agreeing speech frames, speech frames)."""
    preds = as_clips(visemes, 2, "visemes")
    targets = as_clips(target_visemes, 2, "target_visemes")
    if len(preds) != len(targets):
        raise ValueError(f"visemes has {len(preds)} clips but target_visemes has {len(targets)}")
    agree = n = agree_sp = n_sp = 0.0
    for p, t in zip(preds, targets, strict=True):
        if p.shape != t.shape or p.shape[-1] != len(VISEMES):
            raise ValueError(
                f"visemes and target_visemes must both be (T, {len(VISEMES)}), "
                f"got {p.shape} vs {t.shape}"
            )
        ok = np.isfinite(p).all(1) & np.isfinite(t).all(1)
        same = (p.argmax(1) == t.argmax(1)) & ok
        speech = ok & (t.argmax(1) != SIL)
        agree, n = agree + same.sum(), n + ok.sum()
        agree_sp, n_sp = agree_sp + (same & speech).sum(), n_sp + speech.sum()
    return float(agree), float(n), float(agree_sp), float(n_sp)


def _viseme_agreement_compute(
    agree: float, n: float, agree_sp: float, n_sp: float
) -> dict[str, float]:
    nan = float("nan")
    return {"agreement": agree / n if n else nan, "speech": agree_sp / n_sp if n_sp else nan}


def viseme_agreement(visemes: Any, target_visemes: Any) -> dict[str, float]:
    """Per-frame agreement of dominant visemes, pooled over the frames of a batch of clips.

    Args:
        visemes: (B, T, V) rendered viseme weights (:func:`track_visemes`), or B (T_b, V) arrays.
        target_visemes: (B, T, V) truth (:func:`reference_visemes`), same shapes.

    Returns:
        ``agreement``: fraction of frames in [0, 1] whose arg-max viseme matches (higher is
        better); ``speech``: the same over frames whose true viseme is not ``sil`` (NaN if none).

    Example:
        >>> w = np.eye(14)[None, [0, 3, 3, 9]]
        >>> viseme_agreement(w, np.eye(14)[None, [0, 3, 9, 9]])
        {'agreement': 0.75, 'speech': 0.6666666666666666}
    """
    return _viseme_agreement_compute(*_viseme_agreement_update(visemes, target_visemes))


def viseme_inputs(
    result: Any, coarticulation: Mapping[str, float] | None = None
) -> dict[str, np.ndarray]:
    """``visemes`` and ``target_visemes`` ((1, T, V) each) of a rendered clip, or ``{}``.

    Args:
        result: an :class:`avatar.pipeline.RenderResult` (``motion`` with ``viseme.<name>``
            channels and ``speech.timeline``); anything else (a peer's video) gives ``{}``.
        coarticulation: the run's ``coarticulate`` settings (default :data:`COARTICULATION`).

    Note:
        In the benchmark the truth is the timeline that drove the motion stage, so this scores
        the motion stage's fidelity to its timings; score with an independent aligner's timeline
        to measure a renderer against known phoneme timings.
    """
    motion = getattr(result, "motion", None)
    timeline = getattr(getattr(result, "speech", None), "timeline", None)
    if motion is None or timeline is None:
        return {}
    try:
        rendered = track_visemes(motion)
    except ValueError:
        return {}
    truth = reference_visemes(timeline, len(rendered), motion.fps, coarticulation)
    return {"visemes": rendered[None], "target_visemes": truth[None]}
