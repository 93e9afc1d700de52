"""Image limits before decoding (bombs, huge files), reduced reading, and every odd image format."""

from __future__ import annotations

import dataclasses
import io
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from avatar.companion import EMBEDDED_ASTRONAUT, CompanionSpec, load_image
from avatar.errors import ConfigValueError, FaceTooSmallError, ImageReadError
from avatar.identity import derive_identity
from avatar.identity.derive import IdentitySettings, identity_key
from avatar.images import DECODER_MAX_SIDE, apply_orientation

KEY = "identity.max_image_megapixels"


def _chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, idat: bytes, *, bit_depth: int, colour_type: int) -> bytes:
    """A PNG file from its parts: signature, IHDR declaring the size, one IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def black_1bit_png(width: int, height: int) -> bytes:
    """A real, complete 1-bit greyscale PNG, compressed row by row (small for any size)."""
    comp = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed pixels
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    return png_bytes(width, height, idat, bit_depth=1, colour_type=0)


def animated_webp_canvas(width: int, height: int) -> bytes:
    """A valid animated WebP: a canvas of the given size holding one 1 x 1 frame."""
    buf = io.BytesIO()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(buf, "WEBP", lossless=True)
    frame = buf.getvalue()[12:]  # its VP8L chunk

    def chunk(kind: bytes, data: bytes) -> bytes:
        return kind + struct.pack("<I", len(data)) + data + b"\0" * (len(data) % 2)

    u24 = [(v).to_bytes(3, "little") for v in (width - 1, height - 1, 0, 100)]
    vp8x = b"\x02\0\0\0" + u24[0] + u24[1]  # flags: animated
    anmf = u24[2] * 4 + u24[3] + b"\0" + frame  # at (0, 0), 1 x 1, 100 ms
    body = b"WEBP" + chunk(b"VP8X", vp8x) + chunk(b"ANIM", bytes(6)) + chunk(b"ANMF", anmf)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def spec_of(*images: str) -> CompanionSpec:
    return CompanionSpec(id="test", name="Test", images=list(images), style={}, voice=None)


# --- bombs and limits -------------------------------------------------------------------------


def test_png_declaring_100000_squared_is_refused_from_its_header(
    tmp_path: Path, limits: dict[str, float]
) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bytes(100_000, 100_000, zlib.compress(b""), bit_depth=8, colour_type=2))
    assert bomb.stat().st_size < 100
    with pytest.raises(ImageReadError) as err:
        load_image(bomb, **limits)
    message = str(err.value)
    assert "bomb.png" in message and "100000x100000 pixels (10000.0 megapixels)" in message
    assert f"{KEY}={limits['max_megapixels']:g}" in message


def test_real_9000_squared_png_is_refused_and_derive_names_it(
    tmp_path: Path, identity_settings: IdentitySettings, limits: dict[str, float]
) -> None:
    data = black_1bit_png(9000, 9000)
    idat = data[8 + 25 + 8 : -12 - 4]  # after the signature, IHDR and the IDAT length+type
    assert len(zlib.decompress(idat)) == 9000 * (1 + 9000 // 8)  # every row is there
    big = tmp_path / "big.png"
    big.write_bytes(data)
    assert big.stat().st_size < 200_000 and limits["max_megapixels"] < 81
    with pytest.raises(ImageReadError, match=r"big\.png is 9000x9000 pixels \(81\.0 megapixels\)"):
        load_image(big, **limits)
    settings = dataclasses.replace(identity_settings, cache_dir=tmp_path / "cache")
    with pytest.raises(ImageReadError, match=rf"big\.png is 9000x9000.*{re.escape(KEY)}=40"):
        derive_identity(spec_of(str(big)), size=256, settings=settings)


def test_webp_canvas_bombs_are_refused_from_the_header(
    tmp_path: Path, limits: dict[str, float]
) -> None:
    """Pillow allocates a WebP's canvas while parsing; its own check stays below 179 MP."""
    over_ours, over_pillows = tmp_path / "canvas100mp.webp", tmp_path / "canvas268mp.webp"
    over_ours.write_bytes(animated_webp_canvas(10_000, 10_000))
    over_pillows.write_bytes(animated_webp_canvas(16_383, 16_383))
    with pytest.raises(ImageReadError, match=rf"10000x10000 pixels \(100\.0 megapixels\).*{KEY}"):
        load_image(over_ours, **limits)
    with pytest.raises(ImageReadError, match=rf"canvas268mp\.webp is too large to open.*{KEY}"):
        load_image(over_pillows, **limits)


def test_limit_is_the_setting(tmp_path: Path, limits: dict[str, float]) -> None:
    path = tmp_path / "astronaut.png"
    astronaut = load_image(EMBEDDED_ASTRONAUT, **limits)
    assert cv2.imwrite(str(path), astronaut[..., ::-1])
    assert load_image(path, max_megapixels=0.3, max_side=4096).shape == (512, 512, 3)
    with pytest.raises(ImageReadError, match=rf"512x512 pixels \(0\.3 megapixels\).*{KEY}=0\.2"):
        load_image(path, max_megapixels=0.2, max_side=4096)
    with pytest.raises(ImageReadError, match=rf"<embedded:astronaut> is 512x512.*{KEY}=0\.2"):
        load_image(EMBEDDED_ASTRONAUT, max_megapixels=0.2, max_side=4096)


def test_side_beyond_the_decoders_is_refused(tmp_path: Path) -> None:
    long = tmp_path / "long.png"
    long.write_bytes(black_1bit_png(DECODER_MAX_SIDE + 8, 1))
    with pytest.raises(ImageReadError, match=rf"{DECODER_MAX_SIDE + 8}x1 pixels.*a side over"):
        load_image(long, max_megapixels=40, max_side=4096)


def test_file_far_larger_than_any_legal_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "padded.png"
    path.write_bytes(black_1bit_png(16, 16))
    with path.open("r+b") as f:
        f.truncate(20 << 20)  # 20 MiB, sparse: trailing zeros after IEND
    with pytest.raises(ImageReadError, match=rf"padded\.png is a 20 MiB file.*{KEY}=0\.01"):
        load_image(path, max_megapixels=0.01, max_side=4096)
    assert load_image(path, max_megapixels=1, max_side=4096).shape == (16, 16, 3)


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"max_image_megapixels": 0}, "identity.max_image_megapixels must be a number > 0"),
        ({"max_image_megapixels": -5.0}, "identity.max_image_megapixels must be a number > 0"),
        ({"max_image_megapixels": float("nan")}, "identity.max_image_megapixels must be"),
        ({"max_image_megapixels": "40"}, "identity.max_image_megapixels must be"),
        ({"max_image_side": 32}, r"identity.max_image_side must be an integer >= 64"),
        ({"max_image_side": 4096.5}, r"identity.max_image_side must be an integer >= 64"),
        ({"max_image_side": True}, r"identity.max_image_side must be an integer >= 64"),
    ],
)
def test_settings_validated(
    identity_settings: IdentitySettings, changes: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigValueError, match=needle):
        dataclasses.replace(identity_settings, **changes)


def test_limits_are_part_of_the_identity_key(identity_settings: IdentitySettings) -> None:
    spec = spec_of(EMBEDDED_ASTRONAUT)
    keys = {
        identity_key(spec, size=256, settings=dataclasses.replace(identity_settings, **change))
        for change in ({}, {"max_image_side": 1024}, {"max_image_megapixels": 12})
    }
    assert len(keys) == 3


# --- large but legal images: read reduced ------------------------------------------------------


@pytest.mark.parametrize(("suffix", "side"), [(".png", 1024), (".jpg", 750)])
def test_large_images_are_read_reduced(
    tmp_path: Path, astronaut: np.ndarray, suffix: str, side: int
) -> None:
    """PNG: decoded whole, shrunk to max_side; JPEG: decoded at 1/4 scale (3000 / 4 = 750)."""
    large = cv2.resize(astronaut, (3000, 2000), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / f"large{suffix}"
    assert cv2.imwrite(str(path), large[..., ::-1])
    image = load_image(path, max_megapixels=40, max_side=1024)
    assert image.shape == (round(side * 2 / 3), side, 3) and image.dtype == np.uint8
    expected = cv2.resize(large, (side, round(side * 2 / 3)), interpolation=cv2.INTER_AREA)
    assert float(np.abs(image.astype(int) - expected).mean()) < 3.0


def test_derive_from_8000x6000_photo_matches_the_small_one(
    tmp_path: Path, identity_settings: IdentitySettings, astronaut: np.ndarray
) -> None:
    """48 MP (limit raised to 50): read at 1/2 scale, the face found, the same portrait."""
    canvas = np.full((6000, 8000, 3), 90, np.uint8)
    canvas[:, 1000:7000] = cv2.resize(astronaut, (6000, 6000), interpolation=cv2.INTER_CUBIC)
    path = tmp_path / "photo.jpg"
    assert cv2.imwrite(str(path), canvas[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    del canvas
    settings = dataclasses.replace(
        identity_settings, use_cache=False, max_image_megapixels=50, max_image_side=4096
    )
    big = derive_identity(spec_of(str(path)), size=256, settings=settings)
    small = derive_identity(spec_of(EMBEDDED_ASTRONAUT), size=256, settings=settings)
    assert big.portrait.shape == small.portrait.shape == (256, 256, 3)
    assert float(np.abs(big.portrait.astype(int) - small.portrait).mean()) < 12.0
    assert float(np.abs(big.landmarks[:, :2] - small.landmarks[:, :2]).mean()) < 2.0
    assert abs(big.head_pose[0] - small.head_pose[0]) < 3.0
    with pytest.raises(ImageReadError, match=rf"photo\.jpg is 8000x6000 .*{KEY}=40"):
        load_image(path, max_megapixels=40, max_side=4096)


# --- every kind of image: works, or a clear ImageReadError -------------------------------------

H, W = 32, 48
COLOURS = ((200, 30, 30), (30, 200, 30), (30, 30, 200), (240, 240, 240))
"""RGB of the top-left, top-right, bottom-left and bottom-right quadrants of the test image."""


def quadrants(colours: tuple[tuple[int, int, int], ...] = COLOURS) -> np.ndarray:
    """(H, W, 3) uint8 RGB, four flat quadrants: any turn or mirror shows."""
    img = np.empty((H, W, 3), np.uint8)
    img[: H // 2, : W // 2], img[: H // 2, W // 2 :] = colours[0], colours[1]
    img[H // 2 :, : W // 2], img[H // 2 :, W // 2 :] = colours[2], colours[3]
    return img


def red_grey(img: np.ndarray) -> np.ndarray:
    """The red channel as greyscale RGB (what the grey variants hold)."""
    return np.repeat(img[..., :1], 3, axis=2)


def pil_bytes(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def exif(orientation: int) -> bytes:
    tags = Image.Exif()
    tags[0x0112] = orientation
    return tags.tobytes()


Make = Callable[[], tuple[bytes, np.ndarray]]
"""Returns a test file's bytes and the (H, W, 3) uint8 RGB image it should read as."""


def _rgba() -> tuple[bytes, np.ndarray]:
    alpha = np.full((H, W, 1), 255, np.uint8)
    alpha[: H // 2, W // 2 :] = 0  # top-right transparent -> white
    alpha[H // 2 :, : W // 2] = 128  # bottom-left half over white
    data = pil_bytes(Image.fromarray(np.dstack([quadrants(), alpha]), "RGBA"), "PNG")
    expected = quadrants() * (alpha / 255) + 255 * (1 - alpha / 255)
    return data, expected.round().astype(np.uint8)


def _grey_alpha() -> tuple[bytes, np.ndarray]:
    grey = red_grey(quadrants())
    alpha = np.full((H, W), 255, np.uint8)
    alpha[: H // 2, W // 2 :] = 0
    data = pil_bytes(Image.fromarray(np.dstack([grey[..., 0], alpha]), "LA"), "PNG")
    grey[: H // 2, W // 2 :] = 255
    return data, grey


def _palette(transparent: bool) -> Make:
    def make() -> tuple[bytes, np.ndarray]:
        img = Image.fromarray(quadrants()).quantize(colors=4)
        expected = quadrants()
        options: dict[str, object] = {}
        if transparent:
            options["transparency"] = img.getpixel((0, 0))  # top-left's index
            expected[: H // 2, : W // 2] = 255
        return pil_bytes(img, "PNG", **options), expected

    return make


def _animated(fmt: str, **options: object) -> Make:
    def make() -> tuple[bytes, np.ndarray]:
        first, second = Image.fromarray(quadrants()), Image.fromarray(255 - quadrants())
        return pil_bytes(first, fmt, save_all=True, append_images=[second], **options), quadrants()

    return make


def _rotated(fmt: str, orientation: int, **options: object) -> Make:
    def make() -> tuple[bytes, np.ndarray]:
        data = pil_bytes(Image.fromarray(quadrants()), fmt, exif=exif(orientation), **options)
        turns = {3: 2, 6: -1, 8: 1}[orientation]  # counter-clockwise quarter turns
        return data, np.ascontiguousarray(np.rot90(quadrants(), turns))

    return make


def _encoded(suffix: str, pixels: np.ndarray, expected: np.ndarray) -> Make:
    return lambda: (cv2.imencode(suffix, pixels)[1].tobytes(), expected)


WORKS: dict[str, tuple[Make, int]] = {
    # name: (make, tolerance in levels at the quadrant centres)
    "png-rgb8": (_encoded(".png", quadrants()[..., ::-1], quadrants()), 0),
    "png-rgb16": (_encoded(".png", quadrants()[..., ::-1].astype(np.uint16) * 257, quadrants()), 0),
    "png-grey16": (
        _encoded(".png", quadrants()[..., 0].astype(np.uint16) * 257, red_grey(quadrants())),
        0,
    ),
    "png-1bit": (
        lambda: (
            pil_bytes(Image.fromarray(quadrants()[..., 0] > 128), "PNG"),
            np.where(red_grey(quadrants()) > 128, 255, 0).astype(np.uint8),
        ),
        0,
    ),
    "png-rgba": (_rgba, 1),
    "png-grey-alpha": (_grey_alpha, 0),
    "png-palette": (_palette(transparent=False), 0),
    "png-palette-transparent": (_palette(transparent=True), 0),
    "png-animated": (_animated("PNG"), 0),
    "png-exif-rotated-6": (_rotated("PNG", 6), 0),
    "tiff-float32": (
        lambda: (
            pil_bytes(Image.fromarray(quadrants()[..., 0].astype(np.float32) / 255), "TIFF"),
            red_grey(quadrants()),
        ),
        0,
    ),
    "tiff-exif-rotated-6": (_rotated("TIFF", 6), 0),
    "jpeg-grey": (
        lambda: (pil_bytes(Image.fromarray(quadrants()[..., 0]), "JPEG"), red_grey(quadrants())),
        6,
    ),
    "jpeg-cmyk": (
        lambda: (pil_bytes(Image.fromarray(quadrants()).convert("CMYK"), "JPEG"), quadrants()),
        12,
    ),
    "jpeg-exif-rotated-3": (_rotated("JPEG", 3, quality=95), 12),
    "jpeg-exif-rotated-6": (_rotated("JPEG", 6, quality=95), 12),
    "jpeg-exif-rotated-8": (_rotated("JPEG", 8, quality=95), 12),
    "gif-animated": (_animated("GIF"), 0),
    "webp-animated": (_animated("WEBP", lossless=True), 0),
    "webp-exif-rotated-8": (_rotated("WEBP", 8, lossless=True), 0),
    "bmp": (lambda: (pil_bytes(Image.fromarray(quadrants()), "BMP"), quadrants()), 0),
}


@pytest.mark.parametrize("name", sorted(WORKS))
def test_image_kinds_that_work(name: str, tmp_path: Path, limits: dict[str, float]) -> None:
    make, tolerance = WORKS[name]
    data, expected = make()
    path = tmp_path / f"{name}.img"
    path.write_bytes(data)
    image = load_image(path, **limits)
    assert image.dtype == np.uint8 and image.shape == expected.shape
    height, width = expected.shape[:2]
    for y in (height // 4, 3 * height // 4):  # quadrant centres: away from JPEG's edge ringing
        for x in (width // 4, 3 * width // 4):
            got, want = image[y, x].astype(int), expected[y, x].astype(int)
            assert np.abs(got - want).max() <= tolerance, (name, (y, x), got, want)


def _png_truncated(keep: float) -> bytes:
    data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    raw = data[1].tobytes()
    return raw[: int(len(raw) * keep)]


FAILS: dict[str, tuple[Callable[[Path], None], str]] = {
    # name: (write the file at path, message pattern after the path)
    "empty": (lambda p: p.write_bytes(b""), r"empty file \(0 bytes\)"),
    "text": (lambda p: p.write_text("hello, not an image\n"), "not a recognised image format"),
    "truncated-header": (
        lambda p: p.write_bytes(black_1bit_png(8, 8)[:20]),
        "damaged image header",
    ),
    "truncated-half": (lambda p: p.write_bytes(_png_truncated(0.5)), "not a decodable image"),
    "ico": (
        lambda p: p.write_bytes(pil_bytes(Image.fromarray(quadrants()), "ICO")),
        "ICO images are not supported; save it as one of PNG, JPEG",
    ),
    "tiff-int32": (
        lambda p: p.write_bytes(
            pil_bytes(Image.fromarray(quadrants()[..., 0].astype(np.int32)), "TIFF")
        ),
        "unsupported pixel type int32",
    ),
    "zero-size": (
        lambda p: p.write_bytes(png_bytes(0, 10, zlib.compress(b""), bit_depth=8, colour_type=2)),
        "damaged image header",
    ),
    "directory": (lambda p: p.mkdir(), "is a directory"),
}


@pytest.mark.parametrize("name", sorted(FAILS))
def test_image_kinds_that_fail_clearly(name: str, tmp_path: Path, limits: dict[str, float]) -> None:
    write, needle = FAILS[name]
    path = tmp_path / f"{name}.img"
    write(path)
    with pytest.raises(ImageReadError, match=rf"{re.escape(str(path))}.*{needle}"):
        load_image(path, **limits)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_pillow(orientation: int) -> None:
    stored = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), np.uint8)
    image = Image.fromarray(stored)
    image.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    assert np.array_equal(apply_orientation(stored, orientation), expected)


def test_face_too_small_after_shrinking_says_so(
    tmp_path: Path, identity_settings: IdentitySettings, images_dir: Path
) -> None:
    settings = dataclasses.replace(
        identity_settings, cache_dir=tmp_path, use_cache=False, max_image_side=160
    )
    with pytest.raises(FaceTooSmallError) as err:
        derive_identity(spec_of(str(images_dir / "astronaut.png")), size=256, settings=settings)
    message = str(err.value)
    assert "shrunk from 512x512 to 160x160 to fit identity.max_image_side=160" in message
    assert message.endswith("(crop the image around the face, or raise identity.max_image_side)")
