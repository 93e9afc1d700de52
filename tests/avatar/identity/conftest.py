"""Shared fixtures for the identity tests: generated images written to a module temp folder."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.companion import EMBEDDED_ASTRONAUT, load_image


def _write_rgb(path: Path, image: np.ndarray) -> None:
    assert cv2.imwrite(str(path), np.ascontiguousarray(image[..., ::-1]))


@pytest.fixture(scope="session")
def limits(identity_settings) -> dict[str, float]:
    """``load_image``'s limits as configured (``identity.max_image_megapixels``, ``..._side``)."""
    return {
        "max_megapixels": identity_settings.max_image_megapixels,
        "max_side": identity_settings.max_image_side,
    }


@pytest.fixture(scope="session")
def astronaut(limits: dict[str, float]) -> np.ndarray:
    return load_image(EMBEDDED_ASTRONAUT, **limits)


@pytest.fixture(scope="session")
def images_dir(tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray) -> Path:
    """Folder of generated test images (PNG), written once per session."""
    root = tmp_path_factory.mktemp("identity-images")
    h, w = astronaut.shape[:2]
    _write_rgb(root / "astronaut.png", astronaut)
    ramp = np.linspace(0, 255, 320, dtype=np.float32)
    gradient = np.stack([np.tile(ramp, (240, 1))] * 3, axis=-1).astype(np.uint8)
    _write_rgb(root / "gradient.png", gradient)
    rng = np.random.default_rng(7)
    _write_rgb(root / "noise.png", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    (root / "garbage.png").write_bytes(b"\x89PNG not really" * 20)
    tiny = np.full((1024, 1024, 3), 128, np.uint8)
    tiny[400:464, 300:364] = cv2.resize(astronaut, (64, 64), interpolation=cv2.INTER_AREA)
    _write_rgb(root / "tiny.png", tiny)
    two = np.full((512, 1024, 3), 90, np.uint8)
    two[:, :512] = astronaut
    two[100:420, 600:920] = cv2.resize(astronaut, (320, 320), interpolation=cv2.INTER_AREA)
    _write_rgb(root / "two.png", two)
    center = (238.0, 125.0)  # about her face centre: rotations keep the face in frame
    for name, angle in (("rot20", -20.0), ("rot_neg25", 25.0)):
        mat = cv2.getRotationMatrix2D(center, angle, 1.0)
        rotated = cv2.warpAffine(astronaut, mat, (w, h), borderMode=cv2.BORDER_REPLICATE)
        if name == "rot_neg25":
            rotated = rotated[:, ::-1]  # flipped and rotated
        _write_rgb(root / f"{name}.png", rotated)
    return root
