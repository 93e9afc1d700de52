"""Audio duration from the container headers, before any decoding (avatar.media.probe)."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
import pytest

from avatar.errors import AudioFormatError
from avatar.media import read_audio
from avatar.media.probe import audio_duration, check_audio_duration

SECONDS = 2.5


def _write(
    path: Path,
    codec: str,
    fmt: str,
    rate: int,
    layout: str = "mono",
    *,
    seconds: float = SECONDS,
    format_options: dict | None = None,
) -> Path:
    """A 440 Hz tone of ``seconds`` encoded with PyAV."""
    n = int(rate * seconds)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype(np.float32)
    channels = 2 if layout == "stereo" else 1
    with av.open(str(path), "w", format=fmt, options=format_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=layout, rate=rate)
        for i in range(0, n, 1024):
            block = np.ascontiguousarray(np.tile(tone[i : i + 1024], (channels, 1)))
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = rate
            for resampled in resampler.resample(frame):
                out.mux(stream.encode(resampled))
        out.mux(stream.encode(None))
    return path


def _wav(path: Path, samples: int, *, data_size: int | None = None, rate: int = 16000) -> Path:
    """Mono 16-bit PCM WAV of silence whose header may state another data size."""
    data = bytes(2 * samples)
    size = len(data) if data_size is None else data_size
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16)
    header = b"RIFF" + struct.pack("<I", (36 + size) & 0xFFFFFFFF) + b"WAVEfmt " + fmt
    path.write_bytes(header + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data)
    return path


# (file name, codec, container format, rate, layout); encoders that
# prime (AAC, Opus, MP3) add up to ~0.13 s of padding, which the headers count. Not Vorbis:
# FFmpeg's experimental native encoder writes granule positions that state 0.16 s for 2.56 s.
FORMATS = [
    ("pcm.wav", "pcm_s16le", "wav", 16000, "mono"),
    ("pcm24.wav", "pcm_s24le", "wav", 44100, "stereo"),
    ("a.flac", "flac", "flac", 44100, "stereo"),
    ("a.mp3", "libmp3lame", "mp3", 22050, "mono"),
    ("opus.ogg", "libopus", "ogg", 48000, "mono"),
    ("a.m4a", "aac", "ipod", 24000, "stereo"),
    ("raw.aac", "aac", "adts", 16000, "mono"),  # no header: size over bitrate
]


@pytest.mark.parametrize(("name", "codec", "fmt", "rate", "layout"), FORMATS)
def test_duration_matches_the_decoded_audio(tmp_path, name, codec, fmt, rate, layout):
    path = _write(tmp_path / name, codec, fmt, rate, layout)
    seconds = audio_duration(path)
    decoded, decoded_rate = read_audio(path)
    assert SECONDS <= seconds <= SECONDS + 0.15
    assert seconds == pytest.approx(len(decoded) / decoded_rate, abs=0.13)


def test_wav_duration_is_data_size_over_byte_rate(tmp_path):
    assert audio_duration(_wav(tmp_path / "a.wav", 40000)) == 2.5
    # a header that claims an hour: capped at what the file holds
    assert audio_duration(_wav(tmp_path / "lie.wav", 16000, data_size=16000 * 2 * 3600)) == 1.0
    # a streamed WAV (size unknown, 0xFFFFFFFF): what the file holds
    assert audio_duration(_wav(tmp_path / "stream.wav", 8000, data_size=0xFFFFFFFF)) == 0.5


def test_a_huge_file_is_measured_without_reading_it(tmp_path):
    """A sparse 1 GiB WAV (8.7 hours at 16 kHz): decoding it would need 2 GiB of float32."""
    path = _wav(tmp_path / "huge.wav", 0, data_size=2**30 - 44)
    with open(path, "r+b") as f:
        f.truncate(2**30)  # sparse: no data written
    assert audio_duration(path) == pytest.approx((2**30 - 44) / 32000)
    with pytest.raises(AudioFormatError, match=r"33554\.4 s .* 600 s \(config key max_audio_s"):
        check_audio_duration(path, max_seconds=600.0, config_key="max_audio_seconds")


def test_unknown_duration_is_none(tmp_path):
    """A live WebM (what a browser's MediaRecorder writes) states no duration."""
    path = _write(tmp_path / "live.webm", "libopus", "webm", 48000, format_options={"live": "1"})
    assert audio_duration(path) is None
    assert check_audio_duration(path, max_seconds=1.0, config_key="k") is None
    assert len(read_audio(path)[0]) == pytest.approx(48000 * SECONDS, abs=2000)


def test_check_within_the_limit_returns_the_duration(tmp_path):
    path = _wav(tmp_path / "a.wav", 16000)
    assert check_audio_duration(path, max_seconds=1.0, config_key="max_audio_seconds") == 1.0
    with pytest.raises(AudioFormatError, match="1.0 s of audio is over the limit of 0.5 s"):
        check_audio_duration(path, max_seconds=0.5, config_key="max_audio_seconds")


def test_unreadable_files_are_audio_format_errors(tmp_path):
    with pytest.raises(AudioFormatError, match="does not exist"):
        audio_duration(tmp_path / "missing.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(4096))
    for name in ("empty.wav", "noise.mp3"):
        with pytest.raises(AudioFormatError, match="not a readable audio file"):
            audio_duration(tmp_path / name)
    with pytest.raises(AudioFormatError, match="does not exist"):
        audio_duration(tmp_path)  # a directory


def test_a_video_without_audio_has_no_audio_stream(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for _ in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(AudioFormatError, match="no audio stream"):
        audio_duration(path)
