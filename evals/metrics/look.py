"""Look metrics: defects of the rendered face seen in its pixels (seam, cavity edge, lids,
sharpness), measured on the frames where each applies (:mod:`evals.functional.look_clips`).

Each reads ``video`` and the suite's tracked ``landmarks`` (no tracking of its own) and
reports ``mean``, ``over`` (the fraction of measured frames past its validated threshold, see
:mod:`evals.functional.look`: the look is right when it is 0) and ``worst`` (or ``abs``). A
batch where no frame applies (no closed mouth, no closed eye ...) raises
:class:`~evals.metrics.base.MetricNotApplicable`, so a suite reports it as skipped.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from evals.functional._clips import as_clips
from evals.functional.look_clips import (
    _abs_compute,
    _edge_hardness_update,
    _lid_realism_update,
    _seam_brightness_update,
    _sharpness_match_update,
    _worst_compute,
)
from evals.metrics.base import EvalMetric, MetricNotApplicable

__all__ = ["EdgeHardness", "LidRealism", "SeamBrightness", "SharpnessMatch"]

MIN_FRAMES = 2
"""Fewest frames scored: a still is not a clip (as for flicker), and closed eyes are found
against the clip's own median openness."""


class _LookMetric(EvalMetric):
    """Sums (``total``, ``count``, ``n_over``) and a ``worst`` max state (from -inf)."""

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {"mean": False, "worst": False, "over": False}
    _sum_states = ("total", "count", "n_over")
    _what: ClassVar[str] = ""  # the frames it measures, for messages
    _name: ClassVar[str] = ""  # the metric, for messages

    def __init__(self, *, threshold: float, **kwargs: Any) -> None:
        if not math.isfinite(threshold):
            raise ValueError(f"threshold must be finite, got {threshold}")
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.add_state(
            "worst", default=torch.tensor(-math.inf, dtype=torch.float64), dist_reduce_fx="max"
        )

    def _check(self, video: Any) -> None:
        self._require_frames(as_clips(video, 4, "video", dtype=None), MIN_FRAMES, self._name)

    def _take(self, sums: tuple[float, float, float, float]) -> None:
        total, worst, count, n_over = sums
        if not count:
            raise MetricNotApplicable(f"no {self._what} in the clip")
        self._add((total, count, n_over))
        self._raise_max("worst", worst)

    def compute(self) -> dict[str, torch.Tensor]:
        total, count, n_over = self._sums()
        return self._tensors(_worst_compute(total, float(self.worst), count, n_over))


class SeamBrightness(_LookMetric):
    """Bright seam on the lip line of closed-mouth frames, luma excess over the lips beside it.

    Inputs to ``update``: ``video`` (B, T, 3, H, W) uint8 or float in [0, 1] (or streamed
    clips) and ``landmarks`` (B, T, 478, 2|3) in pixels. Outputs (lower is better): ``mean`` and
    ``worst`` seam brightness over closed frames (luma in [-1, 1]; a real lip line reads
    <= 0.02), ``over`` fraction of closed frames past ``threshold``.

    Args:
        closed_below: mouth aperture below which a frame is closed (> 0; the lip-sync suite's
            closure threshold, 0.06).
        threshold: visible seam, luma (:data:`~evals.functional.look.SEAM_VISIBLE`).

    Example:
        >>> m = SeamBrightness(closed_below=0.06, threshold=0.04)
        >>> m.update(torch.zeros(1, 2, 3, 8, 8), torch.full((1, 2, 478, 3), float("nan")))
        Traceback (most recent call last):
        ...
        evals.errors.MetricNotApplicable: no closed-mouth frame in the clip
    """

    _what = "closed-mouth frame"
    _name = "the seam metric"

    def __init__(self, *, closed_below: float, threshold: float, **kwargs: Any) -> None:
        if not closed_below > 0:
            raise ValueError(f"closed_below must be > 0, got {closed_below}")
        super().__init__(threshold=threshold, **kwargs)
        self.closed_below = float(closed_below)

    def update(self, video: Any, landmarks: Any) -> None:
        """Adds clips: (B, T, 3, H, W) frames and their (B, T, 478, 2|3) landmarks (not
        applicable under 2 frames)."""
        self._check(video)
        kw = dict(closed_below=self.closed_below, threshold=self.threshold)
        self._take(_seam_brightness_update(video, landmarks, **kw))


class EdgeHardness(_LookMetric):
    """Sharpness of the mouth interior's edges against the face's own, on open-mouth frames.

    Inputs as :class:`SeamBrightness`. Outputs (lower is better): ``mean`` and ``worst``
    ln(border sharpness / face sharpness) over open frames (0: as sharp as the face),
    ``over`` fraction of open frames past ``threshold``.

    Args:
        open_above: mouth aperture from which a frame is open (> 0).
        threshold: a cut-out edge, natural log (:data:`~evals.functional.look.MOUTH_HARDNESS`).
    """

    _what = "open-mouth frame"
    _name = "edge hardness"

    def __init__(self, *, open_above: float, threshold: float, **kwargs: Any) -> None:
        if not open_above > 0:
            raise ValueError(f"open_above must be > 0, got {open_above}")
        super().__init__(threshold=threshold, **kwargs)
        self.open_above = float(open_above)

    def update(self, video: Any, landmarks: Any) -> None:
        """Adds clips: (B, T, 3, H, W) frames and their (B, T, 478, 2|3) landmarks (not
        applicable under 2 frames)."""
        self._check(video)
        kw = dict(open_above=self.open_above, threshold=self.threshold)
        self._take(_edge_hardness_update(video, landmarks, **kw))


class LidRealism(_LookMetric):
    """Colour distance (CIELAB Delta E) of closed lids to the skin above the eye.

    A closed eye is one the renderer closed (``blinks`` >= 0.9, its motion track's closure per
    eye, given for clips rendered here: MediaPipe reads many render blinks as half open), else
    one whose openness is below ``ratio`` times the clip's median openness of that eye (the
    blink metric's rule); each closed eye of each frame counts once. Inputs as
    :class:`SeamBrightness`, and optionally ``blinks`` (B, T, 2) in [0, 1]. Outputs (lower is
    better): ``mean`` and ``worst`` Delta E, ``over`` fraction of closed eyes past
    ``threshold``.

    Args:
        ratio: closed below this fraction of the median openness, in (0, 1).
        threshold: not skin, Delta E (:data:`~evals.functional.look.LID_SKIN_DE`).
    """

    _what = "closed eye"
    _name = "lid realism"

    def __init__(self, *, ratio: float, threshold: float, **kwargs: Any) -> None:
        if not 0 < ratio < 1:
            raise ValueError(f"ratio must be in (0, 1), got {ratio}")
        super().__init__(threshold=threshold, **kwargs)
        self.ratio = float(ratio)

    def update(self, video: Any, landmarks: Any, blinks: Any | None = None) -> None:
        """Adds clips: (B, T, 3, H, W) frames, their (B, T, 478, 2|3) landmarks and, for clips
        rendered here, (B, T, 2) ``blinks`` (not applicable under 2 frames)."""
        self._check(video)
        kw = dict(ratio=self.ratio, threshold=self.threshold, blinks=blinks)
        self._take(_lid_realism_update(video, landmarks, **kw))


class SharpnessMatch(EvalMetric):
    """Sharpness of the mouth against the cheeks (re-blur loss log-ratio), on every face frame.

    Inputs as :class:`SeamBrightness`. Outputs: ``mean`` signed log-ratio (> 0: the mouth is
    sharper; no better direction), ``abs`` mean magnitude and ``over`` fraction of frames whose
    magnitude is past ``threshold`` (lower is better).

    Args:
        threshold: mismatch that shows, |ln| (:data:`~evals.functional.look.SHARPNESS_MATCH`).
    """

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {"mean": None, "abs": False, "over": False}
    _sum_states = ("total", "total_abs", "count", "n_over")

    def __init__(self, *, threshold: float, **kwargs: Any) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        super().__init__(**kwargs)
        self.threshold = float(threshold)

    def update(self, video: Any, landmarks: Any) -> None:
        """Adds clips: (B, T, 3, H, W) frames and their (B, T, 478, 2|3) landmarks (not
        applicable under 2 frames)."""
        clips = as_clips(video, 4, "video", dtype=None)
        self._require_frames(clips, MIN_FRAMES, "sharpness match")
        sums = _sharpness_match_update(video, landmarks, threshold=self.threshold)
        if not sums[2]:
            raise MetricNotApplicable("no frame with a face and textured cheeks in the clip")
        self._add(sums)

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_abs_compute(*self._sums()))
