"""Transparent and odd images: alpha composited over ``identity.background`` before shrinking
(no fringe from the colour under transparent pixels), and grayscale, 16-bit, CMYK, gray + alpha,
palette and tRNS transparency, float TIFF read as they look. Every file is generated here."""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from avatar.companion import CompanionSpec, load_image
from avatar.config import compose
from avatar.errors import ConfigValueError, ImageReadError
from avatar.identity.derive import IdentitySettings, identity_key
from avatar.identity_store import IdentityStore
from tests.fakes import FakeRenderer

LIMITS = {"max_megapixels": 40, "max_side": 4096}
SKIN = (240, 200, 170)


def _png(
    path: Path,
    pixels: np.ndarray,
    color_type: int,
    depth: int,
    trns: bytes = b"",
    width: int | None = None,
) -> Path:
    """Writes a PNG chunk by chunk (for layouts neither OpenCV nor Pillow writes: 16-bit gray +
    alpha, a gray tRNS key). ``pixels``: (H, W) or (H, W, C) samples, or (H, bytes) packed rows
    of ``width`` samples below 8 bits."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    h, w = pixels.shape[0], width or pixels.shape[1]
    samples = pixels.astype(">u2" if depth == 16 else np.uint8)
    raw = b"".join(b"\0" + samples[y].tobytes() for y in range(h))
    header = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + (chunk(b"tRNS", trns) if trns else b"")
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def _pixel(path: Path, **kwargs: object) -> tuple[int, ...]:
    return tuple(int(v) for v in load_image(path, **{**LIMITS, **kwargs})[1, 1])  # type: ignore[arg-type]


# --- odd pixel layouts ---------------------------------------------------------------------


def test_grayscale_8_and_16_bit(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "g8.png"), np.full((4, 4), 77, np.uint8))
    cv2.imwrite(str(tmp_path / "g16.png"), np.full((4, 4), 40000, np.uint16))
    assert _pixel(tmp_path / "g8.png") == (77, 77, 77)
    assert _pixel(tmp_path / "g16.png") == (156, 156, 156)  # 40000 / 257 = 155.6


def test_16_bit_rgb_and_rgba(tmp_path: Path) -> None:
    bgr = np.zeros((4, 4, 3), np.uint16)
    bgr[..., 2], bgr[..., 1] = 65535, 20000  # R full, G 20000
    cv2.imwrite(str(tmp_path / "rgb16.png"), bgr)
    assert _pixel(tmp_path / "rgb16.png") == (255, 78, 0)
    bgra = np.dstack([bgr, np.full((4, 4), 32768, np.uint16)])  # alpha ~ 0.5
    cv2.imwrite(str(tmp_path / "rgba16.png"), bgra)
    red, green, blue = _pixel(tmp_path / "rgba16.png")
    assert red == 255 and abs(green - (39 + 127.5)) <= 1 and abs(blue - 127.5) <= 1
    bgra[..., 3] = 1  # 1 / 65535: still a trace of colour, at full precision
    cv2.imwrite(str(tmp_path / "faint16.png"), bgra)
    assert _pixel(tmp_path / "faint16.png", background="black") == (0, 0, 0)
    assert _pixel(tmp_path / "faint16.png") == (255, 255, 255)


@pytest.mark.parametrize("reduced", [False, True])
def test_cmyk_jpeg_colours(tmp_path: Path, reduced: bool) -> None:
    """Pillow writes CMYK JPEGs Adobe-style (inverted, with an APP14 marker); each patch keeps
    its colour, also when decoded at reduced scale."""
    colours = [(220, 20, 20), (20, 200, 40), (30, 40, 210), (250, 250, 250), (10, 10, 10)]
    rgb = np.concatenate([np.full((64, 64, 3), c, np.uint8) for c in colours], axis=1)
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(path, "JPEG", quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK" and "adobe" in im.info
    side = 160 if reduced else 4096
    image = load_image(path, max_megapixels=40, max_side=side)
    step = image.shape[1] // len(colours)
    for i, colour in enumerate(colours):
        got = image[image.shape[0] // 2, i * step + step // 2].astype(int)
        assert np.abs(got - colour).max() <= 12, (colour, got)


@pytest.mark.parametrize("depth", [8, 16])
def test_gray_plus_alpha(tmp_path: Path, depth: int) -> None:
    top = (1 << depth) - 1
    pixels = np.zeros((4, 4, 2))
    pixels[..., 0] = 0.2 * top  # dark gray
    pixels[:2, :, 1] = top  # opaque top half, transparent bottom half
    path = _png(tmp_path / "la.png", np.round(pixels), color_type=4, depth=depth)
    image = load_image(path, **LIMITS, background="#00ff00")
    assert tuple(image[0, 0]) == (51, 51, 51) and tuple(image[3, 3]) == (0, 255, 0)


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 4), 0)
    pal.putpalette([200, 0, 0, 0, 0, 0, 0, 0, 200])
    pal.putpixel((1, 1), 1)  # index 1: fully transparent (black under it)
    pal.putpixel((2, 2), 2)  # index 2: blue at half alpha
    pal.save(tmp_path / "p.png", transparency=bytes([255, 0, 128]))
    image = load_image(tmp_path / "p.png", **LIMITS, background="black")
    assert tuple(image[0, 0]) == (200, 0, 0) and tuple(image[1, 1]) == (0, 0, 0)
    assert tuple(image[2, 2]) == (0, 0, 100)
    assert tuple(load_image(tmp_path / "p.png", **LIMITS)[1, 1]) == (255, 255, 255)


@pytest.mark.parametrize("depth", [1, 2, 8, 16])
def test_gray_png_with_transparent_value(tmp_path: Path, depth: int) -> None:
    """A grayscale PNG's tRNS key (which OpenCV's decoder drops) makes that gray transparent."""
    top = (1 << depth) - 1
    pixels = np.full((4, 8), top, np.uint16)
    pixels[:, 4:] = 0
    trns = struct.pack(">H", top)
    if depth < 8:  # samples packed into bytes, first pixel in the high bits
        bits = np.unpackbits(pixels.astype(np.uint8)[..., None], axis=2)[..., -depth:]
        packed = np.packbits(bits.reshape(4, -1), axis=1)
        path = _png(tmp_path / "key.png", packed, 0, depth, trns=trns, width=8)
    else:
        path = _png(tmp_path / "key.png", pixels, 0, depth, trns=trns)
    image = load_image(path, **LIMITS, background="#102030")
    assert tuple(image[0, 0]) == (16, 32, 48) and tuple(image[0, 7]) == (0, 0, 0)


def test_float_tiff(tmp_path: Path) -> None:
    """One-channel float TIFF (Pillow's mode F) is read, clipped to [0, 1]; Pillow's header
    parser knows no 3- or 4-channel float TIFF, so those are refused by name."""
    gray = np.full((4, 4), 0.25, np.float32)
    gray[1, 1] = 7.0
    assert cv2.imwrite(str(tmp_path / "f.tiff"), gray)
    image = load_image(tmp_path / "f.tiff", **LIMITS)
    assert tuple(image[0, 0]) == (64, 64, 64) and tuple(image[1, 1]) == (255, 255, 255)
    assert cv2.imwrite(str(tmp_path / "f3.tiff"), np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ImageReadError, match=r"f3\.tiff"):
        load_image(tmp_path / "f3.tiff", **LIMITS)


# --- compositing: no fringe, straight alpha, the background ----------------------------------


def _cartoon(size: int, under: np.ndarray | None = None) -> np.ndarray:
    """(size, size, 4) BGRA: a skin-coloured head (anti-aliased edge) on full transparency whose
    colour is ``under`` (default black, as generated character art often has)."""
    yy, xx = np.mgrid[:size, :size]
    dist = np.hypot(xx - size / 2, yy - size * 0.6)
    alpha = np.clip(size * 0.3 + 0.5 - dist, 0.0, 1.0)
    bgra = np.zeros((size, size, 4), np.uint8)
    if under is not None:
        bgra[..., :3] = under
    bgra[alpha > 0, :3] = SKIN[::-1]
    bgra[..., 3] = np.round(alpha * 255)
    return bgra


@pytest.mark.parametrize("background", ["white", "#3050a0"])
def test_no_dark_fringe_when_read_reduced(tmp_path: Path, background: str) -> None:
    path = tmp_path / "cartoon.png"
    cv2.imwrite(str(path), _cartoon(480))
    bg = np.array([255, 255, 255] if background == "white" else [0x30, 0x50, 0xA0])
    image = load_image(path, max_megapixels=40, max_side=120, background=background).astype(int)
    assert image.shape == (120, 120, 3)
    low, high = np.minimum(SKIN, bg), np.maximum(SKIN, bg)
    assert (image >= low - 1).all() and (image <= high + 1).all()
    # the old order (shrink, then composite) does leave the fringe this test looks for
    small = cv2.resize(_cartoon(480), (120, 120), interpolation=cv2.INTER_AREA).astype(float)
    alpha = small[..., 3:] / 255
    old = small[..., 2::-1] * alpha + bg * (1 - alpha)
    assert (old < low - 20).any()


def test_colour_under_transparent_pixels_never_shows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    garbage = rng.integers(0, 256, (480, 480, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "black.png"), _cartoon(480))
    cv2.imwrite(str(tmp_path / "garbage.png"), _cartoon(480, under=garbage))
    for side in (4096, 120, 77):
        read = [
            load_image(tmp_path / n, max_megapixels=40, max_side=side)
            for n in ("black.png", "garbage.png")
        ]
        np.testing.assert_array_equal(read[0], read[1])


def test_opaque_alpha_reads_as_without_alpha(tmp_path: Path) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "rgb.png"), rgb)
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([rgb, np.full((90, 120), 255, np.uint8)]))
    for side, tolerance in ((4096, 0), (50, 1)):
        a, b = (
            load_image(tmp_path / n, max_megapixels=40, max_side=side)
            for n in ("rgb.png", "rgba.png")
        )
        assert np.abs(a.astype(int) - b.astype(int)).max() <= tolerance


def test_image_background_covers_and_is_centred(tmp_path: Path) -> None:
    wide = np.zeros((100, 300, 3), np.uint8)
    wide[..., 0] = np.arange(300) * 255 // 299  # a red ramp across
    wide[..., 1] = 90
    bg = tmp_path / "bg.png"
    cv2.imwrite(str(bg), wide[..., ::-1])
    cv2.imwrite(str(tmp_path / "clear.png"), np.zeros((100, 100, 4), np.uint8))
    image = load_image(tmp_path / "clear.png", **LIMITS, background=str(bg))
    np.testing.assert_array_equal(image, wide[:, 100:200])  # cover: height fits, centre cut
    cv2.imwrite(str(tmp_path / "tall.png"), np.zeros((200, 50, 4), np.uint8))
    tall = load_image(tmp_path / "tall.png", **LIMITS, background=str(bg))
    assert tall.shape == (200, 50, 3) and (tall[..., 1] == 90).all()
    assert abs(int(tall[..., 0].mean()) - 127) <= 3  # the middle of the ramp


def test_background_follows_the_exif_orientation(tmp_path: Path) -> None:
    """Orientation 6 (turn 90 degrees clockwise): the opaque left half is viewed on top, and
    the background image is laid under the image as viewed."""
    stored = np.zeros((20, 40, 4), np.uint8)
    stored[:, :20] = (0, 0, 255, 255)  # opaque red left half, transparent right half
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored[..., [2, 1, 0, 3]]).save(tmp_path / "turned.png", exif=exif.tobytes())
    under = np.zeros((40, 20, 3), np.uint8)
    under[:20], under[20:] = (0, 0, 255), (0, 255, 0)  # viewed: blue top, green bottom
    cv2.imwrite(str(tmp_path / "under.png"), under[..., ::-1])
    image = load_image(tmp_path / "turned.png", **LIMITS, background=str(tmp_path / "under.png"))
    assert image.shape == (40, 20, 3)
    assert (image[:20] == (255, 0, 0)).all() and (image[20:] == (0, 255, 0)).all()


# --- the setting: validated, part of the identity key ----------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("purple", "no such file"),
        ("#12345", "not a #RRGGBB colour"),
        ("#gg0000", "not a #RRGGBB colour"),
        ("", ""),
        (3, ""),
        (None, ""),
        ("NOTES", "not a recognised image format"),
    ],
)
def test_bad_backgrounds_are_refused_by_name(
    tmp_path: Path, identity_settings: IdentitySettings, value: object, reason: str
) -> None:
    if value == "NOTES":
        value = str(tmp_path / "notes.txt")
        Path(value).write_text("not an image")
    with pytest.raises(ConfigValueError, match="identity.background must be a colour") as info:
        dataclasses.replace(identity_settings, background=value)
    assert "#RRGGBB" in str(info.value) and reason in str(info.value)
    with pytest.raises(ConfigValueError, match="identity.background"):
        load_image("embedded:astronaut", **LIMITS, background=value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "expected"), [("green", "green"), ("'#A0b0C0'", "#A0b0C0"), ("GRAY", "GRAY")]
)
def test_backgrounds_from_the_config(override: str, expected: str) -> None:
    node = OmegaConf.to_container(compose("render", [f"identity.background={override}"]).identity)
    assert IdentitySettings(**node).background == expected  # type: ignore[arg-type]


def test_background_is_part_of_the_identity_key(
    tmp_path: Path, identity_settings: IdentitySettings
) -> None:
    spec = CompanionSpec(id="c", name="C", images=["embedded:astronaut"])
    bg = tmp_path / "bg.png"
    cv2.imwrite(str(bg), np.full((8, 8, 3), 40, np.uint8))

    def key(background: str) -> str:
        settings = dataclasses.replace(identity_settings, background=background)
        return identity_key(spec, size=256, settings=settings)

    assert key("white") == key("#FFFFFF") == key("White")
    by_image = key(str(bg))
    assert len({key("white"), key("black"), key("#000001"), by_image}) == 4
    copy = tmp_path / "copy.png"
    copy.write_bytes(bg.read_bytes())
    assert key(str(copy)) == by_image  # the content counts, not the path
    cv2.imwrite(str(bg), np.full((8, 8, 3), 41, np.uint8))
    assert key(str(bg)) != by_image


def test_store_rekeys_on_an_edited_background_image(
    tmp_path: Path, identity_settings: IdentitySettings
) -> None:
    bg = tmp_path / "bg.png"
    cv2.imwrite(str(bg), np.full((8, 8, 3), 40, np.uint8))
    settings = dataclasses.replace(identity_settings, background=str(bg))
    store = IdentityStore(renderer=FakeRenderer(size=64), settings=settings, capacity=2)
    spec = CompanionSpec(id="c", name="C", images=["embedded:astronaut"])
    before = store.key_of(spec)
    cv2.imwrite(str(bg), np.full((8, 8, 3), 41, np.uint8))
    stat = bg.stat()
    os.utime(bg, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert store.key_of(spec) != before


def test_unreadable_background_image_names_the_key(tmp_path: Path) -> None:
    bg = tmp_path / "bg.png"
    cv2.imwrite(str(bg), np.random.default_rng(2).integers(0, 256, (64, 64, 3), np.uint8))
    data = bg.read_bytes()
    bg.write_bytes(data[: len(data) // 2])  # the header is whole, the pixels are cut off
    cv2.imwrite(str(tmp_path / "clear.png"), np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ImageReadError, match=r"identity.background: cannot read image .*bg\.png"):
        load_image(tmp_path / "clear.png", **LIMITS, background=str(bg))


def test_derived_portrait_shows_the_background(
    tmp_path: Path, identity_settings: IdentitySettings
) -> None:
    """End to end: an RGBA portrait with transparent (black) borders, derived over green."""
    from avatar.identity.derive import derive_identity

    rgb = load_image("embedded:astronaut", **LIMITS)
    bgra = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 255, np.uint8)])
    bgra[:, :60] = bgra[:, -60:] = bgra[:40] = 0
    cv2.imwrite(str(tmp_path / "cut.png"), bgra)
    spec = CompanionSpec(id="c", name="C", images=[str(tmp_path / "cut.png")])
    settings = dataclasses.replace(identity_settings, use_cache=False, background="green")
    portrait = derive_identity(spec, size=256, settings=settings).portrait.astype(int)
    green = (portrait[..., 1] > 240) & (portrait[..., 0] < 15) & (portrait[..., 2] < 15)
    assert green.mean() > 0.03
