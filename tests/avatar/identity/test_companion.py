"""CompanionSpec validation, YAML loading and image reading."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.companion import (
    EMBEDDED_ASTRONAUT,
    CompanionSpec,
    configs_dir,
    image_bytes,
    load_companion,
    load_image,
)
from avatar.errors import CompanionSpecError, ImageReadError

GOOD = {"id": "c1", "name": "Cee", "images": ["a.png"], "style": {}, "voice": None}


def test_from_dict_accepts_a_minimal_spec() -> None:
    spec = CompanionSpec.from_dict({"id": "c1", "name": "Cee", "images": ["a.png"]})
    assert spec.images == ["a.png"] and spec.style == {} and spec.voice is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"images": []}, "no images"),
        ({"images": "a.png"}, "'images' must be a list"),
        ({"images": [3]}, "non-string"),
        ({"colour": "red"}, "unknown field"),
        ({"style": "bold"}, "'style'"),
        ({"voice": 7}, "'voice'"),
        ({"name": ""}, "'name'"),
    ],
)
def test_from_dict_rejects_bad_fields(change: dict, needle: str) -> None:
    with pytest.raises(CompanionSpecError, match=needle):
        CompanionSpec.from_dict({**GOOD, **change})


@pytest.mark.parametrize("missing", ["id", "name", "images"])
def test_from_dict_names_the_missing_field(missing: str) -> None:
    d = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(CompanionSpecError, match=f"'{missing}'"):
        CompanionSpec.from_dict(d)


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(CompanionSpecError, match="mapping"):
        CompanionSpec.from_dict(["images"])


def test_load_default_companion() -> None:
    spec = load_companion("default")
    assert (spec.id, spec.name, spec.voice) == ("default", "Astra", "heart")
    assert spec.images == [EMBEDDED_ASTRONAUT]
    assert (configs_dir() / "companion" / "default.yaml").is_file()


def test_load_companion_from_path_resolves_relative_images(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("id: c\nname: C\nimages: [faces/a.png]\n")
    assert load_companion(path).images == [str(tmp_path / "faces" / "a.png")]


def test_load_companion_errors(tmp_path: Path) -> None:
    with pytest.raises(CompanionSpecError, match="no companion file"):
        load_companion("no-such-companion")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: c\nname: C\nimages: []\n")
    with pytest.raises(CompanionSpecError, match=r"bad\.yaml.*no images"):
        load_companion(bad)


def test_load_image_astronaut(limits: dict[str, float]) -> None:
    img = load_image(EMBEDDED_ASTRONAUT, **limits)
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8
    assert image_bytes(EMBEDDED_ASTRONAUT) == image_bytes(EMBEDDED_ASTRONAUT)


def test_load_image_converts_formats(tmp_path: Path, limits: dict[str, float]) -> None:
    rgb = np.zeros((8, 10, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb[..., ::-1])
    gray = np.full((8, 10), 77, np.uint8)
    cv2.imwrite(str(tmp_path / "gray.png"), gray)
    deep = np.full((8, 10, 3), 65535, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    rgba = np.zeros((8, 10, 4), np.uint8)  # fully transparent -> white
    cv2.imwrite(str(tmp_path / "rgba.png"), rgba)
    assert tuple(load_image(tmp_path / "rgb.png", **limits)[0, 0]) == (200, 0, 0)
    assert tuple(load_image(tmp_path / "gray.png", **limits)[0, 0]) == (77, 77, 77)
    assert tuple(load_image(tmp_path / "deep.png", **limits)[0, 0]) == (255, 255, 255)
    assert tuple(load_image(tmp_path / "rgba.png", **limits)[0, 0]) == (255, 255, 255)
    for name in ("rgb", "gray", "deep", "rgba"):
        img = load_image(tmp_path / f"{name}.png", **limits)
        assert img.shape == (8, 10, 3) and img.dtype == np.uint8


def test_load_image_errors_name_the_path(tmp_path: Path, limits: dict[str, float]) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a png" * 10)
    with pytest.raises(ImageReadError, match=r"garbage\.png.*not a recognised image format"):
        load_image(garbage, **limits)
    with pytest.raises(ImageReadError, match=r"missing\.png.*no such file"):
        load_image(tmp_path / "missing.png", **limits)
    with pytest.raises(ImageReadError, match="missing"):
        image_bytes(tmp_path / "missing.png")
    with pytest.raises(ImageReadError, match="unknown embedded"):
        load_image("embedded:nobody", **limits)
