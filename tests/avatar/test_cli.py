"""The avatar-render console script, run as a user would (a fresh process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

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
    assert out.stat().st_size > 1000
    assert "real-time factor" in proc.stdout + proc.stderr


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
