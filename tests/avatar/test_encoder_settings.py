"""EncoderSettings (avatar.media.encoder_settings): each value checked by name, the defaults in
configs/render.yaml valid, and the settings reaching libx264 (read back from the x264 options
that libx264 writes into every stream it makes)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from avatar.config import compose
from avatar.errors import ConfigValueError
from avatar.media import EncoderSettings, Mp4StreamWriter, Mp4Writer

VALID = {
    "crf": 20,
    "preset": "veryfast",
    "threads": 1,
    "tune": None,
    "x264_params": "me=dia",
    "audio_bitrate": 128000,
}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("crf", 99),
        ("crf", -1),
        ("crf", True),
        ("crf", "20"),
        ("preset", "warp9"),
        ("threads", -1),
        ("threads", 17),
        ("threads", 1.5),
        ("threads", True),
        ("threads", "1"),
        ("tune", "bogus"),
        ("tune", ""),
        ("tune", "film,grain"),  # two psy tunes
        ("tune", "zerolatency,zerolatency"),
        ("tune", 5),
        ("x264_params", "foo=1"),
        ("x264_params", "subme=12"),
        ("x264_params", "ref=0"),
        ("x264_params", "me=fast"),
        ("x264_params", "subme"),
        ("x264_params", "subme=1::ref=1"),
        ("x264_params", "subme=1:subme=2"),
        ("x264_params", "subme = 1"),
        ("x264_params", "partitions=p8x8,bogus"),
        ("x264_params", None),
        ("audio_bitrate", 0),
    ],
)
def test_a_bad_value_is_refused_naming_its_key(key: str, value: object) -> None:
    with pytest.raises(ConfigValueError, match=rf"^encoder\.{key}\b"):
        EncoderSettings(**{**VALID, key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("threads", 0),
        ("threads", 16),
        ("tune", "fastdecode,zerolatency"),
        ("tune", "film"),
        ("x264_params", ""),
        ("x264_params", "me=umh:subme=1:ref=2:trellis=0:partitions=i8x8,i4x4:rc-lookahead=0"),
    ],
)
def test_good_values_are_taken(key: str, value: object) -> None:
    assert getattr(EncoderSettings(**{**VALID, key: value}), key) == value


def test_every_setting_is_required() -> None:
    for key in VALID:
        with pytest.raises(TypeError, match=key):
            EncoderSettings(**{k: v for k, v in VALID.items() if k != key})


def test_the_configured_defaults_are_valid_and_overridable() -> None:
    cfg = compose("render")
    settings = EncoderSettings(**OmegaConf.to_container(cfg.encoder))
    assert set(OmegaConf.to_container(cfg.encoder)) == set(VALID)
    assert settings.threads >= 0
    bad = compose("render", ["encoder.x264_params='subme=99'"])
    with pytest.raises(ConfigValueError, match="encoder.x264_params: subme"):
        EncoderSettings(**OmegaConf.to_container(bad.encoder))


def test_x264_options_add_a_writer_tune_to_the_settings_tune() -> None:
    settings = EncoderSettings(**{**VALID, "tune": "fastdecode", "threads": 0})
    assert settings.x264_options(tune="zerolatency") == {
        "crf": "20",
        "preset": "veryfast",
        "threads": "0",
        "tune": "fastdecode,zerolatency",
        "x264-params": "me=dia",
    }
    plain = EncoderSettings(**{**VALID, "tune": "zerolatency", "x264_params": ""})
    assert plain.x264_options(tune="zerolatency")["tune"] == "zerolatency"
    assert "tune" not in EncoderSettings(**VALID).x264_options()
    assert "x264-params" not in plain.x264_options()


def _x264_options(data: bytes) -> dict[str, str]:
    """The options libx264 records in its SEI message: ``options: cabac=1 ref=1 ...``."""
    match = re.search(rb"x264 - core \d+.*? options: ([^\x00]*)", data)
    assert match is not None, "no x264 SEI in the stream"
    return dict(item.split("=", 1) for item in match.group(1).decode().split())


SIZE = 128  # large enough that libx264 left to itself (threads 0) takes 2 sliced threads


def _frames(n: int, size: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, size, size, 3), np.uint8)


def test_the_settings_reach_libx264(tmp_path: Path) -> None:
    settings = EncoderSettings(
        **{**VALID, "threads": 1, "tune": "fastdecode", "x264_params": "me=dia:subme=1:ref=2"}
    )
    path = tmp_path / "a.mp4"
    with Mp4Writer(path, fps=25, size=(SIZE, SIZE), sample_rate=16000, encoder=settings) as w:
        w.write_frames(_frames(10))
    options = _x264_options(path.read_bytes())
    assert options["threads"] == "1" and options["sliced_threads"] == "0"
    assert (options["me"], options["subme"], options["ref"]) == ("dia", "1", "2")
    assert options["cabac"] == "0", "tune fastdecode turns CABAC off"
    assert options["crf"] == "20.0" and int(options["bframes"]) > 0


def test_the_stream_writer_adds_zerolatency_to_the_settings(tmp_path: Path) -> None:
    settings = EncoderSettings(**{**VALID, "threads": 1, "tune": "fastdecode"})
    pieces: list[bytes] = []
    with Mp4StreamWriter(
        pieces.append, fps=25, size=(SIZE, SIZE), sample_rate=16000, encoder=settings
    ) as w:
        w.write_frames(_frames(10))
    options = _x264_options(b"".join(pieces))
    assert options["bframes"] == "0" and options["mbtree"] == "0", "zerolatency"
    assert options["cabac"] == "0", "and the settings' fastdecode"
    assert options["threads"] == "1" and options["me"] == "dia"
