"""Tests for avatar.media: WAV reading, MP4 writing (H.264 + AAC), reading back and probing."""

from __future__ import annotations

import wave
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.io import wavfile

from avatar.audio import frame_count, resample
from avatar.errors import AudioFormatError, VideoFormatError
from avatar.media import (
    EncoderSettings,
    Mp4Writer,
    iter_video_frames,
    probe_mp4,
    read_audio,
    read_mp4,
    write_mp4,
    write_wav,
)

FPS, SIZE, N_FRAMES, SR = 25, 128, 50, 24000
CLICK_S = 0.75
FAST = EncoderSettings(
    crf=23, preset="ultrafast", threads=1, tune=None, x264_params="", audio_bitrate=64000
)
HQ = EncoderSettings(
    crf=18, preset="veryfast", threads=1, tune=None, x264_params="", audio_bitrate=128000
)


def _small_writer(path: Path) -> Mp4Writer:
    """A 64x64 writer with cheap encoder settings."""
    return Mp4Writer(
        path,
        fps=FPS,
        size=(64, 64),
        sample_rate=SR,
        encoder=FAST,
    )


def _frames(n: int, size: int = SIZE) -> np.ndarray:
    """(n, size, size, 3) uint8: a smooth gradient that drifts a pixel per frame."""
    yy, xx = np.mgrid[0:size, 0:size]
    out = np.empty((n, size, size, 3), np.uint8)
    for t in range(n):
        out[t, ..., 0] = (xx + t) * 255 // (size + n)
        out[t, ..., 1] = yy * 255 // size
        out[t, ..., 2] = 128
    return out


def _tone(seconds: float, rate: int = SR, freq: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    audio = _tone(2.0)
    audio[round(CLICK_S * SR)] = 0.95  # a click at a known time checks the priming trim
    path = tmp_path_factory.mktemp("mp4") / "clip.mp4"
    return write_mp4(path, _frames(N_FRAMES), fps=FPS, audio=audio, sample_rate=SR, encoder=HQ)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_probe_roundtrip(clip_path: Path) -> None:
    info = probe_mp4(clip_path)
    assert (info["video_codec"], info["audio_codec"], info["pix_fmt"]) == ("h264", "aac", "yuv420p")
    assert (info["width"], info["height"], info["n_video_frames"]) == (SIZE, SIZE, N_FRAMES)
    assert info["fps"] == FPS and info["audio_sample_rate"] == SR and info["audio_channels"] == 1
    assert info["video_duration"] == pytest.approx(2.0)
    assert abs(info["audio_duration"] - info["video_duration"]) < 1 / FPS
    assert info["faststart"] is True
    assert _leftovers(clip_path.parent) == ["clip.mp4"]


def test_read_mp4_audio_aligned(clip_path: Path) -> None:
    clip = read_mp4(clip_path)
    assert clip.frames.shape == (N_FRAMES, SIZE, SIZE, 3) and clip.frames.dtype == np.uint8
    assert np.abs(clip.frames.astype(int) - _frames(N_FRAMES).astype(int)).mean() < 3
    assert clip.sample_rate == SR and clip.audio.dtype == np.float32
    assert len(clip.audio) == 2 * SR and clip.duration == pytest.approx(2.0)
    spectrum = np.abs(np.fft.rfft(clip.audio))
    assert np.fft.rfftfreq(len(clip.audio), 1 / SR)[spectrum.argmax()] == pytest.approx(440, abs=1)
    click = np.abs(clip.audio).argmax() / SR
    assert abs(click - CLICK_S) < 1e-3  # priming was trimmed: no shift


def test_read_mp4_partial(clip_path: Path) -> None:
    head = read_mp4(clip_path, max_frames=10)
    assert len(head.frames) == 10 and len(head.audio) == round(0.4 * SR)
    counted = read_mp4(clip_path, with_frames=False)
    assert counted.frames.shape == (0, SIZE, SIZE, 3) and counted.n_frames == N_FRAMES
    assert counted.duration == pytest.approx(2.0) and len(counted.audio) == 2 * SR


def test_iter_video_frames(clip_path: Path) -> None:
    items = list(iter_video_frames(clip_path))
    assert len(items) == N_FRAMES and items[0][0].shape == (SIZE, SIZE, 3)
    assert [t for _, t in items] == pytest.approx([i / FPS for i in range(N_FRAMES)])


def test_long_audio_trimmed_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "trim.mp4"
    audio = _tone(3.0)
    with _small_writer(path) as writer:
        writer.write_frames(_frames(10, 64))
        for chunk in np.array_split(audio, 3):  # audio may arrive in pieces, after frames
            writer.write_audio(chunk)
        writer.write_frames(_frames(15, 64))
    clip = read_mp4(path)
    assert clip.n_frames == 25 and len(clip.audio) == SR
    assert probe_mp4(path)["audio_duration"] == pytest.approx(1.0, abs=1 / FPS)
    assert np.sqrt(np.mean(clip.audio[-SR // 4 :] ** 2)) > 0.1  # the tone runs to the end


def test_short_audio_padded(tmp_path: Path) -> None:
    stereo = np.stack([_tone(0.5), _tone(0.5)], axis=1)
    path = write_mp4(
        tmp_path / "pad.mp4",
        _frames(N_FRAMES, 64),
        fps=FPS,
        audio=stereo,
        sample_rate=SR,
        encoder=FAST,
    )
    info = probe_mp4(path)
    assert info["audio_channels"] == 2
    assert info["audio_duration"] == pytest.approx(2.0, abs=1 / FPS)
    clip = read_mp4(path)
    assert len(clip.audio) == 2 * SR
    assert np.sqrt(np.mean(clip.audio[SR // 4 : SR // 2] ** 2)) > 0.1
    assert np.abs(clip.audio[SR:]).max() < 1e-3  # padded with silence


def test_unsupported_aac_rate_is_resampled(tmp_path: Path) -> None:
    path = write_mp4(
        tmp_path / "r.mp4",
        _frames(5, 64),
        fps=FPS,
        audio=_tone(0.2, 37800),
        sample_rate=37800,
        encoder=FAST,
    )
    assert probe_mp4(path)["audio_sample_rate"] == 44100
    assert len(read_mp4(path).audio) == round(0.2 * 44100)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((64, 64, 3), np.float32),
        np.zeros((32, 64, 3), np.uint8),
        np.zeros((64, 64), np.uint8),
    ],
)
def test_bad_frame_leaves_no_file(tmp_path: Path, bad: np.ndarray) -> None:
    path = tmp_path / "bad.mp4"
    with pytest.raises(VideoFormatError, match="frame 3"):
        with Mp4Writer(
            path,
            fps=FPS,
            size=(64, 64),
            sample_rate=SR,
            encoder=FAST,
        ) as writer:
            writer.write_audio(_tone(1.0))
            writer.write_frames(_frames(3, 64))
            writer.write_frame(bad)
    assert _leftovers(tmp_path) == []


def test_write_mp4_rejects_float_frames(tmp_path: Path) -> None:
    with pytest.raises(VideoFormatError, match="uint8"):
        write_mp4(
            tmp_path / "f.mp4",
            _frames(4, 64).astype(np.float32),
            fps=FPS,
            audio=_tone(0.2),
            sample_rate=SR,
            encoder=FAST,
        )
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("rate", [16000, 22050, 24000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("dtype", [np.int16, np.float32])
def test_read_audio_wav(tmp_path: Path, rate: int, channels: int, dtype: type) -> None:
    n = round(0.5 * rate)
    signal = np.stack([_tone(0.5, rate)] * channels, axis=1)
    data = (signal * 32767).astype(np.int16) if dtype is np.int16 else signal
    path = tmp_path / "a.wav"
    wavfile.write(path, rate, data)
    audio, got = read_audio(path, mono=False)
    assert got == rate and audio.shape == (n, channels) and audio.dtype == np.float32
    np.testing.assert_allclose(audio, signal, atol=1e-4)
    mono, _ = read_audio(path)
    assert mono.shape == (n,)
    resampled, got = read_audio(path, sample_rate=16000)
    assert got == 16000 and abs(len(resampled) - 8000) <= 1


def test_read_audio_24bit_and_int32(tmp_path: Path) -> None:
    signal = _tone(0.25, 16000)
    ints = np.round(signal * (2**23 - 1)).astype("<i4")
    with wave.open(str(tmp_path / "s24.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(3)
        out.setframerate(16000)
        out.writeframes(b"".join(v.to_bytes(3, "little", signed=True) for v in ints.tolist()))
    wavfile.write(tmp_path / "s32.wav", 16000, (signal * 2**31).astype(np.int32))
    for name in ("s24.wav", "s32.wav"):
        audio, rate = read_audio(tmp_path / name)
        assert rate == 16000
        np.testing.assert_allclose(audio, signal, atol=1e-5)


def test_write_wav_roundtrip(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "sub" / "out.wav", _tone(0.5, 22050), 22050)
    audio, rate = read_audio(path)
    assert rate == 22050 and len(audio) == 11025
    np.testing.assert_allclose(audio, _tone(0.5, 22050), atol=1e-4)
    assert _leftovers(path.parent) == ["out.wav"]


def test_read_audio_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioFormatError, match=str(missing)):
        read_audio(missing)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(AudioFormatError, match=str(garbage)):
        read_audio(garbage)
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioFormatError, match="no samples"):
        read_audio(empty)
    low = write_wav(tmp_path / "low.wav", np.zeros(400, np.float32), 4000)
    with pytest.raises(AudioFormatError, match="4000"):
        read_audio(low)


def test_writer_without_audio_writes_silence(tmp_path: Path) -> None:
    path = tmp_path / "quiet.mp4"
    with _small_writer(path) as writer:
        writer.write_frames(_frames(5, 64))
    audio, rate = read_audio(path)
    assert rate == SR and len(audio) >= round(0.2 * SR) and np.abs(audio).max() < 1e-3


def test_video_without_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "video_only.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index, frame in enumerate(_frames(4, 64)):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    with pytest.raises(AudioFormatError, match="no audio stream"):
        read_audio(path)
    clip = read_mp4(path)
    assert clip.n_frames == 4 and clip.audio.shape == (0,) and clip.sample_rate == 0
    assert probe_mp4(path)["audio_codec"] is None
    with pytest.raises(VideoFormatError, match="no video stream"):
        read_mp4(write_wav(tmp_path / "a.wav", _tone(0.1), SR))


def test_resample_keeps_duration() -> None:
    out = resample(_tone(1.0, 44100), 44100, 16000)
    assert out.shape == (16000,) and out.dtype == np.float32


@pytest.mark.parametrize(
    ("seconds", "fps", "expected"),
    [(2.0, 25, 50), (1.02, 25, 26), (1.01, 25, 25), (0.001, 25, 1), (0.0, 25, 0), (1.0, 29.97, 30)],
)
def test_frame_count(seconds: float, fps: float, expected: int) -> None:
    assert frame_count(seconds, fps) == expected


def test_frame_count_rejects_negative() -> None:
    with pytest.raises(ValueError):
        frame_count(-1.0, 25)


def test_written_files_get_the_umask_mode_not_mkstemps(tmp_path) -> None:
    """The atomic temp file must not leave the output private (0600); the umask is honoured."""
    import os
    import stat

    from avatar.media import write_wav

    umask = os.umask(0o022)
    try:
        out = write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32), 16000)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_umask_is_read_by_the_kernel_not_changed(tmp_path, monkeypatch) -> None:
    """Writing an output never calls os.umask (process-wide, unsafe in threads)."""
    import os

    calls = []
    monkeypatch.setattr(os, "umask", lambda *a: calls.append(a) or 0o022)
    write_wav(tmp_path / "a.wav", np.zeros(160, np.float32), 16000)
    assert calls == []
