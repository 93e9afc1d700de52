"""Image files read within limits: size from the header before decoding, reduced decoding, EXIF.

Pillow reads the header (its format plugins parse a file only as far as the pixel data) and OpenCV
decodes the pixels. An image whose pixel count exceeds the limit is refused before a pixel is
decoded, so a small file declaring a huge size (an image bomb) costs microseconds and no memory. A
legal image whose longer side exceeds ``max_side`` is decoded at 1/2, 1/4 or 1/8 scale where the
codec can do so directly (JPEG's DCT scaling) and resized with area averaging to at most that side.

The header is parsed by the plugin of each supported format directly rather than through
``PIL.Image.open``, whose last step is Pillow's own bomb check: it would warn above 89 MP and
refuse above 179 MP whatever the configured limit, before the size is known. The checks Pillow
makes inside the plugins, where parsing a header allocates (a WebP canvas, GIF frames), stay at
Pillow's defaults; nothing global is changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import cv2
import numpy as np

from avatar.errors import ImageReadError

log = logging.getLogger(__name__)

MEGAPIXELS_KEY = "identity.max_image_megapixels"
"""Config key of the pixel-count limit, named in refusals."""
SIDE_KEY = "identity.max_image_side"
"""Config key of the longer side images are reduced to, named in messages."""
DECODER_MAX_SIDE = 1 << 20
"""Longest side OpenCV's decoders accept (its ``CV_IO_MAX_IMAGE_WIDTH``/``HEIGHT`` default)."""
MAX_BYTES_PER_PIXEL = 16
"""Most bytes an uncompressed pixel takes (4 float32 channels): bounds a legal file's size."""
FILE_SLACK_BYTES = 16 << 20
"""Room for metadata (EXIF, ICC profiles, thumbnails) in that bound."""
ORIENTATION_TAG = 0x0112
_REDUCED = {
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}
_SCALED_FORMATS = frozenset({"JPEG", "MPO"})
"""Formats libjpeg decodes at 1/2, 1/4 and 1/8 scale directly (others are decoded, then resized)."""
DECODED_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF", "AVIF", "JPEG2000", "PPM", "SUN")
"""Pillow's names of the formats OpenCV decodes here (``PPM``: also PBM, PGM, PFM; ``MPO`` too)."""
_EXIF_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP"})
"""Formats whose EXIF orientation OpenCV's unchanged decode ignores (it applies TIFF's itself)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header declares.

    Attributes:
        width: stored width in pixels (before EXIF orientation).
        height: stored height in pixels.
        format: Pillow's format name (``"PNG"``, ``"JPEG"``, ...).
        orientation: EXIF orientation 1..8 still to apply after decoding (1: none).
        gray_key: a grayscale PNG's transparent gray value (its tRNS chunk as Pillow reads
            it), which OpenCV's decoder drops; None for other images.
    """

    width: int
    height: int
    format: str
    orientation: int
    gray_key: int | None = None

    @property
    def viewed_size(self) -> tuple[int, int]:
        """(width, height) as the image is viewed, after its orientation."""
        swap = self.orientation in (5, 6, 7, 8)
        return (self.height, self.width) if swap else (self.width, self.height)


@lru_cache(maxsize=1)
def _pillow() -> ModuleType:
    from PIL import Image

    Image.init()  # registers every format plugin in Image.OPEN
    return Image


def read_header(path: Path) -> ImageHeader:
    """Reads an image file's size, format and EXIF orientation without decoding pixels.

    Raises:
        ImageReadError: the file is empty, of an unknown or unsupported format, or its header is
            damaged.
    """
    pil = _pillow()
    try:
        with path.open("rb") as fp:
            prefix = fp.read(16)
            if not prefix:
                raise ImageReadError(f"cannot read image {path}: empty file (0 bytes)")
            for name in DECODED_FORMATS:
                factory, accept = pil.OPEN[name]
                verdict = accept(prefix) if accept else True
                if not verdict or isinstance(verdict, str):  # a str: a variant it cannot read
                    continue
                fp.seek(0)
                im = factory(fp, str(path))  # parses the header only
                width, height = (int(v) for v in im.size)
                fmt = str(im.format)
                orientation = _orientation(im) if fmt in _EXIF_FORMATS else 1
                key = im.info.get("transparency") if im.mode in ("1", "L", "I;16", "I") else None
                break
            else:
                raise ImageReadError(f"cannot read image {path}: {_unsupported(path)}")
    except ImageReadError:
        raise
    except OSError as exc:
        if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
            raise ImageReadError(f"cannot read image {path}: {exc.strerror}") from exc
        raise ImageReadError(f"cannot read image {path}: damaged image header ({exc})") from exc
    except pil.DecompressionBombError as exc:  # Pillow's in-plugin check, before allocating
        raise ImageReadError(
            f"image {path} is too large to open: {exc} (Pillow's own check, made before "
            f"{MEGAPIXELS_KEY} applies); downscale the image"
        ) from exc
    except Exception as exc:  # the plugins raise many types on damaged headers
        raise ImageReadError(
            f"cannot read image {path}: damaged image header ({type(exc).__name__}: {exc})"
        ) from exc
    if width < 1 or height < 1:
        raise ImageReadError(f"cannot read image {path}: header declares {width}x{height}")
    gray_key = key if fmt == "PNG" and isinstance(key, int) else None
    return ImageHeader(width, height, fmt, orientation, gray_key)


def _unsupported(path: Path) -> str:
    """Why a file no supported plugin accepts cannot be read: its format, if Pillow knows it."""
    try:
        with _pillow().open(path) as im:  # Pillow's own checks apply: it is not decoded
            fmt = im.format
    except Exception:
        return "not a recognised image format"
    return f"{fmt} images are not supported; save it as one of {', '.join(DECODED_FORMATS)}"


def _orientation(im: Any) -> int:
    """EXIF orientation from the header's EXIF block (1 when absent or unreadable)."""
    raw = im.info.get("exif")  # never getexif(): for PNG it decodes the pixels to look further
    if not raw:
        return 1
    try:
        exif = _pillow().Exif()
        exif.load(raw)
        value = int(exif.get(ORIENTATION_TAG, 1))
    except Exception:  # a damaged EXIF block only loses the orientation
        log.debug("unreadable EXIF block; orientation not applied", exc_info=True)
        return 1
    return value if 1 <= value <= 8 else 1


def check_file_size(path: Path, file_bytes: int, *, max_megapixels: float) -> None:
    """Refuses a file larger than any image within the pixel limit can be (before parsing it).

    Raises:
        ImageReadError: naming the file, its size, the limit and its config key.
    """
    most_bytes = int(max_megapixels * 1e6) * MAX_BYTES_PER_PIXEL + FILE_SLACK_BYTES
    if file_bytes > most_bytes:
        raise ImageReadError(
            f"image {path} is a {file_bytes / 2**20:.0f} MiB file, more than an image within "
            f"{MEGAPIXELS_KEY}={max_megapixels:g} can take ({most_bytes / 2**20:.0f} MiB); "
            "re-save it without extra data"
        )


def check_limits(header: ImageHeader, path: Path, *, max_megapixels: float) -> None:
    """Refuses an image whose declared size is beyond the limits.

    Raises:
        ImageReadError: naming the file, the size found, the limit and its config key.
    """
    pixels = header.width * header.height
    found = f"{header.width}x{header.height} pixels ({pixels / 1e6:.1f} megapixels)"
    if pixels > max_megapixels * 1e6:
        raise ImageReadError(
            f"image {path} is {found}, over the limit {MEGAPIXELS_KEY}={max_megapixels:g}: "
            f"downscale the image, or raise {MEGAPIXELS_KEY}"
        )
    if max(header.width, header.height) > DECODER_MAX_SIDE:
        raise ImageReadError(
            f"image {path} is {found}: a side over {DECODER_MAX_SIDE} pixels, the most the "
            "decoders accept; crop or downscale the image"
        )


def decode(
    buf: np.ndarray, header: ImageHeader, path: Path, *, max_side: int, max_megapixels: float
) -> np.ndarray:
    """Decodes a file's bytes, at reduced scale where the codec can and the image is too large.

    Args:
        buf: (N,) uint8, the whole file.
        header: its :func:`read_header`.
        path: named in errors.
        max_side: JPEGs are decoded at the smallest of 1/2, 1/4, 1/8 scale that brings the
            longer side within this (or at 1/8); other formats at full size.
        max_megapixels: decoded pixel counts are checked again against this.

    Returns:
        OpenCV's array: (H, W) or (H, W, C) BGR(A), uint8, uint16 or float32; not oriented. A
        grayscale PNG with a transparent gray value (``header.gray_key``) gives (H, W, 2) gray
        and alpha.

    Raises:
        ImageReadError: the data cannot be decoded.
    """
    factor = 1
    if header.format in _SCALED_FORMATS:
        while factor < 8 and -(-max(header.width, header.height) // factor) > max_side:
            factor *= 2
    # The caller applies the orientation in both cases (UNCHANGED ignores it for JPEG).
    flags = cv2.IMREAD_UNCHANGED
    if factor > 1:
        flags = _REDUCED[factor] | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        img = cv2.imdecode(buf, flags)
    except cv2.error as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise ImageReadError(f"cannot read image {path}: the decoder failed ({reason})") from exc
    if img is None:
        raise ImageReadError(
            f"cannot read image {path}: not a decodable image ({header.format} data, "
            f"{buf.size} bytes: damaged, truncated or an unsupported variant)"
        )
    if img.shape[0] * img.shape[1] > max_megapixels * 1e6:  # a header that lied to Pillow
        raise ImageReadError(
            f"image {path} decoded to {img.shape[1]}x{img.shape[0]} pixels, over the limit "
            f"{MEGAPIXELS_KEY}={max_megapixels:g} (its header declared "
            f"{header.width}x{header.height})"
        )
    if factor > 1:
        log.debug("%s decoded at 1/%d scale: %dx%d", path, factor, img.shape[1], img.shape[0])
    if header.gray_key is not None and img.ndim == 2:
        img = _keyed_alpha(img, header.gray_key, bit_depth=int(buf[24]))  # IHDR's bit depth
    return img


def _keyed_alpha(gray: np.ndarray, key: int, *, bit_depth: int) -> np.ndarray:
    """(H, W, 2) gray and alpha: opaque except where ``gray`` is the key (scaled as the decoder
    scales 1-, 2- and 4-bit gray to 8 bits; Pillow gives a 1-bit key as 0 or 255 already)."""
    if bit_depth == 1:
        key = 255 if key else 0
    elif bit_depth < 8:
        key *= 255 // ((1 << bit_depth) - 1)
    opaque = np.iinfo(gray.dtype).max if gray.dtype.kind == "u" else 1
    alpha = np.where(gray == key, 0, opaque).astype(gray.dtype)
    return np.dstack([gray, alpha])


def fit_side(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrinks an image with area averaging so that its longer side is at most ``max_side``.

    Args:
        image: (H, W) or (H, W, C) array, C <= 4, uint8, uint16 or float.
        max_side: pixels.

    Returns:
        ``image`` itself when it fits, else a resized copy of the same layout whose longer side
        is ``max_side``.
    """
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turns a decoded image as its EXIF orientation says (1..8; the TIFF/EXIF definition).

    Args:
        image: (H, W, ...) array as stored.
        orientation: 1 leaves it; 2, 4 mirror; 3 turns 180 degrees; 6, 8 turn 90 degrees
            clockwise, counter-clockwise; 5, 7 transpose across either diagonal.

    Returns:
        A contiguous array as the image is meant to be viewed.
    """
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: a.swapaxes(0, 1)[:, ::-1],
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: a.swapaxes(0, 1)[::-1],
    }.get(orientation)
    return image if turned is None else np.ascontiguousarray(turned(image))
