"""Lip-sync metrics from mouth aperture and audio: landmark A/V offset, closure in silence, motion.

These are landmark/energy proxies computed from MediaPipe landmarks and the audio envelope (see
:mod:`evals.functional.lipsync`), not SyncNet's LSE-C/LSE-D.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from evals.functional._clips import as_clips
from evals.functional.lipsync_offset import _lipsync_offset_compute, _lipsync_offset_update
from evals.functional.mouth_closure import _mouth_closure_compute, _mouth_closure_update
from evals.functional.mouth_motion import _mouth_motion_compute, _mouth_motion_update
from evals.functional.viseme_agreement import (
    _viseme_agreement_compute,
    _viseme_agreement_update,
)
from evals.metrics.base import EvalMetric

__all__ = ["LipSyncOffset", "MouthClosure", "MouthMotion", "VisemeAgreement"]


class LipSyncOffset(EvalMetric):
    """Landmark A/V offset and confidence: mouth aperture cross-correlated with the envelope.

    Inputs to ``update``: ``aperture`` (B, T) mouth aperture (NaN where no face) and ``envelope``
    (B, T) speech envelope in [0, 1] (or B arrays of their own lengths). Outputs: ``offset``
    mean lag in frames (> 0: video lags audio), ``offset_abs`` (lower is better),
    ``confidence`` peak minus median correlation (higher is better), ``corr_at_0`` correlation
    at lag 0 (higher is better), ``defined`` fraction of clips with a lag.

    Args:
        max_offset: largest lag searched, frames (>= 0).
        min_pairs: fewest finite frame pairs for a lag to count (>= 2).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> env = torch.rand(2, 60, generator=g)
        >>> metric = LipSyncOffset(max_offset=4, min_pairs=10)
        >>> out = metric(torch.roll(env, 2, dims=1), env)
        >>> float(out["offset"]), bool(out["confidence"] > 0.5)
        (2.0, True)
    """

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {
        "offset": None,
        "offset_abs": False,
        "confidence": True,
        "corr_at_0": True,
        "defined": True,
    }
    _sum_states = ("s_off", "s_abs", "s_conf", "s_zero", "n_sync", "n_clips")

    def __init__(self, *, max_offset: int, min_pairs: int, **kwargs: Any) -> None:
        if not isinstance(max_offset, int) or max_offset < 0:
            raise ValueError(f"max_offset must be an int >= 0, got {max_offset!r}")
        if not isinstance(min_pairs, int) or min_pairs < 2:
            raise ValueError(f"min_pairs must be an int >= 2, got {min_pairs!r}")
        super().__init__(**kwargs)
        self.max_offset, self.min_pairs = max_offset, min_pairs

    def update(self, aperture: Any, envelope: Any) -> None:
        """Adds clips: (B, T) aperture and envelope (not applicable under ``min_pairs`` frames)."""
        self._require_frames(
            as_clips(aperture, 1, "aperture", dtype=None), self.min_pairs, "the A/V offset"
        )
        self._add(_lipsync_offset_update(aperture, envelope, self.max_offset, self.min_pairs))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_lipsync_offset_compute(*self._sums()))


class MouthClosure(EvalMetric):
    """Mouth closure in the pauses of speech.

    Inputs to ``update``: ``aperture`` (B, T), ``level_db`` (B, T) audio level per frame in dB
    relative to the clip's loudest frame, ``fps`` (scalar or (B,)). Outputs: ``closed_fraction``
    of scored pause frames in [0, 1] (higher is better), ``pauses_closed`` fraction of pauses
    closed throughout (higher is better), ``max_aperture`` mean largest aperture in a pause
    (lower is better), ``n_pauses``.

    Args:
        min_pause_s: shortest silence that counts as a pause, seconds (> 0).
        threshold: aperture below which the mouth is closed (> 0).
        silence_db: level at or below which a frame is silent, dB (< 0).
        margin_s: transition time excluded at each speech-side end of a pause, seconds (>= 0).

    Example:
        >>> level = torch.cat([torch.zeros(10), torch.full((10,), -60.0), torch.zeros(10)])
        >>> ap = torch.rand(30, generator=torch.Generator().manual_seed(0)) * 0.3 + 0.1
        >>> ap[12:18] = 0.01
        >>> metric = MouthClosure(min_pause_s=0.3, threshold=0.06, silence_db=-35.0, margin_s=0.08)
        >>> metric(ap, level, 25.0)["closed_fraction"].item()
        1.0
    """

    higher_is_better = True
    directions: ClassVar[dict[str, bool | None]] = {
        "closed_fraction": True,
        "pauses_closed": True,
        "max_aperture": False,
        "n_pauses": None,
    }
    _sum_states = ("closed", "scored", "n_closed", "n_pauses", "s_max")

    def __init__(
        self,
        *,
        min_pause_s: float,
        threshold: float,
        silence_db: float,
        margin_s: float,
        **kwargs: Any,
    ) -> None:
        if not min_pause_s > 0 or not threshold > 0 or not silence_db < 0 or margin_s < 0:
            raise ValueError(
                "need min_pause_s > 0, threshold > 0, silence_db < 0, margin_s >= 0; got "
                f"{min_pause_s}, {threshold}, {silence_db}, {margin_s}"
            )
        super().__init__(**kwargs)
        self.kw = dict(
            min_pause_s=min_pause_s, threshold=threshold, silence_db=silence_db, margin_s=margin_s
        )

    def update(self, aperture: Any, level_db: Any, fps: Any) -> None:
        """Adds clips: (B, T) aperture and level in dB, their fps (not applicable to clips
        shorter than ``min_pause_s``, which hold no pause)."""
        clips = as_clips(aperture, 1, "aperture", dtype=None)
        self._require_seconds(clips, fps, float(self.kw["min_pause_s"]), "mouth closure (a pause)")
        self._add(_mouth_closure_update(aperture, level_db, fps, **self.kw))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_mouth_closure_compute(*self._sums()))


class MouthMotion(EvalMetric):
    """Mean mouth aperture in speech and in silence, and their contrast.

    Inputs to ``update``: ``aperture`` (B, T) and ``envelope`` (B, T) in [0, 1] made with the
    same ``floor_db``. Outputs: ``speech`` and ``silence`` mean apertures and ``contrast`` =
    speech - silence (higher is better: the mouth moves in speech and rests in silence).

    Args:
        silence_db: level (dB relative to the loudest frame) at or below which a frame is silent.
        floor_db: the envelope's floor, dB (< silence_db).

    Example:
        >>> ap = torch.tensor([[0.3, 0.2, 0.0, 0.02]]); env = torch.tensor([[1.0, 0.9, 0.0, 0.1]])
        >>> round(MouthMotion(silence_db=-35.0, floor_db=-60.0)(ap, env)["contrast"].item(), 3)
        0.24
    """

    higher_is_better = True
    directions: ClassVar[dict[str, bool | None]] = {
        "speech": None,
        "silence": False,
        "contrast": True,
    }
    _sum_states = ("s_speech", "n_speech", "s_silence", "n_silence")

    def __init__(self, *, silence_db: float, floor_db: float, **kwargs: Any) -> None:
        if not floor_db < silence_db < 0:
            raise ValueError(f"need floor_db < silence_db < 0, got {floor_db}, {silence_db}")
        super().__init__(**kwargs)
        self.silence_db, self.floor_db = silence_db, floor_db

    def update(self, aperture: Any, envelope: Any) -> None:
        """Adds clips: (B, T) aperture and envelope (not applicable under 2 frames)."""
        self._require_frames(as_clips(aperture, 1, "aperture", dtype=None), 2, "mouth motion")
        self._add(_mouth_motion_update(aperture, envelope, self.silence_db, self.floor_db))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_mouth_motion_compute(*self._sums()))


class VisemeAgreement(EvalMetric):
    """Agreement of the rendered dominant viseme with the coarticulated truth of known timings.

    Inputs to ``update``: ``visemes`` (B, T, V) weights of the clip's motion track
    (:func:`~evals.functional.viseme_agreement.track_visemes` of ``RenderResult.motion``) and
    ``target_visemes`` (B, T, V) from the reference timeline
    (:func:`~evals.functional.viseme_agreement.reference_visemes`); V = 14. Outputs:
    ``agreement`` fraction of frames in [0, 1] (higher is better) and ``speech`` the same over
    frames whose true viseme is not ``sil``.

    Example:
        >>> w = torch.eye(14)[None, [0, 3, 3, 9]]
        >>> out = VisemeAgreement()(w, torch.eye(14)[None, [0, 3, 9, 9]])
        >>> float(out["agreement"])
        0.75
    """

    higher_is_better = True
    directions: ClassVar[dict[str, bool | None]] = {"agreement": True, "speech": True}
    _sum_states = ("agree", "frames", "agree_speech", "frames_speech")

    def update(self, visemes: Any, target_visemes: Any) -> None:
        """Adds clips: (B, T, V) rendered and true viseme weights."""
        self._add(_viseme_agreement_update(visemes, target_visemes))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_viseme_agreement_compute(*self._sums()))
