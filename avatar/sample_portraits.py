"""Sample portraits found in installed packages or drawn here: the default companion, a photo
and a cartoon (the look's contact sheet, the made-here renderer corpus).

- ``embedded:astronaut``: the default companion (scikit-image's astronaut, public domain): a
  small face (about 95 px wide in the source) smiling with teeth.
- ``photo``: Grace Hopper (US Navy photo, public domain) as matplotlib ships it in its sample
  data (``matplotlib`` comes with the ``eval`` extra): a closed mouth, an older face.
- ``cartoon``: a flat-shaded cartoon head with ink lines on a transparent background, drawn
  here by :func:`draw_cartoon` (the project's own picture): an RGBA portrait like generated
  character art, whose transparent pixels hold black colour.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from avatar.companion import EMBEDDED_ASTRONAUT
from avatar.errors import ImageReadError

log = logging.getLogger(__name__)

__all__ = ["LOOK_PORTRAITS", "draw_cartoon", "look_portraits", "photo_path"]

LOOK_PORTRAITS = ("default", "photo", "cartoon")
"""The portraits of the contact sheet, in its order."""

_INK = (40, 30, 35, 255)  # BGRA
_SKIN = (170, 200, 245, 255)
_HAIR = (60, 70, 150, 255)
_LIPS = (90, 90, 200, 255)


def photo_path() -> Path:
    """Grace Hopper's portrait in matplotlib's sample data (600 x 512 JPEG).

    Raises:
        ImageReadError: matplotlib (the ``eval`` extra) is not installed.
    """
    try:
        import matplotlib
    except ImportError as exc:
        raise ImageReadError(
            "the photo portrait ships with matplotlib: install the eval extra"
        ) from exc
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise ImageReadError(f"matplotlib's sample photo is missing: {path}")
    return path


def _ellipse(img, centre, axes, colour, *, thickness=-1, start=0, end=360) -> None:
    cv2.ellipse(
        img,
        (int(centre[0]), int(centre[1])),
        (int(axes[0]), int(axes[1])),
        0,
        start,
        end,
        colour,
        thickness,
        cv2.LINE_AA,
    )


def draw_cartoon(size: int = 1024) -> np.ndarray:
    """A cartoon head and shoulders: (size, size, 4) uint8 BGRA, transparent around it.

    Transparent pixels are (0, 0, 0, 0), as many painting programs save them, so a reader
    that averages colour before compositing the alpha shows a dark fringe.
    """
    s = size / 1024.0
    img = np.zeros((size, size, 4), np.uint8)
    c = size // 2

    def p(x: float, y: float) -> tuple[float, float]:
        return c + x * s, c + y * s

    _ellipse(img, p(0, -20), (300 * s, 340 * s), _HAIR)  # hair behind the head
    x0, y0 = p(-80, 200)
    x1, y1 = p(80, 420)
    cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)), _SKIN, -1, cv2.LINE_AA)  # neck
    _ellipse(img, p(0, 572), (380 * s, 260 * s), (150, 110, 60, 255))  # shoulders
    _ellipse(img, p(0, 20), (215 * s, 270 * s), _SKIN)  # face
    _ellipse(img, p(0, 20), (215 * s, 270 * s), _INK, thickness=max(1, int(4 * s)))
    fringe = [(-230, -60), (-150, -230), (0, -280), (150, -230), (235, -60), (160, -160)]
    fringe += [(40, -190), (-80, -150)]
    pts = np.array([p(x, y) for x, y in fringe], np.int32)
    cv2.fillPoly(img, [pts], _HAIR, cv2.LINE_AA)
    for side in (-1, 1):
        ex, ey = p(side * 90, -10)
        _ellipse(img, (ex, ey), (58 * s, 40 * s), (250, 250, 250, 255))  # eye white
        _ellipse(img, (ex, ey + 2 * s), (30 * s, 34 * s), (90, 120, 60, 255))  # iris
        _ellipse(img, (ex, ey + 2 * s), (14 * s, 16 * s), (20, 20, 20, 255))  # pupil
        _ellipse(img, (ex - 8 * s, ey - 8 * s), (6 * s, 6 * s), (255, 255, 255, 255))
        lash = max(1, int(6 * s))
        _ellipse(img, (ex, ey), (58 * s, 40 * s), _INK, thickness=lash, start=180, end=360)
        _ellipse(img, (ex, ey), (58 * s, 40 * s), _INK, thickness=max(1, int(2 * s)), end=160)
        _ellipse(
            img, (ex, ey - 70 * s), (62 * s, 20 * s), _HAIR, thickness=int(12 * s), start=200
        )  # brow
        _ellipse(img, p(side * 140, 110), (40 * s, 22 * s), (150, 160, 245, 255))  # cheek
    _ellipse(img, p(0, 95), (22 * s, 12 * s), (120, 150, 200, 255), thickness=int(4 * s), end=180)
    _ellipse(img, p(0, 170), (75 * s, 26 * s), _LIPS, end=180)  # lower lip
    _ellipse(img, p(0, 168), (75 * s, 10 * s), _LIPS, start=180)  # upper lip
    a, b = p(-75, 170), p(75, 170)
    cv2.line(
        img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), _INK, max(1, int(3 * s)), cv2.LINE_AA
    )
    return img


def look_portraits(folder: Path) -> dict[str, str]:
    """Image refs of :data:`LOOK_PORTRAITS`; the cartoon is written to ``folder`` as a PNG.

    Raises:
        ImageReadError: the photo's package is not installed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cartoon = folder / "cartoon.png"
    if not cartoon.is_file():
        cv2.imwrite(str(cartoon), draw_cartoon())
        log.info("drew the cartoon portrait: %s", cartoon)
    return {"default": EMBEDDED_ASTRONAUT, "photo": str(photo_path()), "cartoon": str(cartoon)}
