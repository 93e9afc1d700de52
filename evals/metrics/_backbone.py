"""Metrics over an injected (or lazily loaded) network: shared, not copied, by ``clone()``."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import torch

from evals.functional._clips import as_numpy, iter_rgb8
from evals.metrics.base import EvalMetric, MetricNotApplicable

__all__ = ["BackboneMetric", "ClipBackboneMetric"]


class BackboneMetric(EvalMetric):
    """An :class:`EvalMetric` holding a heavy model in ``self.backbone`` outside its states.

    The model is kept out of ``nn.Module`` registration (so it is not in ``state_dict`` and not
    merged) and shared by copies (the suite clones each metric into a worker).
    """

    def __init__(self, backbone: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        object.__setattr__(self, "backbone", backbone)

    def __deepcopy__(self, memo: dict[int, Any]) -> BackboneMetric:
        memo[id(self.backbone)] = self.backbone
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    def _load(self) -> Any:
        """The default model (raises ``WeightsMissingError`` when its weights are absent)."""
        raise NotImplementedError

    def _backbone(self) -> Any:
        if self.backbone is None:
            object.__setattr__(self, "backbone", self._load())
        return self.backbone


class ClipBackboneMetric(BackboneMetric):
    """A backbone metric of talking-head clips at 25 fps: per-clip outputs averaged over clips.

    Frames reach :meth:`_score_clip` one at a time (a clip may be a
    :class:`~evals.functional._clips.StreamedVideo`), so memory does not grow with the clip.
    Subclasses set ``outputs`` (their keys, in ``_sum_states`` order followed by ``clips``),
    ``label`` (for messages), ``min_frames`` (shorter clips are not applicable) and
    :meth:`_score_clip`.
    """

    fps: ClassVar[float] = 25.0
    label: ClassVar[str] = "this metric"
    outputs: ClassVar[tuple[str, ...]] = ()
    min_frames: ClassVar[int] = 1

    def _score_clip(
        self,
        frames: Iterable[np.ndarray],
        landmarks: np.ndarray,
        audio: np.ndarray,
        sample_rate: int,
        model: Any,
    ) -> dict[str, float] | None:
        """``outputs`` of one clip: T (H, W, 3) uint8 RGB frames in order, (T, P, 3) landmarks,
        (S,) audio (landmarks and audio in their given dtypes); None when no frame has a face."""
        raise NotImplementedError

    def update(self, video: Any, landmarks: Any, audio: Any, sample_rate: int, fps: float) -> None:
        """Adds clips: (B, T, 3, H, W) video (uint8, or float in [0, 1]; or B streamed clips),
        (B, T, P, 3) landmarks in pixels, (B, S) mono audio in [-1, 1] from frame 0."""
        if abs(float(fps) - self.fps) > 1e-3:
            raise MetricNotApplicable(f"{self.label} needs {self.fps:g} fps video, got {fps}")
        if len(video) != len(landmarks) or len(video) != len(audio):
            raise ValueError("video, landmarks and audio must hold the same number of clips")
        self._require_frames(list(video), self.min_frames, self.label)
        model = self._backbone()
        for clip, lm, wav in zip(video, landmarks, audio, strict=True):
            lm, wav = as_numpy(lm, None), as_numpy(wav, None)  # no float64 copies of long clips
            if len(clip) != len(lm):
                raise ValueError(f"{len(clip)} frames but {len(lm)} landmark rows")
            out = self._score_clip(iter_rgb8(clip), lm, wav, int(sample_rate), model)
            if out is None:
                raise MetricNotApplicable("no face in the clip")
            self._add([out[k] for k in self.outputs] + [1.0])

    def compute(self) -> dict[str, torch.Tensor]:
        *sums, n = self._sums()
        return self._tensors(
            {k: s / n if n else float("nan") for k, s in zip(self.outputs, sums, strict=True)}
        )
