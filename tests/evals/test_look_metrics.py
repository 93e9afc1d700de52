"""Validation of the look metrics on made-up frames whose answer is known, and their thresholds.

Real portraits (the default companion's astronaut upscaled like a render, Grace Hopper's photo
from matplotlib's sample data) with their MediaPipe landmarks get each defect injected at a
known strength: a bright line on the lip line, a hard or blurred dark cavity, closed lids
painted with skin or iris texture, a mouth sharper or blurrier than the face. Each threshold in
:mod:`evals.functional.look` is the one these tests check against: clean or mild cases below,
visible defects above.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.identity.topology import LIPS_INNER_LOWER, LIPS_INNER_UPPER, LIPS_OUTER
from evals.functional import look
from evals.functional.look import (
    _EYES,
    LID_SKIN_DE,
    MOUTH_HARDNESS,
    SEAM_VISIBLE,
    SHARPNESS_MATCH,
    _lid_regions,
    cheek_lab,
    edge_hardness,
    lid_realism,
    seam_brightness,
    sharpness_match,
    skin_seen,
)

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _face(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from avatar.identity.search import detect_faces

    img = np.ascontiguousarray(img)
    faces = detect_faces(img, max_faces=1)
    assert faces, "MediaPipe finds the portrait's face"
    return img, faces[0].landmarks.astype(np.float64)


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    """The default companion's face upscaled 2.2x like a 512 px render: smiling, teeth shown."""
    from avatar.companion import load_image

    src = load_image("embedded:astronaut", max_megapixels=40.0, max_side=4096)
    face = src[60:300, 120:340]  # (240, 220, 3) round the face
    return _face(cv2.resize(face, None, fx=2.2, fy=2.2, interpolation=cv2.INTER_CUBIC))


@pytest.fixture(scope="module")
def hopper() -> tuple[np.ndarray, np.ndarray]:
    """Grace Hopper (public-domain US Navy photo, matplotlib sample data): a closed mouth."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        pytest.skip("matplotlib's sample photo absent")
    return _face(cv2.imread(str(path))[..., ::-1])


def _scaled(portrait: tuple[np.ndarray, np.ndarray], s: float) -> tuple[np.ndarray, np.ndarray]:
    img, lm = portrait
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    out = lm.copy()
    out[:, :2] = (lm[:, :2] + 0.5) * s - 0.5
    return cv2.resize(img, None, fx=s, fy=s, interpolation=interp), out


def _mask(shape: tuple[int, ...], pts: np.ndarray) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return m.astype(bool)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


# --- seam ------------------------------------------------------------------------------------


def _seam(img: np.ndarray, lm: np.ndarray, grey: float, flat_lips: float | None = None):
    """A 1-px grey line (luma ``grey``) along the lip line; lips painted one flat colour of luma
    ``flat_lips`` (with 1-level noise) first when given."""
    out = img.copy()
    lips = _mask(img.shape, lm[LIPS_OUTER, :2])
    if flat_lips is not None:
        noise = np.random.default_rng(0).normal(0, 1, (int(lips.sum()), 1))
        out[lips] = _u8(np.array([1.15, 0.93, 0.93]) * flat_lips * 255 + noise)
    mid = (lm[LIPS_INNER_UPPER, :2] + lm[LIPS_INNER_LOWER, :2]) / 2
    v = int(round(np.clip(grey, 0, 1) * 255))
    cv2.polylines(out, [np.round(mid[1:-1]).astype(np.int32)], False, (v, v, v), 1, cv2.LINE_8)
    return out


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_seam_reads_the_line_above_flat_lips(hopper, scale) -> None:
    img, lm = _scaled(hopper, scale)
    lip_luma = float(np.array([1.15, 0.93, 0.93]) @ LUMA) * 0.55
    assert seam_brightness(_seam(img, lm, 0.2, flat_lips=0.55), lm) < 0.01  # a dark line: ~0
    for excess in (0.05, 0.1, 0.2, 0.3):
        got = seam_brightness(_seam(img, lm, lip_luma + excess, flat_lips=0.55), lm)
        assert got == pytest.approx(excess, abs=0.01 + 0.15 * excess), (scale, excess)


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_seam_threshold(hopper, scale) -> None:
    """A real lip line (a shadow) passes, as does a line as bright as the lips' highlights; a
    line well brighter than the lips' brightest tenth (as a seam of tooth white is) fails, and
    the value rises with the line's brightness."""
    img, lm = _scaled(hopper, scale)
    clean = seam_brightness(img, lm)
    assert clean < SEAM_VISIBLE - 0.015
    y = img.astype(np.float32) @ LUMA / 255
    bright = float(np.percentile(y[_mask(img.shape, lm[LIPS_OUTER, :2])], 90))
    values = [seam_brightness(_seam(img, lm, bright + dy), lm) for dy in (0.0, 0.05, 0.1, 0.2)]
    assert np.all(np.diff(values) > 0), values
    assert values[0] < SEAM_VISIBLE - 0.01, values  # no brighter than the lips' highlights
    assert values[2] > SEAM_VISIBLE + 0.03, values  # 0.1 brighter than them: a seam


# --- edge hardness ---------------------------------------------------------------------------


def _cavity(img: np.ndarray, lm: np.ndarray, blur: float) -> np.ndarray:
    """A dark red crescent in the middle of the mouth opening, blurred by ``blur`` px."""
    up, lo = lm[LIPS_INNER_UPPER, :2], lm[LIPS_INNER_LOWER, :2]
    poly = np.concatenate([(up + 0.3 * (lo - up))[1:-1], (up + 0.75 * (lo - up))[1:-1][::-1]])
    m = _mask(img.shape, poly).astype(np.float32)
    if blur:
        m = cv2.GaussianBlur(m, (0, 0), blur)
    return _u8(m[..., None] * [60, 15, 20] + (1 - m[..., None]) * img)


@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_hardness_separates_a_pasted_cavity(astronaut, scale) -> None:
    img, lm = _scaled(astronaut, scale)
    assert edge_hardness(img, lm) < MOUTH_HARDNESS  # the real open mouth
    hard = edge_hardness(_cavity(img, lm, 0.0), lm)
    soft = edge_hardness(_cavity(img, lm, 1.5), lm)
    assert soft < MOUTH_HARDNESS < hard, (hard, soft)
    assert hard - soft > 0.35
    values = [edge_hardness(_cavity(img, lm, b), lm) for b in (2.0, 1.0, 0.5, 0.0)]
    assert np.all(np.diff(values) > -0.02), values  # harder as the blur goes


# --- lids --------------------------------------------------------------------------------------


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.reshape(1, -1, 3).astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[0]


def _closed(img: np.ndarray, lm: np.ndarray, paint: str, shift_l: float = 0.0, shade: float = 5.0):
    """Both eyes closed: upper-lid landmarks on the lower lid, the lid (from the lower lid up to
    the top of the metric's lid strip) painted with ``paint``: ``skin`` (the median CIELAB colour
    of the metric's skin strip with a grain of its own L* spread, ``shade`` L* darker towards
    the lashes, ``shift_l`` darker throughout) or ``iris`` (the open eye's darkest third: iris
    and lashes, shuffled)."""
    rng = np.random.default_rng(0)
    out, closed = img.copy(), lm.copy()
    for up, lo, brow in _EYES:
        closed[up] = lm[lo]
        lid_poly, skin_poly = _lid_regions(closed[:, :2], up, lo, brow)
        top = lid_poly[len(lid_poly) // 2 :][::-1]  # the lid strip's upper edge
        ys, xs = np.nonzero(_mask(img.shape, np.concatenate([lm[lo, :2][2:-2], top[::-1]])))
        if paint == "skin":
            skin = _lab(img[_mask(img.shape, skin_poly)])
            skin = skin_seen(skin, cheek_lab(img, lm[:, :2]))  # as the metric sees it
            lab = np.repeat(np.median(skin, axis=0)[None], len(ys), axis=0)
            lab[:, 0] += rng.normal(0, skin[:, 0].std() / 2, len(ys)) - shift_l
            lab[:, 0] -= shade * (ys - ys.min()) / max(np.ptp(ys), 1)  # darker to the lashes
            out[ys, xs] = _u8(cv2.cvtColor(lab[None], cv2.COLOR_Lab2RGB)[0] * 255)
        else:
            eye = img[_mask(img.shape, lm[up + lo[::-1], :2])]
            y = eye @ LUMA
            dark = eye[y <= np.quantile(y, 1 / 3)]
            out[ys, xs] = dark[rng.integers(0, len(dark), len(ys))]
    return out, closed


@pytest.mark.parametrize("which", ["astronaut", "hopper"])
def test_lid_separates_skin_from_iris(which, request) -> None:
    img, lm = request.getfixturevalue(which)
    skin = lid_realism(*_closed(img, lm, "skin"))
    iris = lid_realism(*_closed(img, lm, "iris"))
    assert np.all(skin < LID_SKIN_DE - 5), skin
    assert np.all(iris > LID_SKIN_DE + 10), iris
    for shift in (5.0, 10.0, 20.0):  # a lid darker than the skin by a known Delta L*
        got = lid_realism(*_closed(img, lm, "skin", shift_l=shift, shade=0.0))
        assert np.all(np.abs(got - shift) < 1.5), (shift, got)


def test_real_closed_lids_pass() -> None:
    """The closed eyes of insightface's group photo (t1.jpg) read as skin."""
    import importlib.util

    from avatar.identity.search import detect_faces
    from evals.functional.mouth import eye_openness

    spec = importlib.util.find_spec("insightface")
    path = Path(spec.origin).parent / "data" / "images" / "t1.jpg" if spec and spec.origin else None
    if path is None or not path.is_file():
        pytest.skip("insightface sample photo absent (make install)")
    img = np.ascontiguousarray(cv2.imread(str(path))[..., ::-1])
    faces = [f.landmarks for f in detect_faces(img, max_faces=8)]
    closed = [lm for lm in faces if np.all(eye_openness(lm)[0] < 0.1)]
    assert len(closed) >= 2
    for lm in closed:
        assert np.all(lid_realism(img, lm) < LID_SKIN_DE), lid_realism(img, lm)


# --- sharpness -----------------------------------------------------------------------------


def _mouth_weight(img: np.ndarray, lm: np.ndarray) -> np.ndarray:
    d = float(np.linalg.norm(lm[33, :2] - lm[263, :2]))
    m = cv2.dilate(_mask(img.shape, lm[LIPS_OUTER, :2]).astype(np.uint8), np.ones((9, 9), np.uint8))
    return cv2.GaussianBlur(m.astype(np.float32), (0, 0), 0.02 * d)[..., None]


def _blur(img: np.ndarray, s: float) -> np.ndarray:
    return cv2.GaussianBlur(img, (0, 0), s)


@pytest.mark.parametrize("which", ["astronaut", "hopper"])
def test_sharpness_sign_and_magnitude(which, request) -> None:
    img, lm = request.getfixturevalue(which)
    w = _mouth_weight(img, lm)
    clean = sharpness_match(img, lm)
    assert abs(clean) < SHARPNESS_MATCH - 0.1
    assert abs(sharpness_match(_blur(img, 1.5), lm)) < SHARPNESS_MATCH  # uniform blur matches
    pasted = [sharpness_match(_u8(w * img + (1 - w) * _blur(img, s)), lm) for s in (1.0, 2.0)]
    blurred = [sharpness_match(_u8(w * _blur(img, s) + (1 - w) * img), lm) for s in (1.0, 2.0)]
    assert clean < pasted[0] < pasted[1], pasted  # the face blurred round a sharp mouth
    assert blurred[1] < blurred[0] < -SHARPNESS_MATCH, blurred  # a mouth blurrier than the face
    if which == "hopper":  # a sharp photo: its own mouth in a blurred face shows
        assert pasted[0] > SHARPNESS_MATCH, pasted


# --- not applicable ----------------------------------------------------------------------------


def test_no_face_is_nan(astronaut) -> None:
    img, lm = astronaut
    nan = np.full_like(lm, np.nan)
    assert math.isnan(seam_brightness(img, nan)) and math.isnan(edge_hardness(img, nan))
    assert np.isnan(lid_realism(img, nan)).all() and math.isnan(sharpness_match(img, nan))
    off = lm + [5000.0, 0.0, 0.0]  # a face off the frame
    assert math.isnan(seam_brightness(img, off)) and math.isnan(sharpness_match(img, off))
    flat = np.full_like(img, 128)
    assert math.isnan(sharpness_match(flat, lm))  # no texture in the cheeks to compare
    with pytest.raises(ValueError, match="landmarks"):
        seam_brightness(img, lm[:10])


def test_thresholds_are_the_suites() -> None:
    from avatar.config import compose

    metrics = compose("eval", ["suite=look"]).suite.look.metrics
    assert metrics.seam.threshold == look.SEAM_VISIBLE
    assert metrics.hardness.threshold == look.MOUTH_HARDNESS
    assert metrics.lids.threshold == look.LID_SKIN_DE
    assert metrics.sharpness.threshold == look.SHARPNESS_MATCH


# --- metric classes ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(astronaut, hopper) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Two clips of four frames ((T, 3, H, W) uint8, sizes differ) and their landmarks: Hopper
    with a seam and closed iris-textured lids, the astronaut with a pasted cavity and skin lids."""
    (a, la), (h, lh) = astronaut, hopper
    y = h.astype(np.float32) @ LUMA / 255
    bright = float(np.percentile(y[_mask(h.shape, lh[LIPS_OUTER, :2])], 90)) + 0.1
    h_lids, h_closed = _closed(h, lh, "iris")
    a_lids, a_closed = _closed(a, la, "skin")
    video = [(h, lh), (_seam(h, lh, bright), lh), (h_lids, h_closed), (h, lh)]
    video2 = [(a, la), (_cavity(a, la, 0.0), la), (a_lids, a_closed), (a, la)]
    frames = [np.stack([f.transpose(2, 0, 1) for f, _ in v]) for v in (video, video2)]
    return frames, [np.stack([lm for _, lm in v]) for v in (video, video2)]


CLASSES = [
    ("SeamBrightness", dict(closed_below=0.06, threshold=0.04), "seam_brightness_stats"),
    ("EdgeHardness", dict(open_above=0.1, threshold=0.35), "edge_hardness_stats"),
    ("LidRealism", dict(ratio=0.6, threshold=15.0), "lid_realism_stats"),
    ("SharpnessMatch", dict(threshold=0.6), "sharpness_match_stats"),
]


@pytest.mark.parametrize(("name", "kw", "fn"), CLASSES, ids=[c[0] for c in CLASSES])
def test_class_equals_functional_and_is_batch_invariant(clips, name, kw, fn) -> None:
    from evals import metrics
    from evals.functional import look_clips

    video, lms = clips
    want = getattr(look_clips, fn)(video, lms, **kw)
    whole, single = getattr(metrics, name)(**kw), getattr(metrics, name)(**kw)
    whole.update(video, lms)
    for v, lm in zip(video, lms, strict=True):
        try:
            single.update([v], [lm])
        except metrics.MetricNotApplicable:
            pass  # a clip without such a frame adds nothing
    for got in (whole.compute(), single.compute()):
        assert got.keys() == want.keys()
        assert all(float(got[k]) == pytest.approx(want[k], abs=1e-12) for k in want), (got, want)
    assert want["over"] > 0  # each clip pair holds one defect of every kind


def test_what_the_classes_see(clips) -> None:
    from evals.functional.look_clips import lid_realism_stats, seam_brightness_stats

    video, lms = clips
    seam = seam_brightness_stats(video[:1], lms[:1], closed_below=0.06, threshold=SEAM_VISIBLE)
    assert seam["over"] == pytest.approx(0.25) and seam["worst"] > SEAM_VISIBLE  # 1 of 4
    lids = lid_realism_stats(video, lms, ratio=0.6, threshold=LID_SKIN_DE)
    assert lids["over"] == pytest.approx(0.5)  # the iris lids, not the skin ones


def test_class_not_applicable_and_arguments(clips) -> None:
    from evals.metrics import EdgeHardness, LidRealism, MetricNotApplicable, SeamBrightness

    video, lms = clips
    with pytest.raises(MetricNotApplicable, match="closed-mouth"):
        SeamBrightness(closed_below=0.06, threshold=0.04).update(video[1:], lms[1:])
    with pytest.raises(MetricNotApplicable, match="closed eye"):
        LidRealism(ratio=0.6, threshold=15.0).update([video[0][:2]], [lms[0][:2]])
    with pytest.raises(MetricNotApplicable, match="at least 2 frames"):
        SeamBrightness(closed_below=0.06, threshold=0.04).update([video[0][:1]], [lms[0][:1]])
    m = EdgeHardness(open_above=0.1, threshold=0.35)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(float(m.compute()["mean"]))  # nothing measured: NaN, not a value
    with pytest.raises(ValueError, match="closed_below"):
        SeamBrightness(closed_below=0.0, threshold=0.04)
    with pytest.raises(ValueError, match="ratio"):
        LidRealism(ratio=1.5, threshold=15.0)
    with pytest.raises(ValueError, match="landmark rows"):
        SeamBrightness(closed_below=0.06, threshold=0.04).update(video[:1], [lms[0][:2]])


def test_blinks_choose_the_closed_eyes(clips) -> None:
    """Clips rendered here pass the renderer's own blinks (MediaPipe reads many render blinks
    as half open); they pick the closed eyes instead of the landmark rule."""
    from types import SimpleNamespace

    from avatar.motion.track import MotionTrack
    from evals.functional.look_clips import blink_inputs, lid_realism_stats

    video, lms = clips
    kw = dict(ratio=0.6, threshold=LID_SKIN_DE)
    blinks = [np.zeros((4, 2)), np.zeros((4, 2))]
    blinks[0][2] = blinks[1][2] = 1.0  # the frames whose lids were painted
    assert lid_realism_stats(video, lms, **kw, blinks=blinks) == lid_realism_stats(video, lms, **kw)
    blinks[0][:] = 0.0
    only_skin = lid_realism_stats(video, lms, **kw, blinks=blinks)  # the astronaut's skin lids
    assert only_skin["over"] == 0.0 and only_skin["worst"] < LID_SKIN_DE
    track = MotionTrack.zeros(4, 25.0)
    track.set("blink_r", np.array([0, 0, 1, 0]))
    got = blink_inputs(SimpleNamespace(motion=track, n_frames=4))["blinks"]
    assert got.shape == (1, 4, 2) and got[0, 2].tolist() == [0.0, 1.0]
    assert blink_inputs(SimpleNamespace(motion=None, n_frames=4)) == {}
    with pytest.raises(ValueError, match="blinks"):
        lid_realism_stats(video, lms, **kw, blinks=[np.zeros((3, 2)), np.zeros((4, 2))])
