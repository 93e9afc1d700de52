"""The colours inside an opened mouth: cavity, tongue, lower and upper teeth.

Everything is a function of three coordinates over the opening's bounding box: the depth
between the lips (0 at the upper lip's inner edge, 1 at the lower lip's), the lateral position
(-1 and 1 at the mouth corners) and the distance to the nearest lip edge in pixels. Sizes
scale with the outer-eye-corner distance E, so a face looks the same at any render size.

- The cavity is darkest at the back (the middle of the opening) and lighter towards the lips,
  where the inside of the lips catches light, and shadowed towards the corners.
- The tongue is a hump on the floor of the mouth that rises into view as the jaw opens, lit on
  its upper surface.
- The lower teeth stand behind the lower lip and show as the jaw opens wide; the upper teeth
  hang from the upper lip. Both have the faint gaps between teeth and darken towards the
  corners, as a row of teeth turns away from the camera.
"""

from __future__ import annotations

import numpy as np

from avatar.renderers.meshwarp.mouth_colours import MouthInterior

TOOTH_WIDTH = 0.062
"""Width of a front tooth, in units of E."""
UPPER_TEETH = 0.07
"""Height of the upper teeth below the lip, in units of E (at most half the opening)."""
LOWER_TEETH = 0.03
"""Height of the lower teeth above the lip once the jaw is wide open, in units of E."""
LOWER_TEETH_FROM, LOWER_TEETH_FULL = 0.06, 0.14
"""Opening (units of E) at which the lower teeth start to show, and at which they are whole."""


TEETH_FROM, TEETH_FULL = 0.03, 0.06
"""Lips parted less than TEETH_FROM (units of E) show only the dark between them; teeth fade
in up to TEETH_FULL: a sliver of tooth white between nearly closed lips reads as a seam."""


def teeth_shown(gap: np.ndarray, eye_distance: float) -> np.ndarray:
    """How much of the teeth shows, in [0, 1], for lips ``gap`` pixels apart (any shape)."""
    start, full = TEETH_FROM * eye_distance, TEETH_FULL * eye_distance
    return np.clip((np.asarray(gap, np.float32) - start) / (full - start), 0.0, 1.0)


def teeth_shade(gap: np.ndarray, eye_distance: float) -> np.ndarray:
    """Brightness of the teeth, in [0.5, 1], for lips ``gap`` pixels apart: lips barely parted
    keep the teeth in their shadow (an ivory band there, not a white or grey one)."""
    opened = (np.asarray(gap, np.float32) - 0.03 * eye_distance) / (0.05 * eye_distance)
    return 0.5 + 0.5 * np.clip(opened, 0.0, 1.0)


def shaded(colour: np.ndarray, shade: np.ndarray) -> np.ndarray:
    """(..., 3) ``colour`` darkened by ``shade`` (...) in (0, 1], warmer as it darkens (blue
    and green fall faster, lit red from inside the mouth): teeth in shadow, not grey or olive."""
    colour = np.asarray(colour, np.float32)
    # shade ** _WARM to first order: colour * (1 - _WARM * (1 - shade)), as one multiply-add
    return colour * (1.0 - _WARM) + np.asarray(shade, np.float32)[..., None] * (colour * _WARM)


def _ramp(x: np.ndarray | float, width: float) -> np.ndarray:
    """0 below 0, 1 above ``width``, linear between (an anti-aliased step)."""
    return np.clip(np.asarray(x, np.float32) / np.float32(max(width, 1e-3)), 0.0, 1.0)


_WARM = np.array([0.75, 1.1, 1.15], np.float32)  # red light from the mouth
_INSIDE_LIP = np.array([0.6, 0.36, 0.36], np.float32)


def _tooth_gaps(lateral: np.ndarray, half_width: float, eye_distance: float) -> np.ndarray:
    """(1, w) brightness of a row of teeth: 1 on a tooth, dimmer in the gaps between teeth."""
    tooth = TOOTH_WIDTH * eye_distance
    # teeth narrow towards the corners as the arch turns away from the camera
    position = lateral * half_width / tooth * (1.0 + 0.35 * lateral**2)
    edge = np.abs(position - np.round(position)) * tooth  # pixels to the nearest gap
    sharp = max(0.012 * eye_distance, 0.6)
    return 1.0 - 0.22 * np.exp(-0.5 * (edge / sharp) ** 2)


def interior_rgb(
    xs: np.ndarray,
    ys: np.ndarray,
    y_up: np.ndarray,
    y_lo: np.ndarray,
    corners: tuple[float, float],
    mouth: MouthInterior,
    eye_distance: float,
    teeth: bool = True,
) -> np.ndarray:
    """(h, w, 3) float32 RGB of the mouth's inside over the box ``ys x xs``.

    Args:
        xs, ys: (w,) and (h,) pixel centres of the box's columns and rows.
        y_up, y_lo: (w,) the upper and lower inner-lip edges at each column, pixels.
        corners: x of the left and right mouth corners, pixels.
        mouth: the identity's mouth colours.
        eye_distance: E, pixels.
        teeth: draw teeth (off where the portrait's own teeth are laid over them).
    """
    e = float(eye_distance)
    left, right = corners
    half = max(0.5 * (right - left), 1.0)
    lateral = np.clip((xs - 0.5 * (left + right)) / half, -1.0, 1.0).astype(np.float32)[None, :]
    gap = np.clip(y_lo - y_up, 1e-3, None).astype(np.float32)[None, :]
    y = ys.astype(np.float32)[:, None]
    below_upper = y - y_up.astype(np.float32)[None, :]  # pixels below the upper lip edge
    above_lower = y_lo.astype(np.float32)[None, :] - y  # pixels above the lower lip edge
    depth = np.clip(below_upper / gap, 0.0, 1.0)
    side = lateral**2
    # cavity: dark at the back, lit towards the lips, shadowed in the corners
    back = np.clip(side + (2.0 * depth - 1.0) ** 2, 0.0, 1.0)
    shade = (0.5 + 0.5 * back) * (1.0 - 0.4 * side)
    out = np.asarray(mouth.cavity_color, np.float32) * shade[..., None]
    rim = np.exp(-np.clip(np.minimum(below_upper, above_lower), 0.0, None) / max(0.03 * e, 1.0))
    lip_inside = np.asarray(mouth.lip_color, np.float32) * _INSIDE_LIP  # wet, redder, darker
    out += (0.55 * rim)[..., None] * (lip_inside - out)
    # tongue: rises from the floor of the mouth as the jaw opens
    opened = _ramp(gap - 0.05 * e, 0.1 * e)
    height = 0.42 * gap * np.sqrt(np.clip(1.0 - side / 0.55, 0.0, 1.0)) * opened
    if height.max() > 0.5:
        into = y - (y_lo[None, :] - height)  # pixels below the tongue's top
        on_tongue = _ramp(into, max(0.08 * float(gap.max()), 1.0)) * (height > 0.5)
        lit = 0.6 + 0.4 * np.clip(1.0 - into / np.maximum(height, 1.0), 0.0, 1.0)
        shade = lit * (1.0 - 0.45 * side)
        out += on_tongue[..., None] * (
            np.asarray(mouth.tongue_color, np.float32) * shade[..., None] - out
        )
    if not teeth:
        return out
    colour = np.asarray(mouth.teeth_color, np.float32)
    gaps = _tooth_gaps(lateral, half, e) * teeth_shade(gap, e)
    # lower teeth: behind the lower lip, shown as the jaw opens wide
    shown = np.clip(
        (gap - LOWER_TEETH_FROM * e) / ((LOWER_TEETH_FULL - LOWER_TEETH_FROM) * e), 0, 1
    )
    lower_h = np.minimum(LOWER_TEETH * e, 0.3 * gap) * shown
    if lower_h.max() > 0.3:
        on_lower = _ramp(lower_h - above_lower, 1.0) * _ramp(0.5 - np.abs(lateral), 0.15)
        on_lower *= lower_h > 0.3
        lower = shaded(colour, 0.72 * gaps * (1.0 - 0.35 * side))
        out += on_lower[..., None] * (lower - out)
    # upper teeth: hang from the upper lip, in its shadow just below it
    upper_h = np.minimum(UPPER_TEETH * e, 0.5 * gap)
    on_upper = _ramp(upper_h - below_upper, 1.0) * _ramp(0.86 - np.abs(lateral), 0.15)
    lip_shadow = 0.78 + 0.22 * _ramp(below_upper, max(0.025 * e, 1.0))
    upper = shaded(colour, gaps * lip_shadow * (1.0 - 0.4 * side))
    out += (on_upper * teeth_shown(gap, e))[..., None] * (upper - out)
    return out
