"""Look metrics: visual defects of a rendered face, measured in one frame from its landmarks.

Four per-frame measures, each a pure function of an (H, W, 3) RGB frame and the frame's
MediaPipe landmarks ((478, 2|3) in pixels, see :mod:`avatar.identity.topology`):

- :func:`seam_brightness` (closed mouth): the brightest pixels on the lip line minus the lips
  beside them, in luma. A tooth-white seam left where the lips meet reads positive; a real lip
  line is a shadow and reads near or below 0.
- :func:`edge_hardness` (open mouth): how sharp the edges of the mouth interior (cavity,
  teeth) are against the image's own strong edges, as a log-ratio of contrast-normalised
  gradients (0 = as sharp as the face).
- :func:`lid_realism` (closed eyes): CIELAB distance of the closed lid to the skin between the
  eye and the brow, per eye (stretched iris/lash texture reads far from skin).
- :func:`sharpness_match`: high-frequency energy the mouth loses to one more blur against
  the cheeks', as a log-ratio (0 = matched; > 0: a mouth sharper than the face, pasted on).

Each returns NaN where it cannot measure (no face, regions off the frame or empty), never a
stand-in value. Luma is Rec. 601 ``Y = 0.299 R + 0.587 G + 0.114 B`` in [0, 1]. Region sizes
scale with the outer-eye-corner distance ``d`` (33-263) so the measures do not depend on the
frame size. The thresholds below were chosen in ``tests/evals/test_look_metrics.py`` from
defects injected at known strengths into real portraits (see each constant).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from avatar.identity.topology import (
    BROW_L_LOWER,
    BROW_R_LOWER,
    EYE_L_LOWER,
    EYE_L_OUTER,
    EYE_L_UPPER,
    EYE_R_LOWER,
    EYE_R_OUTER,
    EYE_R_UPPER,
    FACE_OVAL,
    LIPS_INNER,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    LIPS_OUTER,
    MOUTH_CORNER_L,
    MOUTH_CORNER_R,
)
from evals.functional._face_regions import Crop, dilate, eye_scale, face_xy, luma, straighten

__all__ = [
    "LID_SKIN_DE",
    "MOUTH_HARDNESS",
    "SEAM_VISIBLE",
    "SHARPNESS_MATCH",
    "edge_hardness",
    "lid_realism",
    "seam_brightness",
    "sharpness_match",
]

SEAM_VISIBLE = 0.08
"""Seam threshold, luma in [0, 1] (20 of 255 levels). ``test_seam_*``: a 1-px line drawn on flat
lips reads 0.78-0.92 of its true excess at three face sizes; a line as bright as the lips'
brightest tenth reads 0.03-0.07, 0.05 brighter 0.072-0.094, 0.1 brighter 0.117-0.14. Clean
closed mouths: Grace Hopper's photo at 0.5x-2x reads -0.03 to 0.021, but the same photo
aligned to a 512 px portrait 0.040 (her pale lower lip runs right up to the lip line), and
mesh-warp's closed frames of it through H.264 up to 0.063 with no seam to be seen (#13). The
threshold sits between those and a line 0.1 brighter than the lips; a first value of 0.04
failed that clean photo. The tooth-white seams of the renderer before #13 read 0.11 on average
(worst 0.21) on the demo."""
MOUTH_HARDNESS = 0.35
"""Edge-hardness threshold, natural log (the interior's sharpest edges at most 1.4x the
face's). ``test_hardness_*`` on the astronaut's open mouth at two sizes: clean 0.04, a dark
cavity pasted pixel-sharp 0.47-0.62 (blurred 0.5 px: 0.44-0.57), the same cavity blurred
1.5 px like the face 0.01-0.09 (1 px: 0.17-0.30)."""
LID_SKIN_DE = 15.0
"""Lid threshold, CIELAB Delta E*ab. ``test_lid_*``: lids painted with the skin's colour and
grain read 1.6-2.7, with the open eye's iris and lash pixels 31-46 (two portraits); a lid
darker by a known Delta L* reads it within 1.5; the real closed and squinting eyes of
insightface's t1.jpg read 5.4-13.7, below the threshold."""
SKIN_HIDDEN_DE, SKIN_SEEN = 40.0, 0.3
"""The skin strip above an eye is a reference only where at least half of it is within 30 Delta
E of the cheeks' colour: glasses rims or hair over it leave the lid unjudged (NaN)."""
SHARPNESS_MATCH = 0.6
"""Sharpness-match threshold, |natural log|. ``test_sharpness_*``: clean portraits read -0.42
(the astronaut) and -0.22 (Hopper), blurred uniformly by 1.5 px -0.13 and 0.00; Hopper's sharp
mouth in its face blurred by 1 / 2 px reads 0.73 / 1.20, a mouth blurred by 1 / 2 px in a
sharp face -0.66 to -0.98 on both."""

_SEAM_SEARCH = 0.02  # fraction of d: how far from the landmark lip line a seam may lie
_SEAM_GAP = 0.035  # fraction of d: where the lips are compared, above and below the seam
_BORDER_BAND = 0.02  # half-width of the cavity-border band, fraction of d
_RANGE_RADIUS = 4  # px: window radius of the local contrast that normalises gradients
_MIN_CONTRAST = 0.06  # luma: weaker local contrast is not an edge
_FINE_SIGMA = 1.0  # px: the fine band is Y minus its Gaussian blur at this sigma
_CHEEK_RADIUS = 0.12  # fraction of d
_FLAT = 1e-6  # luma^2: fine-band energy below 8-bit rounding noise: a flat region


def seam_brightness(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """How much brighter the lip line is than the lips on either side of it (closed mouth).

    The lip line is the midline of the inner-lip contours (a closed mouth's seam), without its
    outer tenths at the corners. Across it, at every pixel along it, the brightest luma within
    ``0.02 d`` of the line is compared with the brighter of the two lips ``0.035 d`` above and
    below that pixel; the value is the 75th percentile of this excess along the line, so a seam
    must run along a quarter of the lip line to count (skin texture and specks do not).

    Args:
        frame: (H, W, 3) RGB, uint8 or float in [0, 1] (or (3, H, W)).
        landmarks: (478, 2|3) MediaPipe landmarks of the frame in pixels (NaN: no face).

    Returns:
        Luma excess in [-1, 1] (x 255 for 8-bit levels): a real lip line is a shadow and reads
        near or below 0; > :data:`SEAM_VISIBLE` is a visible bright seam. NaN without a face.

    Example:
        >>> lm = np.full((478, 2), np.nan)
        >>> seam_brightness(np.zeros((8, 8, 3), np.uint8), lm)
        nan
    """
    xy = face_xy(landmarks)
    if xy is None:
        return math.nan
    d = eye_scale(xy)
    mid = (xy[LIPS_INNER_UPPER] + xy[LIPS_INNER_LOWER]) / 2  # (11, 2) corner to corner
    cum = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(mid, axis=0), axis=1))]
    keep = np.linspace(0.1, 0.9, 33) * cum[-1]  # outer tenths dropped
    line = np.stack([np.interp(keep, cum, mid[:, k]) for k in (0, 1)], axis=1)
    search, gap = round(2 * _SEAM_SEARCH * d), max(round(2 * _SEAM_GAP * d), 2)  # half-px
    crop = Crop(frame, line, (search + gap) / 2 + 2)
    if not crop.ok:
        return math.nan
    strip = straighten(luma(crop.rgb), line - [crop.x0, crop.y0], search + gap)
    if len(strip) < 4:
        return math.nan
    rows = np.arange(gap, gap + 2 * search + 1)  # offsets within ``search`` of the line
    excess = (strip[:, rows] - np.maximum(strip[:, rows - gap], strip[:, rows + gap])).max(axis=1)
    return float(np.percentile(excess, 75))


def _edge_sharpness(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gradient magnitude, gradient over local contrast) of luma, both (h, w) float32.

    The gradient is the Sobel derivative over 8 (a unit step reads 0.5 per px); the local
    contrast is the luma range in a (2r+1)^2 window, r = 4 px. Their ratio does not depend on
    the edge's contrast: a unit step reads 0.5, a step blurred by a Gaussian of sigma s about
    1 / (s sqrt(2 pi)) (0.27 at s = 1.5).
    """
    gx = cv2.Sobel(y, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(y, cv2.CV_32F, 0, 1, ksize=3) / 8
    grad = np.hypot(gx, gy)
    k = np.ones((2 * _RANGE_RADIUS + 1,) * 2, np.uint8)
    rng = cv2.dilate(y, k) - cv2.erode(y, k)
    sharp = np.where(rng >= _MIN_CONTRAST, grad / np.maximum(rng, 1e-6), np.nan)
    return grad, sharp.astype(np.float32)


def _strongest(grad: np.ndarray, sharp: np.ndarray, mask: np.ndarray, top: float) -> float:
    """90th percentile sharpness of the ``top`` fraction of edge pixels (by gradient) in
    ``mask``: how sharp its sharpest edges are."""
    sel = mask & np.isfinite(sharp)
    if sel.sum() < 8:
        return math.nan
    g = grad[sel]
    keep = g >= np.quantile(g, 1.0 - top)
    return float(np.quantile(sharp[sel][keep], 0.9))


def edge_hardness(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """Sharpness of the edges round the mouth interior against the image's own strong edges.

    Sharpness is the gradient over the local contrast (:func:`_edge_sharpness`, px^-1,
    contrast-free). The interior is the inner-lip polygon grown by 0.02 d (cavity, teeth and
    their border with the lips); its sharpness is the 90th percentile over its strongest
    quarter of edge pixels. The reference is the same over the strongest tenth of edge pixels
    inside the face oval away from the lips (eyes, brows, nose, jaw: the image's own blur).

    Args:
        frame: (H, W, 3) RGB, uint8 or float in [0, 1] (or (3, H, W)).
        landmarks: (478, 2|3) landmarks in pixels, of a frame with the mouth open.

    Returns:
        ``ln(interior / reference)``: 0 = as sharp as the face, ln 2 = twice as sharp (a step
        pasted on a blurred face); > :data:`MOUTH_HARDNESS` looks cut out. NaN without a face
        or without edges in either region.

    Example:
        >>> edge_hardness(np.zeros((8, 8, 3), np.uint8), np.full((478, 3), np.nan))
        nan
    """
    xy = face_xy(landmarks)
    if xy is None:
        return math.nan
    d = eye_scale(xy)
    crop = Crop(frame, xy[FACE_OVAL], 0.05 * d)
    if not crop.ok:
        return math.nan
    grad, sharp = _edge_sharpness(luma(crop.rgb))
    border = dilate(crop.poly(xy[LIPS_INNER]), _BORDER_BAND * d)
    face = crop.poly(xy[FACE_OVAL]) & ~dilate(crop.poly(xy[LIPS_OUTER]), 0.1 * d)
    s_border = _strongest(grad, sharp, border, 0.25)
    s_face = _strongest(grad, sharp, face, 0.10)
    if not (s_border > 0 and s_face > 0):
        return math.nan
    return math.log(s_border / s_face)


_EYES = ((EYE_L_UPPER, EYE_L_LOWER, BROW_L_LOWER), (EYE_R_UPPER, EYE_R_LOWER, BROW_R_LOWER))
_LID_T = (0.15, 0.45)  # the lid: this span of the way from the lid line up to the brow
_SKIN_T = (0.50, 0.75)  # the skin above the eye, below the brow


def _lid_regions(
    xy: np.ndarray, upper: list[int], lower: list[int], brow: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(lid polygon, skin polygon) of one eye, each (N, 2), from lid line to brow.

    The lid line is the midpoint of the paired upper and lower lid points (the closed eye's
    lash line); each interior point is joined to the brow's lower edge at the same position
    along the eye's corner axis, and the polygons are the strips ``t`` in :data:`_LID_T` and
    :data:`_SKIN_T` of the way along those joins.
    """
    line = (xy[upper] + xy[lower])[2:-2] / 2  # (5, 2): corners and their neighbours excluded
    axis = xy[upper[-1]] - xy[upper[0]]
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    b = xy[brow]
    pb, pl = b @ axis, line @ axis
    order = np.argsort(pb)
    top = np.stack([np.interp(pl, pb[order], b[order, k]) for k in (0, 1)], axis=1)

    def strip(t0: float, t1: float) -> np.ndarray:
        return np.concatenate([line + t0 * (top - line), (line + t1 * (top - line))[::-1]])

    return strip(*_LID_T), strip(*_SKIN_T)


def lid_realism(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Colour distance of each closed lid to the skin between the eye and the brow.

    Per eye, the lid is the strip 15-45 % of the way from the lid line (midway between the lid
    contours) up to the brow's lower edge, and the skin is the strip 50-75 % of the way, over
    the middle of the eye (see :func:`_lid_regions`). The value is the CIELAB Delta E*ab (1976)
    between the two regions' median colours (medians: the lash line and skin texture do not
    move them): real closed lids read about 5-14, a lid holding stretched iris and lashes more
    than 20.

    Args:
        frame: (H, W, 3) RGB, uint8 or float in [0, 1] (or (3, H, W)).
        landmarks: (478, 2|3) landmarks in pixels, of a frame with the eyes closed.

    Returns:
        (2,) float64 Delta E per eye (image left, image right; > :data:`LID_SKIN_DE`: not skin),
        NaN for an eye without a face or whose regions are off the frame or empty, or whose
        skin above is hidden (:data:`SKIN_HIDDEN_DE`: glasses, hair).

    Example:
        >>> lid_realism(np.zeros((8, 8, 3), np.uint8), np.full((478, 3), np.nan))
        array([nan, nan])
    """
    out = np.full(2, np.nan)
    xy = face_xy(landmarks)
    if xy is None:
        return out
    cheek = cheek_lab(frame, xy)
    for i, (upper, lower, brow) in enumerate(_EYES):
        lid_poly, skin_poly = _lid_regions(xy, upper, lower, brow)
        crop = Crop(frame, np.concatenate([lid_poly, skin_poly]), 2.0)
        if not crop.ok:
            continue
        lid, skin = crop.poly(lid_poly), crop.poly(skin_poly)
        if lid.sum() < 8 or skin.sum() < 8:
            continue
        lab = cv2.cvtColor(crop.rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
        above = skin_seen(lab[skin], cheek)
        if above is None:
            continue
        ref = np.median(above, axis=0)
        out[i] = float(np.linalg.norm(np.median(lab[lid], axis=0) - ref))
    return out


def skin_seen(lab: np.ndarray, cheek: np.ndarray | None) -> np.ndarray | None:
    """The (N, 3) CIELAB pixels of the skin strip above an eye that are skin: those within
    :data:`SKIN_HIDDEN_DE` of the ``cheek`` colour (all of them without one); None when fewer
    than :data:`SKIN_SEEN` of the strip are (glasses or hair over it)."""
    if cheek is None:
        return lab
    kept = lab[np.linalg.norm(lab - cheek, axis=1) < SKIN_HIDDEN_DE]
    return kept if len(kept) >= SKIN_SEEN * len(lab) and len(kept) else None


def _cheek_centres(xy: np.ndarray) -> list[np.ndarray]:
    """(x, y) of the two cheek discs: midway between each outer eye corner and the mouth
    corner below it."""
    return [
        (xy[EYE_L_OUTER] + xy[MOUTH_CORNER_L]) / 2,
        (xy[EYE_R_OUTER] + xy[MOUTH_CORNER_R]) / 2,
    ]


def cheek_lab(frame: np.ndarray, xy: np.ndarray) -> np.ndarray | None:
    """(3,) median CIELAB colour of the two cheek discs (see :func:`sharpness_match`), or None."""
    centres = _cheek_centres(xy)
    r = _CHEEK_RADIUS * eye_scale(xy)
    crop = Crop(frame, np.stack(centres), r + 2.0)
    if not crop.ok:
        return None
    mask = crop.disc(centres[0], r) | crop.disc(centres[1], r)
    if mask.sum() < 8:
        return None
    lab = cv2.cvtColor(crop.rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return np.median(lab[mask], axis=0)


def _reblur_loss(y: np.ndarray, mask: np.ndarray) -> float:
    """ln of the fine-band energy in ``mask`` before over after one more blur (sigma 1 px).

    The fine band is luma minus its Gaussian blur at sigma 1 px. A sharp region loses much of
    it to one more blur, an already blurred one little (the re-blur principle of Crete-Roffet
    et al., 2007, "The blur effect"); as a ratio of two energies of the same pixels it does not
    depend on the region's contrast. NaN when the region is flat (no fine band to lose).
    """

    def fine(z: np.ndarray) -> float:
        return float(np.mean((z - cv2.GaussianBlur(z, (0, 0), _FINE_SIGMA))[mask] ** 2))

    before, after = fine(y), fine(cv2.GaussianBlur(y, (0, 0), _FINE_SIGMA))
    return math.log(before / after) if after > _FLAT else math.nan


def sharpness_match(frame: np.ndarray, landmarks: np.ndarray) -> float:
    """High-frequency content of the mouth against the cheeks, as a log-ratio.

    Each region's sharpness is the fine-band energy it loses to one more blur
    (:func:`_reblur_loss`, a contrast-free ratio). Raw high-frequency energy would compare
    content instead (lips have edges, cheeks texture: untouched portraits spread over +-1 in
    the tests), the re-blur ratio mostly the blur. The mouth is the outer-lip polygon grown by
    0.05 d; the cheeks are two discs of radius 0.12 d midway between each outer eye corner and
    the mouth corner below it.

    Args:
        frame: (H, W, 3) RGB, uint8 or float in [0, 1] (or (3, H, W)).
        landmarks: (478, 2|3) landmarks in pixels.

    Returns:
        ``ln(mouth loss ratio) - ln(cheek loss ratio)``: 0 = matched, > 0 a mouth sharper than
        the face (pasted on), < 0 blurrier; beyond +-:data:`SHARPNESS_MATCH` the mismatch
        shows. NaN without a face, or when the cheeks are flat (no texture to compare, e.g. a
        flat-shaded cartoon).

    Example:
        >>> sharpness_match(np.zeros((8, 8, 3), np.uint8), np.full((478, 3), np.nan))
        nan
    """
    xy = face_xy(landmarks)
    if xy is None:
        return math.nan
    d = eye_scale(xy)
    cheeks = _cheek_centres(xy)
    r = _CHEEK_RADIUS * d
    crop = Crop(frame, np.concatenate([xy[LIPS_OUTER], *(c[None] for c in cheeks)]), r + 0.1 * d)
    if not crop.ok:
        return math.nan
    mouth = dilate(crop.poly(xy[LIPS_OUTER]), 0.05 * d)
    cheek = crop.disc(cheeks[0], r) | crop.disc(cheeks[1], r)
    if mouth.sum() < 8 or cheek.sum() < 8:
        return math.nan
    y = luma(crop.rgb)
    return _reblur_loss(y, mouth) - _reblur_loss(y, cheek)
