"""ID-dlib: identity distance with dlib's 128-D face descriptor (ResNet-34, face_recognition).

The metric is the Euclidean distance between dlib face descriptors. dlib's model was trained so
that two photos of the same person are usually closer than 0.6 (99.38% on LFW at that threshold);
the same frame re-encoded scores about 0.0-0.1. ID-dlib is *not* comparable to the ArcFace cosine
similarity (CSIM) papers report; it is the identity check that runs offline with the weights the
``eval`` extra installs (``face-recognition-models``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avatar.errors import WeightsMissingError

log = logging.getLogger(__name__)

__all__ = [
    "SAME_PERSON_THRESHOLD",
    "DlibFaceEmbedder",
    "FaceEmbedder",
    "MemoEmbedder",
    "identity_distance",
]

SAME_PERSON_THRESHOLD = 0.6
"""ID-dlib distances below this are the same person by dlib's own calibration."""
EMBEDDING_DIM = 128


def _model_paths() -> tuple[Path, Path]:
    """(5-point shape predictor, ResNet recognition model) shipped by face_recognition_models.

    The files are located without importing the package: its ``__init__`` needs
    ``pkg_resources``, which current setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise WeightsMissingError(
            "ID-dlib needs dlib's face models from 'face-recognition-models': run "
            "`pip install -e .[eval]` (or `pip install face-recognition-models==0.3.0`)"
        )
    models = Path(spec.origin).parent / "models"
    paths = (
        models / "shape_predictor_5_face_landmarks.dat",
        models / "dlib_face_recognition_resnet_model_v1.dat",
    )
    for path in paths:
        if not path.is_file():
            raise WeightsMissingError(
                f"dlib model file {path} is missing: reinstall face-recognition-models"
            )
    return paths


class DlibFaceEmbedder:
    """ID-dlib face embedder: dlib HOG face detector, 5-point alignment, ResNet 128-D descriptor.

    Args:
        upsample: times the detector upsamples the image (1 finds faces down to ~40 px wide).
        num_jitters: dlib's re-sampling count for the descriptor (0 or 1: none; more is slower
            and slightly more stable).

    Raises:
        WeightsMissingError: dlib or its model files are not installed.

    Example:
        >>> from avatar.companion import EMBEDDED_ASTRONAUT, load_image
        >>> image = load_image(EMBEDDED_ASTRONAUT, max_megapixels=40, max_side=4096)
        >>> DlibFaceEmbedder().embed(image).shape
        (128,)
    """

    def __init__(self, *, upsample: int = 1, num_jitters: int = 0) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise WeightsMissingError(
                "ID-dlib needs dlib: run `pip install -e .[eval]` (or `pip install dlib-bin`)"
            ) from exc
        shape_path, resnet_path = _model_paths()
        self._detector: Any = dlib.get_frontal_face_detector()
        self._shape: Any = dlib.shape_predictor(str(shape_path))
        self._resnet: Any = dlib.face_recognition_model_v1(str(resnet_path))
        self.upsample, self.num_jitters = int(upsample), int(num_jitters)
        log.debug("loaded dlib face models from %s", resnet_path.parent)

    def embed(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """The descriptor of the largest face in an image.

        Args:
            image_rgb: (H, W, 3) uint8 RGB.

        Returns:
            (128,) float64 descriptor (dlib's, not normalised), or None when the
            detector finds no face.
        """
        img = np.ascontiguousarray(image_rgb)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
        rects = list(self._detector(img, self.upsample))
        if not rects:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = self._shape(img, rect)
        desc = self._resnet.compute_face_descriptor(img, shape, self.num_jitters)
        return np.asarray(desc, dtype=np.float64)

    def embed_many(self, images: list[np.ndarray] | np.ndarray) -> list[np.ndarray | None]:
        """:meth:`embed` of each (H, W, 3) uint8 image, None where no face is found."""
        return [self.embed(img) for img in images]


def identity_distance(embeddings_a: np.ndarray, embeddings_b: np.ndarray) -> np.ndarray:
    """ID-dlib: pairwise Euclidean distances between dlib face descriptors.

    Args:
        embeddings_a: (N, 128) or one (128,) descriptor.
        embeddings_b: (M, 128) or one (128,) descriptor.

    Returns:
        (N, M) float64 distances >= 0; below :data:`SAME_PERSON_THRESHOLD` (0.6) reads as the
        same person.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> a = rng.normal(size=(3, 128)); identity_distance(a, a).diagonal().round(6)
        array([0., 0., 0.])
        >>> identity_distance(a, a[:2]).shape
        (3, 2)
    """
    a = np.atleast_2d(np.asarray(embeddings_a, np.float64))
    b = np.atleast_2d(np.asarray(embeddings_b, np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"need (N, D) and (M, D) embeddings, got {a.shape} and {b.shape}")
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    dist: np.ndarray = np.sqrt(np.clip(sq, 0.0, None))
    return dist


class FaceEmbedder(Protocol):
    """Anything that maps an (H, W, 3) uint8 RGB image to a face descriptor (or None: no face)."""

    def embed(self, image_rgb: np.ndarray) -> np.ndarray | None: ...


class MemoEmbedder:
    """Remembers the descriptors of the last ``capacity`` images, keyed by their content.

    Several identity metrics look at the same sampled frames and references; with one shared
    memo each image is embedded once (dlib takes ~0.1 s per face on CPU).

    Args:
        embedder: the embedder to wrap.
        capacity: images remembered (least recently used are dropped).

    Example:
        >>> class Mean:
        ...     calls = 0
        ...     def embed(self, img):
        ...         self.calls += 1
        ...         return img.reshape(-1, 3).mean(0)
        >>> memo = MemoEmbedder(Mean()); img = np.zeros((4, 4, 3), np.uint8)
        >>> _ = memo.embed(img), memo.embed(img.copy()); memo.embedder.calls
        1
    """

    def __init__(self, embedder: FaceEmbedder, capacity: int = 4096) -> None:
        self.embedder = embedder
        self.capacity = int(capacity)
        self._memo: OrderedDict[bytes, np.ndarray | None] = OrderedDict()

    def embed(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """The wrapped embedder's descriptor of ``image_rgb``, computed once per content."""
        img = np.ascontiguousarray(image_rgb)
        h = hashlib.blake2b(img.data, digest_size=16)
        h.update(repr((img.shape, img.dtype.str)).encode())
        key = h.digest()
        if key in self._memo:
            self._memo.move_to_end(key)
            return self._memo[key]
        emb = self.embedder.embed(img)
        self._memo[key] = emb
        if len(self._memo) > self.capacity:
            self._memo.popitem(last=False)
        return emb
