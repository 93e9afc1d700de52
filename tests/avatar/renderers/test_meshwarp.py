"""Mesh-warp renderer: rest pose, mouth opening, blinks, streaming, determinism, errors.

Rendered frames are measured with MediaPipe (the same landmarker the evals use), so these
tests check what a viewer would see, not just internal arrays.
"""

import numpy as np
import pytest

from avatar.identity.search import detect_faces
from avatar.identity.topology import (
    EYE_L_LOWER,
    EYE_L_UPPER,
    EYE_R_LOWER,
    EYE_R_UPPER,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
)
from avatar.motion.track import CHANNELS, MotionTrack
from avatar.renderers.base import channel_values, render_track
from avatar.renderers.meshwarp import MeshWarpPrepared, MeshWarpRenderer


@pytest.fixture(scope="module")
def renderer() -> MeshWarpRenderer:
    return MeshWarpRenderer(size=256, mouth_interior=True)


@pytest.fixture(scope="module")
def prepared(renderer, default_identity_256) -> MeshWarpPrepared:
    return renderer.prepare(default_identity_256)


def _frame(renderer, prepared, **values: float) -> np.ndarray:
    """One frame for channel values given by name (the rest at rest)."""
    row = np.zeros((1, len(CHANNELS)), np.float32)
    for name, value in values.items():
        row[0, CHANNELS.index(name)] = value
    return renderer.render_chunk(prepared, row)[0]


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


def test_rest_pose_closes_the_mouth_and_keeps_the_face(renderer, prepared, default_identity_256):
    ident = default_identity_256
    rest = _frame(renderer, prepared)
    assert rest.shape == (256, 256, 3) and rest.dtype == np.uint8
    assert _aperture(_face(rest)) < 0.06, "an open-mouthed source must rest with closed lips"
    # away from the mouth the portrait is untouched
    mouth = ident.masks["mouth"] > 0.01
    grown = np.zeros_like(mouth)
    ys, xs = np.nonzero(mouth)
    grown[max(ys.min() - 20, 0) : ys.max() + 20, max(xs.min() - 25, 0) : xs.max() + 25] = True
    diff = np.abs(rest.astype(int) - ident.portrait.astype(int)).max(axis=2)
    assert np.percentile(diff[~grown], 99) <= 2


def test_jaw_opens_the_mouth_monotonically(renderer, prepared):
    apertures = [
        _aperture(_face(_frame(renderer, prepared, jaw_open=j, lip_open=j)))
        for j in (0.0, 0.3, 0.7)
    ]
    assert apertures[0] < 0.06 < apertures[1] < apertures[2]


def test_blink_closes_both_eyes(renderer, prepared):
    open_eyes = _eye_open(_face(_frame(renderer, prepared)))
    closed = _eye_open(_face(_frame(renderer, prepared, blink_l=1.0, blink_r=1.0)))
    assert closed < 0.4 * open_eyes


def test_stream_equals_batch_with_timestamps(renderer, prepared):
    rng = np.random.default_rng(0)
    track = MotionTrack.zeros(6, 25)
    track.set("jaw_open", rng.random(6) * 0.6)
    track.set("head_yaw", rng.normal(0, 2, 6))
    batch = renderer.render_chunk(prepared, channel_values(track))
    assert batch.shape == (6, 256, 256, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(np.stack(list(render_track(renderer, prepared, track))), batch)
    stream = renderer.open_stream(prepared)
    streamed = []
    for chunk in (track.slice(0, 2), track.slice(2, 3), track.slice(3, 6)):
        streamed += stream.push(chunk)
    assert [f.index for f in streamed] == list(range(6))
    assert [f.timestamp for f in streamed] == pytest.approx([i / 25 for i in range(6)])
    np.testing.assert_array_equal(np.stack([f.image for f in streamed]), batch)
    stream.reset()  # an interruption: numbering goes on, frames depend only on their values
    again = stream.push(track.slice(0, 1))
    assert again[0].index == 6
    np.testing.assert_array_equal(again[0].image, batch[0])
    stream.close()


def test_head_motion_moves_the_head_not_the_corners(renderer, prepared):
    turned = _frame(renderer, prepared, head_yaw=4.0)
    rest = _frame(renderer, prepared)
    nose_shift = _face(turned)[1, 0] - _face(rest)[1, 0]
    assert 1.0 < nose_shift < 15.0
    np.testing.assert_array_equal(turned[:8, :8], rest[:8, :8])


def test_size_mismatch_and_bad_values_are_clear_errors(renderer, prepared, default_identity_256):
    with pytest.raises(ValueError, match="renderer.size is 128px"):
        MeshWarpRenderer(size=128, mouth_interior=True).prepare(default_identity_256)
    with pytest.raises(ValueError, match="at least 64"):
        MeshWarpRenderer(size=16, mouth_interior=True)
    with pytest.raises(ValueError, match=f"values must be \\(T, {len(CHANNELS)}\\)"):
        renderer.render_chunk(prepared, np.zeros((2, 5), np.float32))


def test_mouth_interior_lives_in_the_prepared_state(prepared, default_identity_256):
    """The mesh-specific mouth measurements are the renderer's, not the identity's."""
    mouth, lm = prepared.mouth, default_identity_256.landmarks
    assert not hasattr(default_identity_256, "mouth")
    assert mouth.width == pytest.approx(float(np.linalg.norm(lm[61, :2] - lm[291, :2])), rel=1e-5)
    assert mouth.source_gap > 0.05 * default_identity_256.eye_distance  # she smiles, teeth showing
    luma = [sum(c) / 3 for c in (mouth.teeth_color, mouth.cavity_color, mouth.lip_color)]
    assert luma[0] > luma[2] > luma[1]  # teeth bright, cavity dark, lips between
    # her own teeth are reused when the jaw opens: the portrait's inner-lip contours
    source = prepared.source_mouth
    assert source.portrait is prepared.portrait
    np.testing.assert_array_equal(source.upper, lm[LIPS_INNER_UPPER, :2])
    np.testing.assert_array_equal(source.lower, lm[LIPS_INNER_LOWER, :2])
    assert not prepared.portrait.flags.writeable  # shared by threads: read only
