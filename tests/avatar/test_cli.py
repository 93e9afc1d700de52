"""The avatar-render console script, run as a user would (a fresh process)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avatar.media import probe_mp4, read_mp4
from avatar.quiet import NOISE
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
    logged = re.search(  # progress on stdout; stderr is for warnings and errors only
        r"(\d+) frames at ([\d.]+) fps, ([\d.]+) s of audio, real-time factor", proc.stdout
    )
    assert logged, proc.stdout + proc.stderr
    assert "[INFO]" not in proc.stderr and "error:" not in proc.stderr
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
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: FaceNotFoundError: ") and "noise.png" in last
    assert "Traceback" not in proc.stderr and "error:" not in proc.stdout
    assert not (tmp_path / "o.mp4").exists()


def test_bad_config_key_is_one_line_on_stderr_and_exit_2(tmp_path):
    proc = _run(tmp_path, "renderer.sise=256")
    assert proc.returncode == 2
    assert proc.stderr == (
        "error: ConfigCompositionException: Could not override 'renderer.sise'. To append to "
        "your config use +renderer.sise=256 (Key 'sise' is not in struct)\n"
    )


@pytest.mark.parametrize("verbose", [False, True])
def test_native_library_logs_only_with_verbose(tmp_path, verbose):
    """MediaPipe/TFLite/absl write ~8 lines to descriptor 2 when a face is landmarked; they
    are dropped unless verbose=true (the identity is derived afresh so they would appear)."""
    out = tmp_path / "o.mp4"
    proc = _run(
        tmp_path, "text=Hi.", f"out={out}", "identity.use_cache=false", f"verbose={verbose}"
    )
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"o\.mp4: \d+ frames at 25 fps", proc.stdout) and out.is_file()
    noise = [line for line in proc.stderr.splitlines() if NOISE.match(line.encode())]
    if verbose:
        assert len(noise) >= 3, proc.stderr  # absl's first-line warning, TFLite, W0000 lines
        assert any("Created TensorFlow Lite XNNPACK delegate" in line for line in noise)
    else:
        assert proc.stderr == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_render_removes_the_partial_mp4(tmp_path, identity_cache, signum):
    """What a service manager (SIGTERM) or Ctrl-C (SIGINT) does mid-render: exit 128 + signal,
    a clear line, and no hidden .o.mp4.*.part.mp4 left beside the output."""
    outdir = tmp_path / "out"
    text = "This long sentence keeps the companion talking for a good while. " * 8
    proc = subprocess.Popen(
        [
            EXE,
            f"hydra.run.dir={tmp_path / 'hydra'}",
            "renderer.size=128",
            f"identity.cache_dir={identity_cache}",
            f"text={text.strip()}",
            f"out={outdir / 'o.mp4'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not list(outdir.glob(".o.mp4.*.part.mp4")) and proc.poll() is None:
            time.sleep(0.01)  # polling for the temp file, not timing anything
        assert proc.poll() is None, f"ended before the signal: {proc.communicate()[1][-2000:]}"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum
    assert err.strip().splitlines()[-1] == (
        f"error: stopped by {signal.Signals(signum).name}; partial output removed"
    )
    assert "Traceback" not in err and list(outdir.iterdir()) == []


def test_text_is_data_on_the_command_line_and_in_a_file(tmp_path, identity_cache):
    """``${...}``, ``key=value``, commas, brackets and quotes are spoken as written: text= and
    text_file= with the same words give the same speech (run in-process)."""
    from avatar.cli import run

    common = ["renderer.size=64", f"identity.cache_dir={identity_cache}", "motion.seed=1"]
    common.append(f"hydra.run.dir={tmp_path / 'hydra'}")
    dollars = tmp_path / "dollars.txt"
    dollars.write_text("Cost is ${oc.env:HOME} dollars", encoding="utf-8")
    special = tmp_path / "special.txt"
    special.write_text('Set mode=fast, then [1, 2] and "quoted" words, it\'s done.\n', "utf-8")
    renders = {
        "text": 'text="Cost is ${oc.env:HOME} dollars"',
        "file": f"text_file={dollars}",
        "resolved": f'text="Cost is {Path.home()} dollars"',
        "special_file": f"text_file={special}",
        "special_text": 'text="Set mode=fast, then [1, 2] and \\"quoted\\" words, it\'s done."',
    }
    audio = {}
    for name, given in renders.items():
        assert run([*common, given, f"out={tmp_path / name}.mp4"]) == 0, name
        audio[name] = read_mp4(tmp_path / f"{name}.mp4").audio
    np.testing.assert_array_equal(audio["text"], audio["file"])
    assert len(audio["resolved"]) != len(audio["text"])  # HOME was not put in
    np.testing.assert_array_equal(audio["special_text"], audio["special_file"])
