"""What transparent pixels of a companion image become: config ``identity.background``.

An image with an alpha channel is composited over the background before faces are searched, and
with straight alpha before any resize: each colour channel is multiplied by its alpha at full
size, colour and alpha are shrunk (area averaging) apart, and the background fills what the alpha
leaves, ``out = colour' + background * (1 - alpha')``. For a plain colour that is exactly
compositing at full size, then shrinking. The colour stored under fully transparent pixels (often
black or garbage in generated character art) is multiplied by 0, so it never reaches the output:
no dark fringe around the head. 16-bit alpha is used at full precision (float32).
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from avatar.errors import ConfigValueError, ImageReadError
from avatar.images import fit_side, read_header

BACKGROUND_KEY = "identity.background"
NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "black": (0, 0, 0),
    "gray": (128, 128, 128),
    "grey": (128, 128, 128),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
}
"""Colour names ``identity.background`` accepts, as RGB (green and blue: chroma-key screens)."""
_HEX = re.compile(r"#[0-9a-fA-F]{6}")
_SCALE = {np.dtype(np.uint8): 1 / 255, np.dtype(np.uint16): 1 / 65535}

Background = tuple[int, int, int] | Path
"""A parsed background: an RGB colour, or an image file."""


def parse_background(value: object) -> Background:
    """An ``identity.background`` value as an RGB colour or an image file's path.

    Args:
        value: a colour name (see :data:`NAMED_COLOURS`), ``"#RRGGBB"``, or the path of an
            image file (its header is read; the pixels are read when a portrait needs them).

    Raises:
        ConfigValueError: naming the key, the value and the accepted forms.
    """
    reason = ""
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.lower() in NAMED_COLOURS:
            return NAMED_COLOURS[text.lower()]
        if _HEX.fullmatch(text):
            return int(text[1:3], 16), int(text[3:5], 16), int(text[5:7], 16)
        path = Path(text).expanduser()
        if text.startswith("#"):
            reason = ": not a #RRGGBB colour"
        elif not path.is_file():
            reason = ": no such file" if not path.exists() else ": not a regular file"
        else:
            try:
                read_header(path)
            except ImageReadError as exc:
                reason = f": {exc}"
            else:
                return path
    names = ", ".join(NAMED_COLOURS)
    raise ConfigValueError(
        f"{BACKGROUND_KEY} must be a colour ({names}, or '#RRGGBB') or the path of an image "
        f"file, got {value!r}{reason}"
    )


def premultiplied(image: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour times straight alpha, and alpha, each shrunk to ``max_side`` after multiplying.

    Args:
        image: (H, W, 2) gray + alpha or (H, W, 4) BGRA as decoded; uint8, uint16 or float
            (float is clipped to [0, 1], NaN is 0).
        max_side: longest side of the result (:func:`avatar.images.fit_side`).

    Returns:
        (h, w, 3) float32 RGB premultiplied colour and (h, w) float32 alpha, both in [0, 1].
    """
    scale = _SCALE.get(image.dtype)

    def unit(plane: np.ndarray) -> np.ndarray:
        plane = plane.astype(np.float32)
        if scale is None:
            return np.clip(np.nan_to_num(plane), 0.0, 1.0)
        plane *= scale
        return plane

    alpha = unit(image[:, :, -1])
    order = (0,) if image.shape[2] == 2 else (2, 1, 0)  # BGR -> RGB
    planes = [fit_side(unit(image[:, :, c]) * alpha, max_side) for c in order]
    colour = np.dstack(planes * 3 if len(planes) == 1 else planes)
    return colour, fit_side(alpha, max_side)


def composite(colour: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Premultiplied colour over a background: ``colour + background * (1 - alpha)``.

    Args:
        colour: (H, W, 3) float32 premultiplied RGB in [0, 1] (:func:`premultiplied`).
        alpha: (H, W) float32 in [0, 1].
        background: (3,) RGB colour or (H, W, 3) RGB image, uint8.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    under = np.asarray(background, dtype=np.float32) * np.float32(1 / 255)
    out = colour + under * (1.0 - alpha[:, :, None])
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def cover(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scales an image to cover ``height`` x ``width`` (aspect kept) and crops its centre.

    Args:
        image: (h, w, 3) uint8 RGB.

    Returns:
        (height, width, 3) uint8 RGB.
    """
    h, w = image.shape[:2]
    scale = max(height / h, width / w)
    size = (max(width, round(w * scale)), max(height, round(h * scale)))
    if size != (w, h):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, size, interpolation=interpolation)
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return np.ascontiguousarray(image[top : top + height, left : left + width])
