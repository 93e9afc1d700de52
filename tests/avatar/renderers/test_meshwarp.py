"""Mesh-warp renderer: rest pose, mouth opening, blinks, streaming, determinism, errors.

Rendered frames are measured with MediaPipe (the same landmarker the evals use), so these
tests check what a viewer would see, not just internal arrays.
"""

import numpy as np
import pytest

from avatar.identity.landmarker import detect_faces
from avatar.identity.topology import EYE_L_LOWER, EYE_L_UPPER, EYE_R_LOWER, EYE_R_UPPER
from avatar.motion.track import MotionTrack
from avatar.renderers.meshwarp import MeshWarpRenderer


@pytest.fixture(scope="module")
def renderer() -> MeshWarpRenderer:
    return MeshWarpRenderer(size=256, mouth_interior=True, max_cached_identities=2)


def _face(frame):
    faces = detect_faces(frame, max_faces=1)
    assert faces, "MediaPipe finds no face in the rendered frame"
    return faces[0].landmarks


def _aperture(lm) -> float:
    return float(np.linalg.norm(lm[13, :2] - lm[14, :2]) / np.linalg.norm(lm[33, :2] - lm[263, :2]))


def _eye_open(lm) -> float:
    gaps = []
    for up, lo in ((EYE_L_UPPER, EYE_L_LOWER), (EYE_R_UPPER, EYE_R_LOWER)):
        mid_up, mid_lo = up[len(up) // 2], lo[len(lo) // 2]
        gaps.append(lm[mid_lo, 1] - lm[mid_up, 1])
    return float(np.mean(gaps) / np.linalg.norm(lm[33, :2] - lm[263, :2]))


def test_rest_pose_closes_the_mouth_and_keeps_the_face(renderer, default_identity_256):
    ident = default_identity_256
    rest = renderer.render_frame(ident, {})
    assert rest.shape == (256, 256, 3) and rest.dtype == np.uint8
    assert _aperture(_face(rest)) < 0.06, "an open-mouthed source must rest with closed lips"
    # away from the mouth the portrait is untouched
    mouth = ident.masks["mouth"] > 0.01
    grown = np.zeros_like(mouth)
    ys, xs = np.nonzero(mouth)
    grown[max(ys.min() - 20, 0) : ys.max() + 20, max(xs.min() - 25, 0) : xs.max() + 25] = True
    diff = np.abs(rest.astype(int) - ident.portrait.astype(int)).max(axis=2)
    assert np.percentile(diff[~grown], 99) <= 2


def test_jaw_opens_the_mouth_monotonically(renderer, default_identity_256):
    apertures = [
        _aperture(
            _face(renderer.render_frame(default_identity_256, {"jaw_open": j, "lip_open": j}))
        )
        for j in (0.0, 0.3, 0.7)
    ]
    assert apertures[0] < 0.06 < apertures[1] < apertures[2]


def test_blink_closes_both_eyes(renderer, default_identity_256):
    open_eyes = _eye_open(_face(renderer.render_frame(default_identity_256, {})))
    closed = _eye_open(
        _face(renderer.render_frame(default_identity_256, {"blink_l": 1, "blink_r": 1}))
    )
    assert closed < 0.4 * open_eyes


def test_stream_equals_batch_with_timestamps(renderer, default_identity_256):
    rng = np.random.default_rng(0)
    track = MotionTrack.zeros(6, 25)
    track.set("jaw_open", rng.random(6) * 0.6)
    track.set("head_yaw", rng.normal(0, 2, 6))
    batch = renderer.render_array(default_identity_256, track)
    chunks = [track.slice(0, 2), track.slice(2, 3), track.slice(3, 6)]
    streamed = list(renderer.stream(default_identity_256, chunks))
    assert [f.index for f in streamed] == list(range(6))
    assert [f.timestamp for f in streamed] == pytest.approx([i / 25 for i in range(6)])
    np.testing.assert_array_equal(np.stack([f.image for f in streamed]), batch)


def test_head_motion_moves_the_head_not_the_corners(renderer, default_identity_256):
    turned = renderer.render_frame(default_identity_256, {"head_yaw": 4.0})
    rest = renderer.render_frame(default_identity_256, {})
    nose_shift = _face(turned)[1, 0] - _face(rest)[1, 0]
    assert 1.0 < nose_shift < 15.0
    np.testing.assert_array_equal(turned[:8, :8], rest[:8, :8])


def test_size_mismatch_is_a_clear_error(default_identity_256):
    with pytest.raises(ValueError, match="renderer.size is 128px"):
        MeshWarpRenderer(size=128).render_frame(default_identity_256, {})
    with pytest.raises(ValueError, match="at least 64"):
        MeshWarpRenderer(size=16)
