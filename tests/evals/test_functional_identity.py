"""ID-dlib: dlib face descriptors of the embedded astronaut, no-face images, distance matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar.companion import EMBEDDED_ASTRONAUT, load_image
from avatar.errors import WeightsMissingError
from evals.functional.identity import SAME_PERSON_THRESHOLD, DlibFaceEmbedder, identity_distance

IMAGE_LIMITS = {"max_megapixels": 40.0, "max_side": 4096}  # avatar.companion.load_image


@pytest.fixture(scope="module")
def embedder() -> DlibFaceEmbedder:
    return DlibFaceEmbedder()


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return load_image(EMBEDDED_ASTRONAUT, **IMAGE_LIMITS)


def test_same_face_shifted_and_brightened_is_close(
    embedder: DlibFaceEmbedder, astronaut: np.ndarray
) -> None:
    a = embedder.embed(astronaut)
    moved = np.roll(astronaut, (6, -5), axis=(0, 1)).astype(np.int16) + 20
    b = embedder.embed(np.clip(moved, 0, 255).astype(np.uint8))
    assert a.shape == b.shape == (128,) and a.dtype == b.dtype == np.float64
    assert identity_distance(a, b)[0, 0] < 0.4 < SAME_PERSON_THRESHOLD


def test_no_face_gives_none(embedder: DlibFaceEmbedder) -> None:
    from skimage import data

    assert embedder.embed(data.chelsea()) is None  # a cat
    assert embedder.embed(np.full((64, 64, 3), 128, np.uint8)) is None
    with pytest.raises(ValueError):
        embedder.embed(np.zeros((64, 64), np.uint8))


def test_face_in_wider_canvas_with_a_second_face(
    embedder: DlibFaceEmbedder, astronaut: np.ndarray
) -> None:
    import cv2

    canvas = np.full((512, 1024, 3), 90, np.uint8)
    canvas[:, :512] = astronaut
    canvas[300:460, 700:860] = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    a, b = embedder.embed(astronaut), embedder.embed(canvas)
    assert a.shape == b.shape == (128,)  # the astronaut's face: the larger of the two
    assert identity_distance(a, b)[0, 0] < 0.1


def test_identity_distance_matrix() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 128)), rng.normal(size=(3, 128))
    d = identity_distance(a, b)
    naive = np.linalg.norm(a[:, None] - b[None], axis=-1)
    assert d.shape == (4, 3) and np.allclose(d, naive)
    assert np.allclose(identity_distance(a, a).diagonal(), 0.0, atol=1e-6)
    with pytest.raises(ValueError):
        identity_distance(a, rng.normal(size=(3, 64)))


def test_missing_weights_raise(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    from evals.functional import identity

    fake = importlib.machinery.ModuleSpec(
        "face_recognition_models", None, origin=str(tmp_path / "__init__.py")
    )
    monkeypatch.setattr(identity.importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(WeightsMissingError, match="shape_predictor_5_face_landmarks.dat"):
        DlibFaceEmbedder()
    monkeypatch.setattr(identity.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsMissingError, match="face-recognition-models"):
        DlibFaceEmbedder()
