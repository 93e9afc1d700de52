"""The look of mesh-warp's face (#13): the line where the lips meet, the mouth's inside, the lids,
the blur measurement, and the lower lip's taper to the corners."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from avatar.identity import topology as topo
from avatar.renderers.meshwarp.lids import LidLook, paint_lids
from avatar.renderers.meshwarp.mouth import close_lip_line, lips_closed
from avatar.renderers.meshwarp.mouth_colours import MouthInterior, texture_blur_px
from avatar.renderers.meshwarp.mouth_shading import interior_rgb
from avatar.renderers.meshwarp.rig import JAW_AT_CORNER, FaceRig

LIP = (200.0, 120.0, 120.0)
MOUTH = MouthInterior(
    center=(50.0, 50.0),
    width=60.0,
    source_gap=0.0,
    lip_color=LIP,
    teeth_color=(235.0, 228.0, 215.0),
    cavity_color=(70.0, 30.0, 30.0),
    tongue_color=(170.0, 80.0, 85.0),
    blur_px=0.0,
)


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]


@pytest.mark.parametrize("sigma", [0.6, 1.0, 1.5, 2.2])
def test_blur_is_measured_in_pixels(sigma):
    noise = np.random.default_rng(1).normal(128.0, 30.0, (256, 256)).astype(np.float32)
    blurred = cv2.GaussianBlur(noise, (0, 0), sigma)
    blurred = (blurred - blurred.mean()) * (30.0 / blurred.std()) + 128.0
    image = np.repeat(np.clip(blurred, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    found = texture_blur_px(image, np.ones((256, 256), bool))
    assert found == pytest.approx(sigma, rel=0.15)
    assert texture_blur_px(np.full((64, 64, 3), 90, np.uint8), np.ones((64, 64), bool)) == 0.0


def test_the_line_where_lips_meet_hides_a_tooth_white_seam():
    """Pink lips with a 1 px tooth-white sliver between them (what a warp that closes a smile
    leaves): afterwards nothing on the line is brighter than the lips, and the line is a soft
    shadow darker than them."""
    h, w = 30, 80
    roi = np.empty((h, w, 3), np.uint8)
    roi[:] = np.array(LIP, np.uint8)
    roi[15] = (245, 240, 230)  # the seam
    y_up = np.full(w, 15.0)
    y_lo = np.full(w, 15.3)
    xs = np.arange(w, dtype=np.float64)
    closed = lips_closed(xs, y_up, y_lo, (0.0, w - 1.0), 100.0)
    assert closed[w // 2] == 1.0 and closed[0] == 0.0  # faded out at the corners
    close_lip_line(roi, y_up, y_lo, closed, eye_distance=100.0, blur_px=0.8)
    middle = roi[:, 10:-10]
    assert _luma(middle).max() <= _luma(np.array(LIP)) + 1.0
    assert _luma(middle[15]).mean() < _luma(np.array(LIP)) - 12.0  # the shadow line
    assert np.all(middle[15, :, 0] > middle[15, :, 2])  # warm, not grey


def test_lips_apart_are_not_redrawn():
    xs = np.arange(50, dtype=np.float64)
    closed = lips_closed(xs, np.full(50, 10.0), np.full(50, 16.0), (0.0, 49.0), 100.0)
    assert not closed.any()


def _interior(gap: float, eye: float = 100.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.arange(0, 61, dtype=np.float64)
    lens = np.sqrt(np.clip(1.0 - ((xs - 30.0) / 30.0) ** 2, 0.0, 1.0))
    y_up = 20.0 - 0.2 * gap * lens
    y_lo = 20.0 + 0.8 * gap * lens
    ys = np.arange(0, 20 + int(gap) + 5, dtype=np.float64)
    return interior_rgb(xs, ys, y_up, y_lo, (0.0, 60.0), MOUTH, eye), y_up, y_lo


def test_the_cavity_is_darker_at_the_back_than_at_the_lips():
    # a big face barely open: no tongue or lower teeth yet, upper teeth over the upper half
    rgb, y_up, y_lo = _interior(gap=16.0, eye=400.0)
    column = 30
    between = np.arange(int(np.ceil(y_up[column])), int(y_lo[column]))
    luma = _luma(rgb[between, column])
    back = luma[int(0.6 * len(luma))]
    assert back < luma[-1] - 5.0  # the back is darker than the lower lip's inside
    assert back < luma[1] - 20.0  # and darker than the upper teeth (in the lip's shadow)


def test_lower_teeth_show_only_when_the_jaw_opens_wide():
    def lower_band_luma(gap: float) -> float:
        rgb, _, y_lo = _interior(gap)
        row = int(y_lo[30]) - 1  # just above the lower lip, in the middle
        return float(_luma(rgb[row, 27:34]).mean())

    narrow, wide = lower_band_luma(5.0), lower_band_luma(18.0)
    assert wide > 130.0 > narrow + 40.0  # teeth-bright when wide open, not when barely open


def test_the_lower_lip_tapers_to_the_corners(default_identity_256):
    landmarks_256 = default_identity_256.landmarks
    rig = FaceRig(landmarks_256)
    drop = rig.jaw_open()[:, 1]
    lower = [i for i in topo.LIPS_INNER_LOWER if i not in (78, 308)]
    by_x = sorted(lower, key=lambda i: landmarks_256[i, 0])
    middle, near_corner = drop[by_x[len(by_x) // 2]], drop[by_x[0]]
    assert near_corner < 0.85 * middle
    assert drop[topo.MOUTH_CORNER_L] == pytest.approx(JAW_AT_CORNER * middle / 1.0, rel=0.3)


def test_a_closed_lid_is_skin_with_a_lash_line():
    """An eye drawn as a dark iris under a lid: after the lid comes down, the covered band is
    the lid's skin colour, with a dark line at its margin, and the iris no longer shows."""
    size, e = 200, 100.0
    image = np.full((size, size, 3), (210, 170, 150), np.uint8)  # skin
    cv2.ellipse(image, (100, 100), (25, 12), 0, 0, 360, (40, 30, 25), -1)  # the eye, dark
    vertices = np.zeros((478, 2), np.float32)
    xs = np.linspace(75.0, 125.0, len(topo.EYE_L_UPPER))
    open_lid = np.stack([xs, 100.0 - 12.0 * np.sqrt(1 - ((xs - 100) / 25) ** 2)], 1)
    closed_lid = np.stack([xs, 100.0 + 12.0 * np.sqrt(1 - ((xs - 100) / 25) ** 2)], 1)
    eyes_open = vertices.copy()
    eyes_open[topo.EYE_L_UPPER] = open_lid
    eyes_open[topo.EYE_R_UPPER] = open_lid  # the other eye does not move
    now = eyes_open.copy()
    now[topo.EYE_L_UPPER] = closed_lid
    look = LidLook(np.array([[205, 168, 150]] * 2, np.float32), np.array([[30, 20, 20]] * 2))
    paint_lids(image, eyes_open, now, look, e, blur_px=0.0)
    lid = image[92:106, 85:116].reshape(-1, 3).astype(np.float64)
    assert np.median(np.linalg.norm(lid - [205, 168, 150], axis=1)) < 25.0
    margin = image[110:114, 95:106]
    assert _luma(margin).min() < 100.0  # the lash line at the lid's margin


@pytest.mark.parametrize("key", ["mouth_interior", "eyelids"])
@pytest.mark.parametrize("value", ["maybe", 3, None])
def test_paint_switches_must_be_booleans(key, value):
    from avatar.errors import ConfigValueError
    from avatar.renderers.meshwarp import MeshWarpRenderer

    flags = {"mouth_interior": True, "eyelids": True, key: value}
    with pytest.raises(ConfigValueError, match=f"renderer.{key} must be true or false"):
        MeshWarpRenderer(size=256, **flags)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["portraits=nope"], "unknown portraits"),
        (["out=sheet.jpg"], "must end in .png"),
        (["out="], "out is empty"),
        (["renderer.eyelids=maybe"], "renderer.eyelids must be true or false"),
    ],
)
def test_contact_sheet_refuses_bad_input_before_any_work(args, message, tmp_path, capsys):
    from evals.contact_sheet import main

    args = [a if a != "out=sheet.jpg" else f"out={tmp_path / 'sheet.jpg'}" for a in args]
    if not any(a.startswith("out=") for a in args):
        args.append(f"out={tmp_path / 'look.png'}")
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written, not even a partial file
