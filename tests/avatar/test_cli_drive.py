"""``avatar-render drive=<video>``: a video's face drives the companion; the MP4 has the video's
duration and soundtrack. Bad drive inputs exit 2 with one ``error:`` line and write nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avatar.audio import Audio
from avatar.cli import run
from avatar.media import EncoderSettings, read_mp4, write_mp4
from avatar.motion.track import MotionTrack
from avatar.speech.tts import silence_speech

RATE = 24000


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, render_config_overrides) -> Path:
    """A 2 s clip of the default companion opening its jaw and turning, with a tone."""
    from avatar.config import compose, pipeline_from_config

    pipeline = pipeline_from_config(compose("render", render_config_overrides))
    track = MotionTrack.zeros(50, 25.0)
    t = np.arange(50) / 25.0
    track.set("jaw_open", 0.3 + 0.3 * np.sin(2 * np.pi * 2.0 * t))
    track.set("head_yaw", 4.0 * np.sin(2 * np.pi * 0.5 * t))
    tone = (0.2 * np.sin(2 * np.pi * 440.0 * np.arange(2 * RATE) / RATE)).astype(np.float32)
    out = tmp_path_factory.mktemp("driver") / "driver.mp4"
    pipeline.render_speech(
        "default", silence_speech(2.0, RATE), out, motion=track, soundtrack=Audio(tone, RATE)
    )
    return out


def _argv(tmp_path: Path, identity_cache: Path, *overrides: str) -> list[str]:
    return [
        f"hydra.run.dir={tmp_path / 'hydra'}",
        f"identity.cache_dir={identity_cache}",
        "identity.super_resolution=off",
        "renderer.size=256",
        "render_processes=0",
        *overrides,
    ]


def test_drive_renders_the_drivers_duration_and_sound(
    tmp_path: Path, identity_cache: Path, driver: Path
) -> None:
    out = tmp_path / "driven.mp4"
    assert run(_argv(tmp_path, identity_cache, f"drive={driver}", f"out={out}")) == 0
    made, source = read_mp4(out), read_mp4(driver)
    assert made.n_frames == source.n_frames == 50 and made.fps == 25.0
    n = min(len(made.audio), len(source.audio))
    assert n > 1.9 * made.sample_rate
    assert np.corrcoef(made.audio[:n], source.audio[:n])[0, 1] > 0.9  # the driver's tone
    # the companion moves: its mouth region changes between frames
    mouth = made.frames[:, 150:200, 100:156].astype(np.float32)
    assert mouth.std(axis=0).mean() > 2.0


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("drive-bad")
    (folder / "text.mp4").write_text("not a video")
    noise = np.random.default_rng(0).integers(0, 255, (10, 64, 64, 3), np.uint8)
    silent = np.zeros(RATE // 2, np.float32)
    settings = EncoderSettings(
        crf=20, preset="veryfast", threads=1, tune=None, x264_params="", audio_bitrate=64000
    )
    write_mp4(
        folder / "noface.mp4", noise, fps=25.0, audio=silent, sample_rate=RATE, encoder=settings
    )
    return folder


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["drive={d}/nope.mp4"], "nope.mp4: file does not exist"),
        (["drive={d}/text.mp4"], "VideoFormatError: {d}/text.mp4: not decodable video"),
        (["drive={d}/noface.mp4"], "FaceNotFoundError: {d}/noface.mp4: no face found in any"),
        (["drive={d}/noface.mp4", "text=Hi"], "text= cannot be used with drive="),
        (["drive={d}/noface.mp4", "audio=a.wav"], "audio= cannot be used with drive="),
    ],
    ids=["missing", "not a video", "no face", "with text", "with audio"],
)
def test_bad_drive_input_exits_2_with_one_clear_line(
    tmp_path: Path,
    identity_cache: Path,
    bad_files: Path,
    capfd: pytest.CaptureFixture[str],
    overrides: list[str],
    fragment: str,
) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    argv = _argv(tmp_path, identity_cache, f"out={outdir / 'o.mp4'}")
    code = run([*argv, *(o.format(d=bad_files) for o in overrides)])
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2, err[-2000:]
    assert len(errors) == 1 and fragment.format(d=bad_files) in errors[0], err[-2000:]
    assert "Traceback" not in err
    assert list(outdir.iterdir()) == []
