"""Mouth motion in speech versus silence over a batch of clips (pooled over frames).

Speech frames are those whose envelope is above the silence level, as in
:func:`evals.functional.lipsync.speech_motion`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evals.functional._clips import as_clips
from evals.functional.lipsync import FLOOR_DB, db_to_envelope

__all__ = ["mouth_motion"]


def _mouth_motion_update(
    aperture: Any, envelope: Any, silence_db: float, floor_db: float
) -> tuple[float, float, float, float]:
    """Sums: (aperture over speech frames, speech frames, aperture over silence, silent frames)."""
    aps = as_clips(aperture, 1, "aperture")
    envs = as_clips(envelope, 1, "envelope")
    if len(aps) != len(envs):
        raise ValueError(f"aperture has {len(aps)} clips but envelope has {len(envs)}")
    cut = float(db_to_envelope(silence_db, floor_db))
    s_sp = n_sp = s_si = n_si = 0.0
    for a, e in zip(aps, envs, strict=True):
        if a.shape != e.shape:
            raise ValueError(f"aperture and envelope differ in length: {a.shape} vs {e.shape}")
        ok = np.isfinite(a) & np.isfinite(e)
        speech, silent = ok & (e > cut), ok & (e <= cut)
        s_sp, n_sp = s_sp + a[speech].sum(), n_sp + speech.sum()
        s_si, n_si = s_si + a[silent].sum(), n_si + silent.sum()
    return float(s_sp), float(n_sp), float(s_si), float(n_si)


def _mouth_motion_compute(s_sp: float, n_sp: float, s_si: float, n_si: float) -> dict[str, float]:
    nan = float("nan")
    speech = s_sp / n_sp if n_sp else nan
    silence = s_si / n_si if n_si else nan
    return {"speech": speech, "silence": silence, "contrast": speech - silence}


def mouth_motion(
    aperture: Any, envelope: Any, *, silence_db: float = -35.0, floor_db: float = FLOOR_DB
) -> dict[str, float]:
    """Mean mouth aperture while speaking and while silent, pooled over a batch of clips.

    Args:
        aperture: (B, T) mouth aperture (NaN where no face), or B (T_i,) arrays.
        envelope: (B, T) :func:`~evals.functional.lipsync.speech_envelope` in [0, 1] made with
            ``floor_db``, same lengths.
        silence_db: level (dB relative to the loudest frame) at or below which a frame is silent.
        floor_db: the envelope's floor, dB.

    Returns:
        ``speech`` and ``silence`` mean apertures (NaN without such frames) and ``contrast`` =
        speech - silence (the mouth should move in speech and rest in silence).

    Example:
        >>> mouth_motion(np.array([0.3, 0.2, 0.0, 0.02]), np.array([1.0, 0.9, 0.0, 0.1]))["speech"]
        0.25
    """
    return _mouth_motion_compute(*_mouth_motion_update(aperture, envelope, silence_db, floor_db))
