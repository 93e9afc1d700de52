"""The avatar-render console script, run as a user would (a fresh process)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avatar.media import probe_mp4, read_mp4
from avatar.speech.loudness import active_rms_dbfs

EXE = str(Path(sys.executable).with_name("avatar-render"))


def _run(tmp_path, *args):
    return subprocess.run(
        [EXE, f"hydra.run.dir={tmp_path / 'hydra'}", "renderer.size=192", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_renders_text_to_mp4(tmp_path, identity_cache):
    out = tmp_path / "hi.mp4"
    proc = _run(
        tmp_path, "text=Hi.", f"out={out}", f"identity.cache_dir={identity_cache}", "motion.seed=3"
    )
    assert proc.returncode == 0, proc.stderr
    logged = re.search(
        r"(\d+) frames at ([\d.]+) fps, ([\d.]+) s of audio, real-time factor",
        proc.stdout + proc.stderr,
    )
    assert logged, proc.stderr
    n_frames, fps, seconds = int(logged[1]), float(logged[2]), float(logged[3])
    clip = read_mp4(out)
    assert clip.frames.shape == (n_frames, 192, 192, 3) and clip.fps == fps == 25
    # the video lasts as long as the speech: within half a frame, plus the log's 0.01 s rounding
    assert n_frames / fps == pytest.approx(seconds, abs=0.5 / fps + 0.005)
    assert probe_mp4(out)["audio_duration"] == pytest.approx(n_frames / fps, abs=1 / fps)
    # the speech itself: hibari output normalised to the voice's target_dbfs (-20); AAC at
    # 128 kbit/s keeps the level of the active frames within a fraction of a dB
    assert active_rms_dbfs(clip.audio, clip.sample_rate) == pytest.approx(-20.0, abs=0.5)


def test_no_face_is_a_clear_error_with_exit_code_2(tmp_path):
    import cv2

    img = tmp_path / "noise.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8))
    proc = _run(
        tmp_path,
        "text=Hi.",
        f"out={tmp_path / 'o.mp4'}",
        f"companion.images=[{img}]",
        f"identity.cache_dir={tmp_path / 'cache'}",
    )
    assert proc.returncode == 2
    assert (
        "FaceNotFoundError" in proc.stderr + proc.stdout
        and "noise.png" in proc.stderr + proc.stdout
    )
    assert not (tmp_path / "o.mp4").exists()


def test_bad_config_key_is_reported(tmp_path):
    proc = _run(tmp_path, "renderer.sise=256")
    assert proc.returncode != 0
    assert "sise" in proc.stderr
