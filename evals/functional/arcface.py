"""ArcFace CSIM: cosine similarity of ArcFace embeddings of rendered frames to reference images.

The ArcFace model (Deng et al. 2019) is user-supplied ONNX (registry ``arcface``, e.g.
insightface's ``w600k_r50.onnx``; non-commercial terms), run with onnxruntime. Faces are aligned
to the standard 112x112 ArcFace template by a similarity transform of 5 points taken from the
MediaPipe landmarks :class:`~evals.landmarks.FaceTrack` provides (iris centres, nose tip, mouth
corners), normalised as ``(x - 127.5) / 127.5`` RGB NCHW, and embedded; embeddings are
L2-normalised. CSIM is the cosine similarity of a frame to the reference images.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from avatar.errors import WeightsMissingError
from evals.errors import MetricNotApplicable
from evals.functional._clips import StreamedVideo, as_numpy, sampled, to_rgb8

if TYPE_CHECKING:
    from evals.weights import WeightsRegistry

log = logging.getLogger(__name__)

__all__ = [
    "ARCFACE_TEMPLATE",
    "FIVE_POINTS",
    "ArcFaceEmbedder",
    "align_face",
    "five_points",
    "load_arcface",
    "similarity_transform",
]

ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float64,
)
"""(5, 2) pixels in the 112x112 crop: eye, eye, nose tip, mouth corner, mouth corner (image
left to right), as in insightface's ``arcface_dst``."""

FIVE_POINTS = (468, 473, 1, 61, 291)
"""MediaPipe indices in template order: iris centres (image left, right), nose tip, mouth
corners (image left, right). Without iris points (468 landmarks) the eye corners are averaged."""

_EYES_NO_IRIS = ((33, 133), (362, 263))
_EMBED_BATCH = 64  # aligned crops per ONNX call


def five_points(landmarks: np.ndarray) -> np.ndarray | None:
    """(5, 2) ArcFace alignment points from (P, 2|3) MediaPipe landmarks in pixels, or None."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    if lm.shape[0] > max(FIVE_POINTS):
        pts = lm[list(FIVE_POINTS)]
    else:
        eyes = [lm[list(pair)].mean(0) for pair in _EYES_NO_IRIS]
        pts = np.stack([*eyes, lm[1], lm[61], lm[291]])
    return pts if np.isfinite(pts).all() else None


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (rotation, uniform scale, shift) mapping src to dst.

    Umeyama (1991) on (N, 2) point sets.

    Example:
        >>> src = np.array([[0.0, 0], [1, 0], [0, 1]])
        >>> np.round(similarity_transform(src, 2 * src + 3), 6).tolist()
        [[2.0, 0.0, 3.0], [0.0, 2.0, 3.0]]
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ e @ vt
    scale = np.trace(np.diag(sig) @ e) / s.var(0).sum()
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def align_face(image: np.ndarray, points: np.ndarray, size: int = 112) -> np.ndarray:
    """The (size, size, 3) uint8 ArcFace crop of an (H, W, 3) uint8 RGB image, given 5 points."""
    m = similarity_transform(np.asarray(points, np.float64), ARCFACE_TEMPLATE * size / 112.0)
    return cv2.warpAffine(np.ascontiguousarray(image), m, (size, size), borderValue=0.0)


class ArcFaceEmbedder:
    """An ArcFace ONNX model: aligned (N, 112, 112, 3) uint8 RGB crops -> (N, D) unit vectors.

    Args:
        model_path: the ONNX file (input (N, 3, 112, 112) float32, output (N, D)).
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, model_path: str | Path, *, threads: int = 2) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(model_path), opts, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    @staticmethod
    def preprocess(crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 RGB -> (N, 3, 112, 112) float32 in [-1, 1]."""
        x = (np.asarray(crops, np.float32) - 127.5) / 127.5
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 aligned crops -> (N, D) float64 L2-normalised embeddings."""
        if len(crops) == 0:
            return np.zeros((0, 0))
        out = self.session.run(None, {self.input_name: self.preprocess(crops)})[0]
        out = np.asarray(out, np.float64).reshape(len(crops), -1)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def load_arcface(registry: WeightsRegistry | None = None) -> ArcFaceEmbedder:
    """The ArcFace embedder from the weights registry (``arcface``).

    Raises:
        WeightsMissingError: the model is absent (with the registry's reason).
    """
    if registry is None:
        from evals.weights import active_registry

        registry = active_registry()
    path = registry.resolve("arcface", required=False)
    if path is None:
        raise WeightsMissingError(str(registry.reason("arcface")).removeprefix("skipped: "))
    log.info("ArcFace model: %s", path)
    return ArcFaceEmbedder(path)


def _csim_compute(s_mean: float, s_best: float, n: float, n_sampled: float) -> dict[str, float]:
    nan = float("nan")
    return {
        "csim": s_mean / n if n else nan,
        "best": s_best / n if n else nan,
        "no_face": 1.0 - n / n_sampled if n_sampled else nan,
    }


def csim_from_embeddings(frames: list[np.ndarray], refs: np.ndarray) -> dict[str, float]:
    """CSIM of per-clip (N_b, D) unit frame embeddings to (R, D) unit reference embeddings.

    Returns:
        ``csim``: mean over frames of the mean cosine similarity to the references (in
        [-1, 1], higher is better); ``best``: the same with the closest reference; ``no_face``
        is 0 here (frames without a face are dropped before embedding).

    Example:
        >>> refs = np.eye(3)[:1]
        >>> csim_from_embeddings([np.eye(3)[:2]], refs)
        {'csim': 0.5, 'best': 0.5, 'no_face': 0.0}
    """
    return _csim_compute(*_csim_sums(frames, refs, 0))


def _csim_sums(
    frames: list[np.ndarray], refs: np.ndarray, missing: int
) -> tuple[float, float, float, float]:
    s_mean = s_best = n = 0.0
    for f in frames:
        if len(f):
            sims = f @ refs.T  # (N, R)
            s_mean, s_best = s_mean + sims.mean(1).sum(), s_best + sims.max(1).sum()
            n += len(f)
    return float(s_mean), float(s_best), n, n + missing


def _track_image(image: np.ndarray) -> np.ndarray | None:
    """(478, 3) MediaPipe landmarks of one (H, W, 3) uint8 image, or None (no face)."""
    from evals.landmarks import track_video

    track = track_video(image[None], fps=1.0)
    return track.landmarks[0] if track.found[0] else None


def _rgb8(img: Any) -> np.ndarray:
    """(3, H, W) or (H, W, 3), uint8 or float in [0, 1] -> (H, W, 3) uint8."""
    return to_rgb8(as_numpy(img, None))


def _arcface_csim_update(
    video: Any,
    landmarks: Any,
    references: Any,
    embedder: ArcFaceEmbedder,
    *,
    reference_landmarks: Any = None,
    sample_every: int = 10,
    locate: Any = None,
) -> tuple[float, float, float, float]:
    """Sums: (mean-reference CSIM, closest-reference CSIM, faces, sampled frames).

    Args:
        video: (B, T, 3, H, W) float in [0, 1] or uint8.
        landmarks: (B, T, P, 2|3) MediaPipe landmarks in pixels (NaN rows where no face).
        references: R reference images ((H, W, 3) uint8 or (3, H, W) float).
        embedder: an :class:`ArcFaceEmbedder` (or anything with ``embed(crops)``).
        reference_landmarks: R (P, 2|3) landmarks of the references (None: ``locate``).
        sample_every: frames 0, k, 2k, ... are embedded.
        locate: image -> landmarks or None (default: MediaPipe on the image).

    Raises:
        MetricNotApplicable: no reference image has a face.
    """
    locate = locate or _track_image
    refs = [_rgb8(r) for r in references]
    ref_lms = (
        list(reference_landmarks) if reference_landmarks is not None else [locate(r) for r in refs]
    )
    crops = [
        align_face(r, p)
        for r, lm in zip(refs, ref_lms, strict=True)
        if lm is not None and (p := five_points(np.asarray(lm))) is not None
    ]
    if not crops:
        raise MetricNotApplicable(f"no face found in any of {len(refs)} reference images")
    ref_emb = embedder.embed(np.stack(crops))
    clips = [video] if isinstance(video, StreamedVideo) else list(video)
    lms = list(landmarks)
    if len(clips) != len(lms):
        raise ValueError(f"video has {len(clips)} clips but landmarks has {len(lms)}")
    frames, missing = [], 0
    for clip, lm in zip(clips, lms, strict=True):
        lm = np.asarray(lm.detach().cpu() if hasattr(lm, "detach") else lm, np.float64)
        if len(lm) != len(clip):
            raise ValueError(f"video and landmarks differ in length: {len(clip)} vs {len(lm)}")
        faces, embedded = [], []
        for i, frame in sampled(clip, sample_every):  # arrays or streamed clips, frame by frame
            pts = five_points(lm[i])
            if pts is None:
                missing += 1
                continue
            faces.append(align_face(_rgb8(frame), pts))
            if len(faces) == _EMBED_BATCH:  # bounded memory on long clips
                embedded.append(embedder.embed(np.stack(faces)))
                faces = []
        if faces:
            embedded.append(embedder.embed(np.stack(faces)))
        frames.append(np.concatenate(embedded) if embedded else np.zeros((0, 0)))
    return _csim_sums(frames, ref_emb, missing)
