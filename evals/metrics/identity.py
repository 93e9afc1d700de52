"""Identity metrics against a companion's reference images: ID-dlib distance, retention, drift.

Frames are sampled every ``sample_every`` frames and embedded by an injected face embedder
(anything with ``embed(image) -> descriptor | None``); the default lazily loads dlib's 128-D
ResNet (:class:`~evals.functional.identity.DlibFaceEmbedder`, "ID-dlib": not ArcFace CSIM) once
per process, behind a memo shared by all identity metrics, so each frame is embedded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import torch

from evals.functional._clips import as_clips, as_numpy, per_clip_scalars, sampled
from evals.functional._clips import to_rgb8 as _to_rgb8
from evals.functional.identity import (
    DlibFaceEmbedder,
    FaceEmbedder,
    MemoEmbedder,
)
from evals.functional.identity_consistency import (
    _identity_distance_compute,
    _identity_distance_update,
    _identity_drift_compute,
    _identity_drift_update,
    _identity_retention_update,
)
from evals.metrics._backbone import BackboneMetric
from evals.metrics.base import MetricNotApplicable

__all__ = ["IdentityDistance", "IdentityDrift", "IdentityRetention", "default_embedder"]


@lru_cache(maxsize=1)
def default_embedder() -> MemoEmbedder:
    """The process-wide ID-dlib embedder (loaded on first use; raises WeightsMissingError)."""
    return MemoEmbedder(DlibFaceEmbedder())


class _IdentityMetric(BackboneMetric):
    """Shared sampling and embedding of the identity metrics.

    The face embedder is the metric's backbone: copies share it (a loaded model and its memo).
    """

    def __init__(
        self, *, embedder: FaceEmbedder | None = None, sample_every: int, **kwargs: Any
    ) -> None:
        if not isinstance(sample_every, int) or sample_every < 1:
            raise ValueError(f"sample_every must be an int >= 1, got {sample_every!r}")
        super().__init__(embedder, **kwargs)
        self.sample_every = sample_every

    def _load(self) -> FaceEmbedder:
        return default_embedder()

    def _embed(
        self, video: Any, references: Any
    ) -> tuple[list[np.ndarray], np.ndarray, list[np.ndarray]]:
        """(per clip (N, D) descriptors, NaN rows: no face; (R, D) references; frame indices)."""
        emb = self._backbone()
        refs_in: Sequence[Any] = (
            list(references)
            if not isinstance(references, np.ndarray | torch.Tensor)
            else list(as_numpy(references, None))
        )
        refs = [
            e for e in (emb.embed(_to_rgb8(as_numpy(r, None))) for r in refs_in) if e is not None
        ]
        if not refs:
            raise MetricNotApplicable(f"no face found in any of {len(refs_in)} reference images")
        dim = len(refs[0])
        clips, indices = [], []
        for clip in as_clips(video, 4, "video", dtype=None):  # arrays or streamed clips
            idx_list, rows = [], []
            for i, frame in sampled(clip, self.sample_every):  # frames 0, k, 2k, ... one by one
                idx_list.append(i)
                rows.append(emb.embed(_to_rgb8(frame)))
            idx = np.array(idx_list, np.int64)
            clips.append(
                np.stack([np.full(dim, np.nan) if r is None else r for r in rows])
                if rows
                else np.zeros((0, dim))
            )
            indices.append(idx)
        return clips, np.stack(refs), indices


class IdentityDistance(_IdentityMetric):
    """ID-dlib distance of sampled frames to the closest reference image.

    Inputs to ``update``: ``video`` (B, T, 3, H, W) float in [0, 1] or uint8, and
    ``references``: R images ((H, W, 3) uint8 arrays of any size, or an (R, 3, H, W) tensor).
    Outputs: ``distance`` mean closest distance (lower is better; < 0.6 reads as the same
    person), ``max``, ``same_person`` fraction below the threshold, ``no_face`` fraction of
    sampled frames without a face.

    Args:
        embedder: face embedder; None loads dlib's (shared, memoised) on first use.
        sample_every: embed frames 0, k, 2k, ... (>= 1).
        threshold: same-person distance (dlib: 0.6).

    Example:
        >>> class Mean:  # a stand-in embedder: the mean colour
        ...     def embed(self, img):
        ...         return img.reshape(-1, 3).mean(0) / 255.0
        >>> video = torch.full((1, 4, 3, 8, 8), 0.5)
        >>> ref = np.full((8, 8, 3), 128, np.uint8)
        >>> metric = IdentityDistance(embedder=Mean(), sample_every=2, threshold=0.6)
        >>> metric(video, [ref])["distance"].item()
        0.0
    """

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {
        "distance": False,
        "max": False,
        "same_person": True,
        "no_face": False,
    }
    _sum_states = ("s_dist", "n_face", "n_frames", "n_same")
    _max_states = ("worst",)

    def __init__(
        self,
        *,
        embedder: FaceEmbedder | None = None,
        sample_every: int,
        threshold: float,
        **kwargs: Any,
    ) -> None:
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        super().__init__(embedder=embedder, sample_every=sample_every, **kwargs)
        self.threshold = threshold

    def update(self, video: Any, references: Any) -> None:
        """Adds clips: (B, T, 3, H, W) video against the companion's reference images."""
        clips, refs, _ = self._embed(video, references)
        *sums, worst = _identity_distance_update(clips, refs, self.threshold)
        self._add(sums)
        self._raise_max("worst", worst)

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_identity_distance_compute(*self._sums(), float(self.worst)))


class IdentityRetention(_IdentityMetric):
    """Reference spread over render-to-reference distance (>= 1: as alike as the images are).

    Inputs to ``update``: as :class:`IdentityDistance`, with at least two reference images with
    a face (else :class:`~evals.metrics.base.MetricNotApplicable`). Output: ``ratio`` mean over
    clips (higher is better).

    Args:
        embedder: face embedder; None loads dlib's (shared, memoised) on first use.
        sample_every: embed frames 0, k, 2k, ... (>= 1).

    Example:
        >>> class Mean:
        ...     def embed(self, img):
        ...         return img.reshape(-1, 3).mean(0) / 255.0
        >>> refs = [np.full((8, 8, 3), v, np.uint8) for v in (0, 102)]  # 0.4 * sqrt(3) apart
        >>> video = torch.full((1, 2, 3, 8, 8), 0.2)
        >>> metric = IdentityRetention(embedder=Mean(), sample_every=10)
        >>> round(metric(video, refs)["ratio"].item(), 2)
        2.0
    """

    higher_is_better = True
    directions: ClassVar[dict[str, bool | None]] = {"ratio": True}
    _sum_states = ("s_ratio", "n_clips")

    def update(self, video: Any, references: Any) -> None:
        """Adds clips: (B, T, 3, H, W) video against >= 2 reference images."""
        clips, refs, _ = self._embed(video, references)
        if len(refs) < 2:
            raise MetricNotApplicable(
                f"identity retention needs >= 2 reference images with a face, got {len(refs)}"
            )
        self._add(_identity_retention_update(clips, refs))

    def compute(self) -> dict[str, torch.Tensor]:
        s_ratio, n = self._sums()
        return self._tensors({"ratio": s_ratio / n if n else float("nan")})


class IdentityDrift(_IdentityMetric):
    """Trend of the ID-dlib distance to the references over each clip.

    Inputs to ``update``: as :class:`IdentityDistance`, plus ``fps`` (scalar or (B,)). Outputs:
    ``slope_per_min`` (> 0 drifts away; lower is better) and ``late_minus_early`` distance.

    Args:
        embedder: face embedder; None loads dlib's (shared, memoised) on first use.
        sample_every: embed frames 0, k, 2k, ... (>= 1).
        min_faces: fewest faces for a clip's trend to count (>= 2).

    Example:
        >>> class Mean:
        ...     def embed(self, img):
        ...         return img.reshape(-1, 3).mean(0) / 255.0
        >>> video = torch.linspace(0, 1, 30).reshape(1, 30, 1, 1, 1).expand(1, 30, 3, 4, 4)
        >>> metric = IdentityDrift(embedder=Mean(), sample_every=5, min_faces=3)
        >>> out = metric(video, [np.zeros((4, 4, 3), np.uint8)], 30.0)
        >>> out["slope_per_min"].item() > 0
        True
    """

    higher_is_better = False
    directions: ClassVar[dict[str, bool | None]] = {
        "slope_per_min": False,
        "late_minus_early": False,
    }
    _sum_states = ("s_slope", "s_late", "n_clips")

    def __init__(
        self,
        *,
        embedder: FaceEmbedder | None = None,
        sample_every: int,
        min_faces: int,
        **kwargs: Any,
    ) -> None:
        if not isinstance(min_faces, int) or min_faces < 2:
            raise ValueError(f"min_faces must be an int >= 2, got {min_faces!r}")
        super().__init__(embedder=embedder, sample_every=sample_every, **kwargs)
        self.min_faces = min_faces

    def update(self, video: Any, references: Any, fps: Any) -> None:
        """Adds clips: (B, T, 3, H, W) video against the references, at ``fps``."""
        clips, refs, indices = self._embed(video, references)
        rates = per_clip_scalars(fps, len(clips), "fps")
        times = [idx / rate for idx, rate in zip(indices, rates, strict=True)]
        self._add(_identity_drift_update(clips, refs, times, self.min_faces))

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_identity_drift_compute(*self._sums()))
