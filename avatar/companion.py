"""CompanionSpec: a companion's visual definition (images, style, voice); YAML and image reading."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from avatar.background import (
    BACKGROUND_KEY,
    Background,
    composite,
    cover,
    parse_background,
    premultiplied,
)
from avatar.errors import CompanionSpecError, ImageReadError
from avatar.images import (
    SIDE_KEY,
    ImageHeader,
    apply_orientation,
    check_file_size,
    check_limits,
    decode,
    fit_side,
    read_header,
)

log = logging.getLogger(__name__)

EMBEDDED_ASTRONAUT = "embedded:astronaut"
"""Image ref of the embedded default companion: scikit-image's public-domain NASA portrait."""
_HASH_CHUNK = 1 << 20


def configs_dir() -> Path:
    """The repository's Hydra ``configs/`` folder, found beside the ``avatar`` package.

    Equivalent to ``Path(avatar.__file__).parents[1] / "configs"``; this module's own path is used
    because ``avatar`` may be a namespace package without ``__file__``.
    """
    return Path(__file__).resolve().parents[1] / "configs"


@dataclass
class CompanionSpec:
    """What a companion looks and sounds like.

    Attributes:
        id: stable identifier (used in session and cache names).
        name: display name.
        images: image refs, best first: file paths, or ``"embedded:astronaut"``.
        style: free-form rendering style options (renderer-specific, may be empty).
        voice: TTS voice name, or None for the backend default.
    """

    id: str
    name: str
    images: list[str]
    style: dict = field(default_factory=dict)
    voice: str | None = None

    @classmethod
    def from_dict(cls, d: Any, *, base_dir: str | Path | None = None) -> CompanionSpec:
        """Builds and validates a spec from a mapping (e.g. parsed YAML).

        Args:
            d: mapping with keys ``id``, ``name``, ``images`` and optionally ``style``, ``voice``.
            base_dir: relative image paths are resolved against this folder (the YAML's folder).

        Raises:
            CompanionSpecError: naming the missing, unknown or malformed field.
        """
        if not isinstance(d, dict):
            raise CompanionSpecError(f"companion spec must be a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(map(str, d)) - known)
        if unknown:
            raise CompanionSpecError(
                f"companion spec has unknown field(s) {unknown}; allowed: {sorted(known)}"
            )
        for key in ("id", "name", "images"):
            if key not in d:
                raise CompanionSpecError(f"companion spec is missing required field '{key}'")
        for key in ("id", "name"):
            if not isinstance(d[key], str) or not d[key].strip():
                raise CompanionSpecError(f"companion field '{key}' must be a non-empty string")
        images = d["images"]
        if not isinstance(images, list):
            raise CompanionSpecError(
                f"companion field 'images' must be a list of paths, got {type(images).__name__}"
            )
        if not images:
            raise CompanionSpecError(f"companion '{d['id']}' has no images ('images' is empty)")
        bad = [i for i, ref in enumerate(images) if not isinstance(ref, str) or not ref.strip()]
        if bad:
            raise CompanionSpecError(f"companion field 'images' has non-string entries at {bad}")
        style = d.get("style") or {}
        if not isinstance(style, dict):
            raise CompanionSpecError(f"companion field 'style' must be a mapping, got {style!r}")
        voice = d.get("voice")
        if voice is not None and not isinstance(voice, str):
            raise CompanionSpecError(f"companion field 'voice' must be a string, got {voice!r}")
        refs = [_resolve_ref(ref, base_dir) for ref in images]
        return cls(id=d["id"], name=d["name"], images=refs, style=dict(style), voice=voice)


def _resolve_ref(ref: str, base_dir: str | Path | None) -> str:
    if ref.startswith("embedded:") or base_dir is None:
        return ref
    path = Path(ref).expanduser()
    return str(path if path.is_absolute() else Path(base_dir) / path)


def load_companion(path_or_name: str | Path) -> CompanionSpec:
    """Loads a companion spec from a YAML file path, or by name from ``configs/companion/``.

    Args:
        path_or_name: a path to a ``.yaml`` file, or a bare name such as ``"default"``.

    Raises:
        CompanionSpecError: the file is missing, is not valid YAML, or fails validation.

    Example:
        >>> load_companion("default").name
        'Astra'
    """
    path = Path(path_or_name).expanduser()
    if not path.is_file():
        by_name = configs_dir() / "companion" / f"{path_or_name}.yaml"
        if not by_name.is_file():
            raise CompanionSpecError(
                f"no companion file '{path_or_name}' and no '{by_name.name}' in {by_name.parent}"
            )
        path = by_name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CompanionSpecError(f"cannot read companion file {path}: {exc}") from exc
    try:
        return CompanionSpec.from_dict(data, base_dir=path.parent)
    except CompanionSpecError as exc:
        raise CompanionSpecError(f"{path}: {exc}") from exc


@lru_cache(maxsize=1)
def _astronaut() -> np.ndarray:
    from skimage import data

    img = np.ascontiguousarray(data.astronaut(), dtype=np.uint8)  # (512, 512, 3) RGB
    img.setflags(write=False)
    return img


def load_image(
    ref: str | Path, *, max_megapixels: float, max_side: int, background: str = "white"
) -> np.ndarray:
    """Reads an image ref as RGB, within limits checked before decoding.

    The size is read from the file's header first (:mod:`avatar.images`): an image over
    ``max_megapixels`` is refused before any pixel is decoded. A larger image than ``max_side``
    is decoded at reduced scale where the codec allows (JPEG) and shrunk with area averaging so
    that its longer side is at most ``max_side``. EXIF orientation is applied (JPEG, PNG, WebP,
    TIFF). Grayscale is replicated to three channels, CMYK JPEGs are converted, 16-bit or float
    data is rescaled to 8 bits; animated images give their first frame. An alpha channel (RGBA,
    gray + alpha, a PNG's tRNS transparency) is composited over ``background`` with straight
    alpha before shrinking (:mod:`avatar.background`): transparent pixels' colour never shows.

    Args:
        ref: a file path, or ``"embedded:astronaut"`` for scikit-image's astronaut portrait.
        max_megapixels: most pixels (millions) an image may declare (config
            ``identity.max_image_megapixels``).
        max_side: longest side in pixels of the returned image (``identity.max_image_side``).
        background: what transparent pixels become (``identity.background``): a colour name,
            ``"#RRGGBB"`` or an image file (scaled to cover the image, centre cropped).

    Returns:
        (H, W, 3) uint8 RGB array (a fresh copy), max(H, W) <= ``max_side``.

    Raises:
        ImageReadError: naming the path and why it cannot be read; for an image over a limit, the
            size found, the limit and its config key.
        ConfigValueError: ``background`` is not a colour or an image file.
    """
    ref = str(ref)
    under = parse_background(background)
    if ref.startswith("embedded:"):
        img = _embedded(ref)
        header = ImageHeader(img.shape[1], img.shape[0], "embedded", 1)
        check_limits(header, Path(display_path(ref)), max_megapixels=max_megapixels)
        return fit_side(img, max_side).copy()
    path = _image_file(ref)
    try:
        check_file_size(path, path.stat().st_size, max_megapixels=max_megapixels)
        header = read_header(path)
        check_limits(header, path, max_megapixels=max_megapixels)
        buf = np.fromfile(str(path), dtype=np.uint8)  # imdecode: works for any path encoding
    except OSError as exc:  # removed or made unreadable meanwhile
        raise ImageReadError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    img = decode(buf, header, path, max_side=max_side, max_megapixels=max_megapixels)
    del buf
    _check_pixel_type(img, path)
    if img.ndim == 3 and img.shape[2] in (2, 4):  # with alpha: composite before shrinking
        colour, alpha = premultiplied(img, max_side)
        del img
        turn = header.orientation
        colour, alpha = apply_orientation(colour, turn), apply_orientation(alpha, turn)
        limits = {"max_megapixels": max_megapixels, "max_side": max_side}
        rgb = composite(colour, alpha, _background(under, alpha.shape, limits))
    else:  # shrink first: less to convert
        rgb = apply_orientation(_to_rgb8(fit_side(img, max_side), path), header.orientation)
    if max(rgb.shape[:2]) < max(header.width, header.height):
        log.info(
            "image %s (%dx%d) read at %dx%d (%s=%d)",
            path,
            header.width,
            header.height,
            rgb.shape[1],
            rgb.shape[0],
            SIDE_KEY,
            max_side,
        )
    return rgb


def _background(under: Background, shape: tuple[int, ...], limits: dict[str, Any]) -> np.ndarray:
    """A parsed background as :func:`~avatar.background.composite` takes it, for ``shape``."""
    if not isinstance(under, Path):
        return np.array(under, dtype=np.uint8)
    try:
        picture = load_image(under, **limits)  # its own transparency over white
    except ImageReadError as exc:
        raise ImageReadError(f"{BACKGROUND_KEY}: {exc}") from exc
    return cover(picture, shape[0], shape[1])


def image_size(ref: str | Path) -> tuple[int, int]:
    """(width, height) of an image ref as viewed (EXIF orientation applied), from its header.

    Raises:
        ImageReadError: as :func:`load_image`, for a missing file or an unreadable header.
    """
    ref = str(ref)
    if ref.startswith("embedded:"):
        height, width = _embedded(ref).shape[:2]
        return width, height
    return read_header(_image_file(ref)).viewed_size


def _embedded(ref: str) -> np.ndarray:
    if ref != EMBEDDED_ASTRONAUT:
        raise ImageReadError(f"{ref}: unknown embedded image (only '{EMBEDDED_ASTRONAUT}')")
    return _astronaut()


def _image_file(ref: str) -> Path:
    path = Path(ref).expanduser()
    if not path.is_file():
        reason = "no such file"
        if path.is_dir():
            reason = "is a directory"
        elif path.exists():
            reason = "not a regular file"
        raise ImageReadError(f"cannot read image {path}: {reason}")
    return path


def _check_pixel_type(img: np.ndarray, path: Path) -> None:
    if img.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise ImageReadError(
            f"cannot read image {path}: unsupported pixel type {img.dtype} "
            "(save it with 8- or 16-bit unsigned or float channels)"
        )


def _to_rgb8(img: np.ndarray, path: Path) -> np.ndarray:
    _check_pixel_type(img, path)
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype in (np.float32, np.float64):
        img = (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img.ndim == 2:
        img = img[:, :, None]
    channels = img.shape[2]
    if channels == 1:
        return np.ascontiguousarray(np.repeat(img, 3, axis=2))
    if channels == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    raise ImageReadError(f"cannot read image {path}: {channels} channels")


def image_bytes(ref: str | Path) -> bytes:
    """The bytes that identify an image ref, for cache keys: a sha256 digest of its content.

    A file is hashed in chunks, so memory does not grow with its size.

    Args:
        ref: as for :func:`load_image`.

    Returns:
        32 bytes: the digest of the file's bytes, or for the embedded astronaut of its shape
        and pixel bytes.

    Raises:
        ImageReadError: the file is missing or unreadable.
    """
    ref = str(ref)
    if ref.startswith("embedded:"):
        img = _embedded(ref)
        return hashlib.sha256(repr(img.shape).encode() + img.tobytes()).digest()
    path = Path(ref).expanduser()
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ImageReadError(f"cannot read image {path}: {exc.strerror or exc}") from exc
    return digest.digest()


def display_path(ref: str) -> str:
    """How an image ref is named in messages and ``AvatarIdentity.source_path``."""
    return f"<{ref}>" if str(ref).startswith("embedded:") else str(ref)
