"""derive_identity end to end: the astronaut, failures with clear errors, policies, selection."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from avatar.companion import CompanionSpec, load_companion
from avatar.errors import FaceNotFoundError, FaceTooSmallError, ImageReadError
from avatar.identity import AvatarIdentity, derive_identity
from avatar.identity import topology as topo
from avatar.identity.derive import IdentitySettings

S = 512


def spec_of(*images: str) -> CompanionSpec:
    return CompanionSpec(id="test", name="Test", images=list(images), style={}, voice=None)


def derive(
    settings: IdentitySettings, spec: CompanionSpec, *, size: int = S, **changes: object
) -> AvatarIdentity:
    """derive_identity with the configured settings, some of them changed."""
    return derive_identity(spec, size=size, settings=dataclasses.replace(settings, **changes))


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory, identity_settings) -> AvatarIdentity:
    cache = tmp_path_factory.mktemp("cache")
    return derive(identity_settings, load_companion("default"), cache_dir=cache)


def test_astronaut_portrait_and_landmarks(identity: AvatarIdentity) -> None:
    assert identity.portrait.shape == (S, S, 3) and identity.portrait.dtype == np.uint8
    assert identity.size == S
    lm = identity.landmarks
    assert lm.shape == (478, 3) and lm.dtype == np.float32
    assert (lm[:, :2] > 0).all() and (lm[:, :2] < S).all()
    assert identity.eye_distance == pytest.approx(0.30 * S, rel=0.03)
    left, right = lm[topo.EYE_L_OUTER, :2], lm[topo.EYE_R_OUTER, :2]
    assert abs(np.degrees(np.arctan2(*(right - left)[::-1]))) < 1.0  # eyes level
    assert (left + right) / 2 == pytest.approx([0.5 * S, 0.40 * S], abs=0.02 * S)
    oval = lm[topo.FACE_OVAL, :2]
    assert oval[:, 1].max() < 0.85 * S  # chin inside, neck below it
    assert oval[:, 1].min() > 0.15 * S  # forehead inside, hair above it
    assert 0.15 * S < oval[:, 0].min() and oval[:, 0].max() < 0.85 * S


def test_astronaut_fields(identity: AvatarIdentity) -> None:
    assert identity.triangles.shape == (852, 3) and identity.triangles.dtype == np.int32
    assert len(identity.blendshapes) == 52
    assert len(identity.head_pose) == 3 and all(abs(a) < 15 for a in identity.head_pose)
    assert identity.source_index == 0 and identity.source_path == "<embedded:astronaut>"
    assert len(identity.selection) == 1 and identity.selection[0]["chosen"]
    assert len(identity.key) == 64


def test_astronaut_masks(identity: AvatarIdentity) -> None:
    masks, lm = identity.masks, identity.landmarks
    assert set(masks) == {"face", "mouth", "eye_l", "eye_r"}
    for mask in masks.values():
        assert mask.shape == (S, S) and mask.dtype == np.float32
        assert mask.min() >= 0.0 and mask.max() <= 1.0
        assert mask[0, 0] == 0.0 and mask[-1, -1] == 0.0
    areas = {k: float(v.sum()) for k, v in masks.items()}
    assert areas["face"] > 10 * areas["mouth"] > 10 * areas["eye_l"] / 2
    assert areas["eye_l"] == pytest.approx(areas["eye_r"], rel=0.4)

    def at(name: str, idx: int | list[int]) -> float:
        x, y = np.asarray(lm[idx, :2]).reshape(-1, 2).mean(axis=0).round().astype(int)
        return float(masks[name][y, x])

    assert at("face", topo.NOSE_TIP) > 0.99
    assert at("mouth", [topo.LIP_INNER_TOP, topo.LIP_INNER_BOTTOM]) > 0.99
    assert at("eye_l", topo.IRIS_L_CENTER) > 0.9 and at("eye_r", topo.IRIS_R_CENTER) > 0.9
    assert at("eye_l", topo.IRIS_R_CENTER) == 0.0 and at("mouth", topo.NOSE_TIP) < 0.05


def test_no_face_names_the_file_and_writes_no_cache(
    identity_settings, images_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for name in ("noise.png", "gradient.png"):
        with pytest.raises(FaceNotFoundError, match=rf"{name}: no face found") as err:
            derive(identity_settings, spec_of(str(images_dir / name)), cache_dir=cache)
        assert not isinstance(err.value, FaceTooSmallError)
    assert not cache.exists() or not any(cache.rglob("*"))


def test_several_failures_are_listed(identity_settings, images_dir: Path, tmp_path: Path) -> None:
    spec = spec_of(str(images_dir / "noise.png"), str(images_dir / "garbage.png"))
    with pytest.raises(FaceNotFoundError) as err:
        derive(identity_settings, spec, cache_dir=tmp_path)
    assert "noise.png: no face" in str(err.value) and "garbage.png" in str(err.value)
    assert not any(tmp_path.rglob("*"))


def test_unreadable_images(identity_settings, images_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"garbage\.png.*not a recognised image format"):
        derive(identity_settings, spec_of(str(images_dir / "garbage.png")), cache_dir=tmp_path)
    with pytest.raises(ImageReadError, match=r"absent\.png.*no such file"):
        derive(identity_settings, spec_of(str(tmp_path / "absent.png")), cache_dir=tmp_path)
    assert not (tmp_path / "identity").exists()


def test_tiny_face(identity_settings, images_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FaceTooSmallError, match=r"tiny\.png: face too small.*min_eye_distance"):
        derive(identity_settings, spec_of(str(images_dir / "tiny.png")), cache_dir=tmp_path)
    assert not any(tmp_path.rglob("*"))


def test_bad_images_are_skipped_when_one_works(
    identity_settings, images_dir: Path, tmp_path: Path
) -> None:
    spec = spec_of(
        str(images_dir / "garbage.png"), str(images_dir / "noise.png"), "embedded:astronaut"
    )
    ident = derive(identity_settings, spec, cache_dir=tmp_path, size=256)
    assert ident.source_index == 2 and ident.size == 256
    assert [r["usable"] for r in ident.selection] == [False, False, True]
    assert "not a recognised image format" in ident.selection[0]["reason"]


def test_two_faces_largest_warns(
    identity_settings, images_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(images_dir / "two.png")
    with caplog.at_level(logging.WARNING, logger="avatar.identity"):
        ident = derive(identity_settings, spec_of(path), cache_dir=tmp_path, use_cache=False)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("two.png" in m and "2 faces" in m and "largest" in m for m in warned)
    assert ident.selection[0]["eye_distance_px"] == pytest.approx(60, abs=5)  # the big one


def test_two_faces_refuse_and_bad_policy(
    identity_settings, images_dir: Path, tmp_path: Path
) -> None:
    spec = spec_of(str(images_dir / "two.png"))
    with pytest.raises(FaceNotFoundError, match=r"two\.png: 2 faces found.*refuse"):
        derive(identity_settings, spec, cache_dir=tmp_path, multiple_faces="refuse")
    with pytest.raises(ValueError, match="multiple_faces"):
        derive(identity_settings, spec, cache_dir=tmp_path, multiple_faces="first")
    assert not any(tmp_path.rglob("*"))


def test_selection_prefers_the_frontal_image(
    identity_settings, images_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    names = ("rot20.png", "astronaut.png", "rot_neg25.png")
    spec = spec_of(*(str(images_dir / n) for n in names))
    with caplog.at_level(logging.INFO, logger="avatar.identity.selection"):
        ident = derive(identity_settings, spec, cache_dir=tmp_path, use_cache=False, size=256)
    assert ident.source_index == 1 and ident.source_path.endswith("astronaut.png")
    rows = ident.selection
    assert rows[1]["chosen"] and not rows[0]["chosen"] and not rows[2]["chosen"]
    assert rows[1]["frontal"] > rows[0]["frontal"] and rows[1]["frontal"] > rows[2]["frontal"]
    assert abs(rows[0]["roll"]) > 15 and abs(rows[2]["roll"]) > 15
    assert any(
        "astronaut.png" in r.getMessage() and "chosen" in r.getMessage() for r in caplog.records
    )
    # the chosen portrait is levelled whatever the source roll
    lm = ident.landmarks
    assert abs(lm[topo.EYE_L_OUTER, 1] - lm[topo.EYE_R_OUTER, 1]) < 0.02 * 256
