"""ArcFace CSIM against the companion's reference images, from a user-supplied ONNX model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from evals.functional.arcface import (
    ArcFaceEmbedder,
    _arcface_csim_update,
    _csim_compute,
    load_arcface,
)
from evals.metrics._backbone import BackboneMetric
from evals.weights import WeightsRegistry

__all__ = ["ArcFaceCSIM"]


class ArcFaceCSIM(BackboneMetric):
    """ArcFace CSIM: cosine similarity of aligned rendered faces to the reference images.

    Frames 0, k, 2k, ... are aligned to the 112x112 ArcFace template with 5 points from their
    MediaPipe landmarks and embedded by the ONNX model in the weights directory (registry
    ``arcface``); absent, ``update`` raises :class:`~avatar.errors.WeightsMissingError` (suites:
    skipped with the registry's reason).

    Inputs to ``update``: ``video`` (B, T, 3, H, W) float in [0, 1] or uint8, ``landmarks``
    (B, T, 478, 3) in pixels (NaN rows: no face), ``references`` R images ((H, W, 3) uint8),
    optionally ``reference_landmarks`` R (478, 2|3) arrays. Outputs: ``csim`` mean cosine
    similarity to the references in [-1, 1] (higher is better), ``best`` to the closest
    reference, ``no_face`` fraction of sampled frames without landmarks.

    Args:
        embedder: anything with ``embed((N, 112, 112, 3) uint8) -> (N, D) unit vectors``; None
            loads :func:`~evals.functional.arcface.load_arcface` on first use.
        sample_every: embed every k-th frame (>= 1).
        registry: weights registry (None: ``configs/weights/registry.yaml``).
        locate: reference image -> (478, 3) landmarks or None (None: MediaPipe).

    Example:
        >>> class Mean:  # a stand-in embedder: the mean colour of the crop
        ...     def embed(self, crops):
        ...         e = crops.reshape(len(crops), -1, 3).mean(1)
        ...         return e / np.linalg.norm(e, axis=1, keepdims=True)
        >>> lm = np.zeros((478, 3)); lm[[468, 473, 1, 61, 291], :2] = [[3, 3], [7, 3], [5, 5],
        ...     [3, 7], [7, 7]]
        >>> img = np.full((10, 10, 3), 200, np.uint8)
        >>> video = torch.from_numpy(img).permute(2, 0, 1)[None, None]
        >>> out = ArcFaceCSIM(embedder=Mean(), sample_every=1)(
        ...     video, torch.from_numpy(lm)[None, None], [img], reference_landmarks=[lm])
        >>> round(float(out["csim"]), 6)
        1.0
    """

    higher_is_better = True
    directions: ClassVar[dict[str, bool | None]] = {"csim": True, "best": True, "no_face": False}
    _sum_states = ("s_mean", "s_best", "faces", "sampled")

    def __init__(
        self,
        embedder: ArcFaceEmbedder | None = None,
        *,
        sample_every: int,
        registry: WeightsRegistry | None = None,
        locate: Callable[[np.ndarray], np.ndarray | None] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(sample_every, int) or sample_every < 1:
            raise ValueError(f"sample_every must be an int >= 1, got {sample_every!r}")
        super().__init__(embedder, **kwargs)
        self.sample_every, self.registry, self.locate = sample_every, registry, locate

    def _load(self) -> ArcFaceEmbedder:
        return load_arcface(self.registry)

    def update(
        self, video: Any, landmarks: Any, references: Any, reference_landmarks: Any = None
    ) -> None:
        """Adds clips: (B, T, 3, H, W) video, (B, T, 478, 3) landmarks, R reference images."""
        self._add(
            _arcface_csim_update(
                video,
                landmarks,
                references,
                self._backbone(),
                reference_landmarks=reference_landmarks,
                sample_every=self.sample_every,
                locate=self.locate,
            )
        )

    def compute(self) -> dict[str, torch.Tensor]:
        return self._tensors(_csim_compute(*self._sums()))
