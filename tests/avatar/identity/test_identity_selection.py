"""Scoring and choosing sources, the alignment transform and masks, on synthetic landmarks."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from avatar.identity import FaceObservation, detect_faces
from avatar.identity import topology as topo
from avatar.identity.alignment import alignment_matrix, transform_landmarks, warp_portrait
from avatar.identity.masks import polygon_mask
from avatar.identity.selection import score_face, select_source
from avatar.renderers.meshwarp.mouth_colours import mouth_interior


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray) -> FaceObservation:
    return detect_faces(astronaut)[0]


def _with_gap(face: FaceObservation, gap_px: float) -> FaceObservation:
    marks = face.landmarks.copy()
    mid = (marks[topo.LIP_INNER_TOP] + marks[topo.LIP_INNER_BOTTOM]) / 2
    marks[topo.LIP_INNER_TOP, :2] = mid[:2] - [0.0, gap_px / 2]
    marks[topo.LIP_INNER_BOTTOM, :2] = mid[:2] + [0.0, gap_px / 2]
    return dataclasses.replace(face, landmarks=marks)


def test_closed_neutral_frontal_scores_higher(face: FaceObservation) -> None:
    closed, opened = _with_gap(face, 0.0), _with_gap(face, 12.0)
    s_closed, s_open = score_face(closed, target_eye_px=150), score_face(opened, target_eye_px=150)
    assert s_closed["mouth_closed"] == 1.0 and s_open["mouth_closed"] < 0.1
    assert s_closed["score"] > s_open["score"]
    assert "closed" in s_closed["reason"] and "open" in s_open["reason"]
    calm = dataclasses.replace(
        closed, blendshapes={**closed.blendshapes, "mouthSmileLeft": 0.0, "mouthSmileRight": 0.0}
    )
    assert score_face(calm, target_eye_px=150)["neutral"] > s_closed["neutral"]
    turned = dataclasses.replace(closed, pose=(30.0, 0.0, 0.0))
    assert score_face(turned, target_eye_px=150)["frontal"] < 0.4
    assert score_face(closed, target_eye_px=30)["size"] == 1.0


def test_select_source_skips_unusable(
    face: FaceObservation, caplog: pytest.LogCaptureFixture
) -> None:
    tilted = dataclasses.replace(face, pose=(0.0, 0.0, 25.0))
    with caplog.at_level(logging.INFO, logger="avatar.identity.selection"):
        best, rows = select_source(
            [None, tilted, face],
            target_eye_px=150,
            paths=["a.png", "b.png", "c.png"],
            problems=["a.png: no face found", None, None],
        )
    assert best == 2 and [r["chosen"] for r in rows] == [False, False, True]
    assert rows[0]["score"] is None and rows[0]["reason"] == "a.png: no face found"
    assert "c.png" in caplog.records[0].getMessage()


def test_alignment_matrix_levels_and_scales(face: FaceObservation) -> None:
    mat = alignment_matrix(face.landmarks, size=400, eye_center=(0.5, 0.45), eye_distance=0.25)
    moved = transform_landmarks(face.landmarks, mat)
    left, right = moved[topo.EYE_L_OUTER, :2], moved[topo.EYE_R_OUTER, :2]
    assert left[1] == pytest.approx(right[1], abs=1e-3)
    assert right[0] - left[0] == pytest.approx(100.0, abs=1e-3)
    assert (left + right) / 2 == pytest.approx([200.0, 180.0], abs=1e-3)
    scale = 100.0 / face.eye_distance
    assert moved[:, 2] == pytest.approx(face.landmarks[:, 2] * scale, rel=1e-4, abs=1e-3)


def test_warp_downscale_keeps_geometry(astronaut: np.ndarray, face: FaceObservation) -> None:
    mat = alignment_matrix(face.landmarks, size=64, eye_distance=0.3)  # shrinks ~3x
    small = warp_portrait(astronaut, mat, size=64)
    big = warp_portrait(astronaut, mat * np.array([[4.0], [4.0]]), size=256)
    assert small.shape == (64, 64, 3)
    ref = big.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3))
    assert np.abs(small.astype(float) - ref).mean() < 8.0


def test_polygon_mask_and_closed_mouth(face: FaceObservation, astronaut: np.ndarray) -> None:
    square = np.array([[10, 10], [30, 10], [30, 30], [10, 30]], float)
    hard = polygon_mask(square, 40)
    assert hard.sum() == 21 * 21 and hard[20, 20] == 1.0  # pixel centres on the edges count
    soft = polygon_mask(square, 40, dilate_px=2, feather_px=2)
    assert 0.0 < soft[10, 7] < 1.0 and soft[20, 20] == pytest.approx(1.0, abs=1e-3)
    closed = _with_gap(face, 0.5)
    mouth = mouth_interior(astronaut, closed.landmarks)
    assert mouth.source_gap == 0.0
    assert sum(mouth.cavity_color) < sum(mouth.lip_color) < sum(mouth.teeth_color)
