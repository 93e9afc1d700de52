"""derive_identity: CompanionSpec images -> AvatarIdentity (detect, choose, align, mask, cache).

Stages, each in its own module: read the images (``avatar.companion``), find faces
(``landmarker``/``search``), score them and choose a source (``selection``), align it into an
S x S portrait and landmark it again (``alignment``), super-resolve a small face's texture
(``upscale``), build masks and mouth parameters
(``masks``), and store the result by content hash (``cache``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path

import numpy as np

from avatar.background import parse_background
from avatar.cache_root import cache_root
from avatar.cancel import CancelToken
from avatar.cancel import check as check_cancel
from avatar.companion import CompanionSpec, display_path, image_bytes, image_size, load_image
from avatar.errors import (
    AvatarError,
    ConfigValueError,
    FaceNotFoundError,
    FaceTooSmallError,
    ImageReadError,
)
from avatar.identity import cache, upscale
from avatar.identity.alignment import EYE_CENTER, EYE_DISTANCE, align_face
from avatar.identity.landmarker import FaceObservation, face_landmarker_path
from avatar.identity.masks import region_masks
from avatar.identity.search import MAX_WINDOWS_PER_LEVEL, centred_pose, detect_faces
from avatar.identity.selection import select_source
from avatar.identity.topology import mesh_triangles
from avatar.identity.types import AvatarIdentity

log = logging.getLogger(__name__)

MULTIPLE_FACES = ("largest", "refuse")
"""Policies for an image with several faces."""
SEARCH_MIN_WINDOW = 64
"""Smallest search window, pixels: small enough to find faces too small to use, to say so."""
MAX_FACES = 4


@dataclass(frozen=True)
class IdentitySettings:
    """How identities are derived and cached (config node ``identity``; defaults live there).

    Attributes:
        cache_dir: cache root (None: ``$AVATAR_CACHE_DIR`` or ``~/.cache/companion-avatar``).
        use_cache: read and write the disk cache; False always derives and writes nothing.
        min_eye_distance_px: smallest usable outer-eye distance in pixels of the image as read
            (after ``max_image_side``).
        multiple_faces: ``"largest"`` uses the largest face (warning) in an image with several,
            ``"refuse"`` treats such an image as unusable.
        max_image_megapixels: images declaring more pixels (millions) in their header are
            refused before decoding.
        max_image_side: longer images are decoded at reduced scale and shrunk to this many
            pixels (longer side) before faces are searched; ``min_eye_distance_px`` applies
            to the image so read.
        background: what transparent pixels of an image become: a colour name, ``"#RRGGBB"``
            or an image file (:func:`avatar.background.parse_background`); part of the key.
        super_resolution: ``"auto"`` super-resolves a face that alignment enlarges more than
            ``super_resolution_min_scale`` times, ``"on"`` any face, ``"off"`` none
            (:mod:`avatar.identity.upscale`: Real-ESRGAN x4 on the CPU, identity-checked).
        super_resolution_min_scale: the enlargement above which ``auto`` super-resolves.
        super_resolution_threads: CPU threads for Real-ESRGAN (0: all cores).
    """

    cache_dir: str | Path | None
    use_cache: bool
    min_eye_distance_px: float
    multiple_faces: str
    max_image_megapixels: float
    max_image_side: int
    background: str
    super_resolution: str
    super_resolution_min_scale: float
    super_resolution_threads: int

    def __post_init__(self) -> None:
        if self.multiple_faces not in MULTIPLE_FACES:
            raise ConfigValueError(
                f"identity.multiple_faces must be one of {MULTIPLE_FACES}, "
                f"got {self.multiple_faces!r}"
            )
        if not self.min_eye_distance_px > 0:
            raise ConfigValueError(
                f"identity.min_eye_distance_px must be > 0, got {self.min_eye_distance_px!r}"
            )
        mp = self.max_image_megapixels
        if isinstance(mp, bool) or not isinstance(mp, int | float) or not 0 < mp < math.inf:
            raise ConfigValueError(
                f"identity.max_image_megapixels must be a number > 0, got {mp!r}"
            )
        side = self.max_image_side
        if isinstance(side, bool) or not isinstance(side, int) or side < SEARCH_MIN_WINDOW:
            raise ConfigValueError(
                f"identity.max_image_side must be an integer >= {SEARCH_MIN_WINDOW} pixels, "
                f"got {side!r}"
            )
        parse_background(self.background)  # a ConfigValueError naming identity.background
        upscale.check_settings(
            self.super_resolution, self.super_resolution_min_scale, self.super_resolution_threads
        )


@lru_cache(maxsize=4)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _model_fingerprint() -> str:
    path = face_landmarker_path()
    stat = path.stat()
    return f"mediapipe {version('mediapipe')} " + _file_sha256(
        str(path), stat.st_size, stat.st_mtime_ns
    )


def _face_in_image(ref: str, settings: IdentitySettings) -> tuple[np.ndarray, FaceObservation]:
    """Reads one image and returns it with its usable face, or raises naming the image."""
    path = display_path(ref)
    min_eye_distance_px, multiple_faces = settings.min_eye_distance_px, settings.multiple_faces
    image = load_image(
        ref,
        max_megapixels=settings.max_image_megapixels,
        max_side=settings.max_image_side,
        background=settings.background,
    )
    faces = detect_faces(image, max_faces=MAX_FACES, min_window=SEARCH_MIN_WINDOW)
    if not faces:
        raise FaceNotFoundError(f"{path}: no face found ({image.shape[1]}x{image.shape[0]} image)")
    if len(faces) > 1:
        count = f"{len(faces)}{'+' if len(faces) == MAX_FACES else ''} faces"
        if multiple_faces == "refuse":
            raise FaceNotFoundError(f"{path}: {count} found and multiple_faces='refuse'")
        log.warning(
            "%s: %s found; using the largest (eye distance %.0f px, next %.0f px)",
            path,
            count,
            faces[0].eye_distance,
            faces[1].eye_distance,
        )
    face = faces[0]
    if face.eye_distance < min_eye_distance_px:
        raise FaceTooSmallError(
            f"{path}: face too small: eye-corner distance {face.eye_distance:.1f} px is below "
            f"min_eye_distance_px={min_eye_distance_px:g}{_shrunk_note(ref, image, settings)}"
        )
    face = dataclasses.replace(face, pose=centred_pose(image, face))
    return image, face


def _shrunk_note(ref: str, image: np.ndarray, settings: IdentitySettings) -> str:
    """The fix to suggest, and whether the face was measured in a shrunk image."""
    width, height = image_size(ref)
    if max(width, height) <= max(image.shape[:2]):
        return " (crop or upscale the face)"
    return (
        f" in the image shrunk from {width}x{height} to {image.shape[1]}x{image.shape[0]} to fit "
        f"identity.max_image_side={settings.max_image_side} (crop the image around the face, "
        "or raise identity.max_image_side)"
    )


def _raise_no_usable(spec: CompanionSpec, problems: list[AvatarError]) -> None:
    """Raises one error listing every image's problem; its class is theirs when all agree."""
    kinds = {type(p) for p in problems}
    cls = kinds.pop() if len(kinds) == 1 else FaceNotFoundError
    lines = "\n".join(f"  - {p}" for p in problems)
    raise cls(f"companion '{spec.id}': no usable face in its {len(problems)} image(s):\n{lines}")


def _examine_images(
    refs: list[str], *, settings: IdentitySettings, cancel: CancelToken | None = None
) -> tuple[list[np.ndarray | None], list[FaceObservation | None], list[AvatarError | None]]:
    """Per image: the pixels and usable face, or None and the problem (logged)."""
    images: list[np.ndarray | None] = []
    faces: list[FaceObservation | None] = []
    problems: list[AvatarError | None] = []
    for ref in refs:
        check_cancel(cancel)
        image, face, problem = None, None, None
        try:
            image, face = _face_in_image(ref, settings)
        except (ImageReadError, FaceNotFoundError) as exc:
            log.warning("skipping image: %s", exc)
            problem = exc
        images.append(image)
        faces.append(face)
        problems.append(problem)
    return images, faces, problems


def _derive(
    spec: CompanionSpec,
    *,
    size: int,
    settings: IdentitySettings,
    eye_center: tuple[float, float],
    eye_distance: float,
    key: str,
    cancel: CancelToken | None,
) -> AvatarIdentity:
    images, faces, problems = _examine_images(spec.images, settings=settings, cancel=cancel)
    if all(f is None for f in faces):
        _raise_no_usable(spec, [p for p in problems if p is not None])
    paths = [display_path(r) for r in spec.images]
    index, rows = select_source(
        faces,
        target_eye_px=eye_distance * size,
        paths=paths,
        problems=[str(p) if p else None for p in problems],
    )
    image, face = images[index], faces[index]
    assert image is not None and face is not None
    check_cancel(cancel)
    portrait, aligned, _ = align_face(
        image, face, size=size, eye_center=eye_center, eye_distance=eye_distance
    )
    check_cancel(cancel)
    portrait = upscale.maybe_sharpen(  # texture only: landmarks and masks stay the plain ones
        image,
        face.landmarks,
        portrait,
        eye_center=eye_center,
        eye_distance=eye_distance,
        mode=settings.super_resolution,
        min_scale=settings.super_resolution_min_scale,
        threads=settings.super_resolution_threads,
    )
    return AvatarIdentity(
        portrait=portrait,
        landmarks=aligned.landmarks.astype(np.float32),
        triangles=mesh_triangles(),
        masks=region_masks(aligned.landmarks, size),
        blendshapes=dict(face.blendshapes),
        head_pose=tuple(float(a) for a in face.pose),
        source_index=index,
        source_path=paths[index],
        selection=rows,
        key=key,
    )


def _check_size(size: int) -> None:
    if size < 64:
        raise ConfigValueError(f"identity size must be at least 64 pixels, got {size}")


def identity_key(
    spec: CompanionSpec,
    *,
    size: int,
    settings: IdentitySettings,
    eye_center: tuple[float, float] = EYE_CENTER,
    eye_distance: float = EYE_DISTANCE,
) -> str:
    """The content key of ``spec``'s identity: sha256 over its image bytes and the settings
    the identity depends on (size, thresholds, alignment, the landmark model's hash, the
    super-resolution setting and its packages' versions).

    Reads and hashes every image; the same bytes under another path give the same key.
    """
    _check_size(size)
    depends_on = {
        "size": int(size),
        "min_eye_distance_px": float(settings.min_eye_distance_px),
        "multiple_faces": settings.multiple_faces,
        "max_image_megapixels": float(settings.max_image_megapixels),
        "max_image_side": int(settings.max_image_side),
        "background": _background_key(settings.background),
        "eye_center": [float(eye_center[0]), float(eye_center[1])],
        "eye_distance": float(eye_distance),
        "search_min_window": SEARCH_MIN_WINDOW,
        "search_max_windows": MAX_WINDOWS_PER_LEVEL,
        "model": _model_fingerprint(),
        **upscale.key_settings(settings.super_resolution, settings.super_resolution_min_scale),
    }
    return cache.cache_key((_key_bytes(ref) for ref in spec.images), depends_on)


def derive_identity(
    spec: CompanionSpec,
    *,
    size: int,
    settings: IdentitySettings,
    eye_center: tuple[float, float] = EYE_CENTER,
    eye_distance: float = EYE_DISTANCE,
    key: str | None = None,
    cancel: CancelToken | None = None,
) -> AvatarIdentity:
    """Derives (or loads from the disk cache) a companion's animatable identity.

    Args:
        spec: the companion; each of its images is examined, unusable ones are skipped.
        size: portrait side S in pixels (the renderer's size).
        settings: cache and face-acceptance settings (config node ``identity``).
        eye_center: (x, y) of the outer-eye midpoint in the portrait, fractions of S.
        eye_distance: outer-eye distance in the portrait, fraction of S.
        key: :func:`identity_key` of the same arguments when the caller has it already.
        cancel: checked before each image is examined.

    Returns:
        The identity: (S, S, 3) portrait, (478, 3) landmarks in portrait pixels, (852, 3)
        triangles, masks, source blendshapes and head pose (degrees, measured in a crop
        centred on the face), the chosen image and every image's selection scores.

    Raises:
        ImageReadError: every image is unreadable or over ``settings.max_image_megapixels``.
        FaceTooSmallError: every image's face is below ``settings.min_eye_distance_px``.
        FaceNotFoundError: no image has a usable face (the message lists each image and why).
        ConfigValueError: a size below 64 pixels.
        Cancelled: ``cancel`` was cancelled.
    """
    _check_size(size)
    if key is None:
        key = identity_key(
            spec, size=size, settings=settings, eye_center=eye_center, eye_distance=eye_distance
        )
    root = cache_root(settings.cache_dir)
    if settings.use_cache and (hit := cache.load_identity(root, key)) is not None:
        log.info("identity of companion '%s' loaded from cache (%s)", spec.id, key[:12])
        return hit
    start = time.perf_counter()
    identity = _derive(
        spec,
        size=size,
        settings=settings,
        eye_center=(float(eye_center[0]), float(eye_center[1])),
        eye_distance=eye_distance,
        key=key,
        cancel=cancel,
    )
    log.info(
        "identity of companion '%s' derived in %.2f s from image %d (%s)",
        spec.id,
        time.perf_counter() - start,
        identity.source_index + 1,
        identity.source_path,
    )
    if settings.use_cache:
        cache.save_identity(root, identity)  # an unwritable cache warns and keeps nothing
    return identity


def _background_key(value: str) -> str:
    """The background as the key sees it: its colour, or its image file's content hash."""
    under = parse_background(value)
    if isinstance(under, Path):
        return "image " + _key_bytes(str(under)).hex()
    return "#{:02x}{:02x}{:02x}".format(*under)


def _key_bytes(ref: str) -> bytes:
    """An image's bytes for the key; an unreadable image contributes a marker (it is skipped)."""
    try:
        return image_bytes(ref)
    except ImageReadError:
        return f"<unreadable {ref}>".encode()
