"""End to end: text -> MP4 through the pipeline, determinism, durations, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.config import companion_from_config, compose, pipeline_from_config
from avatar.errors import FaceNotFoundError, TextInputError
from avatar.media import probe_mp4, read_mp4

TEXT = "Hello there. Nice to meet you."


@pytest.fixture(scope="module")
def pipeline(render_config_overrides):
    return pipeline_from_config(compose("render", render_config_overrides))


@pytest.fixture(scope="module")
def rendered(pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("render") / "hello.mp4"
    return pipeline.render_text("default", TEXT, out)


def test_mp4_streams_and_durations(rendered):
    info = probe_mp4(rendered.path)
    assert (info["video_codec"], info["audio_codec"], info["pix_fmt"]) == ("h264", "aac", "yuv420p")
    assert (info["width"], info["height"], info["fps"]) == (256, 256, 25.0)
    assert info["faststart"]
    assert info["n_video_frames"] == rendered.n_frames == round(rendered.audio_seconds * 25)
    assert abs(info["video_duration"] - info["audio_duration"]) <= 1 / 25
    assert set(rendered.timings) >= {"tts", "identity", "motion", "render", "encode", "first_frame"}


def test_same_seed_same_video(pipeline, rendered, tmp_path):
    again = pipeline.render_text("default", TEXT, tmp_path / "again.mp4")
    np.testing.assert_array_equal(again.motion.values, rendered.motion.values)
    a, b = read_mp4(rendered.path), read_mp4(again.path)
    np.testing.assert_array_equal(a.frames, b.frames)


def test_the_audio_is_the_speech(rendered):
    clip = read_mp4(rendered.path)
    speech = rendered.speech.audio
    n = min(len(speech), len(clip.audio))
    corr = np.corrcoef(speech[:n], clip.audio[:n])[0, 1]
    assert corr > 0.9, "the MP4 carries the synthesized speech, in sync"


@pytest.mark.parametrize("text", ["", "   ", "x" * 5000])
def test_bad_text_writes_nothing(pipeline, tmp_path, text):
    with pytest.raises(TextInputError):
        pipeline.render_text("default", text, tmp_path / "bad.mp4")
    assert not list(tmp_path.iterdir())


def test_image_without_face_fails_and_caches_nothing(tmp_path, render_config_overrides):
    import cv2

    blank = tmp_path / "wall.png"
    gradient = np.tile(np.linspace(40, 220, 300, dtype=np.uint8), (300, 1))
    cv2.imwrite(str(blank), np.dstack([gradient] * 3))
    cache = tmp_path / "cache"
    cfg = compose(
        "render",
        [*render_config_overrides, f"identity.cache_dir={cache}", f"companion.images=[{blank}]"],
    )
    with pytest.raises(FaceNotFoundError, match="wall.png"):
        pipeline_from_config(cfg).render_text(companion_from_config(cfg), TEXT, tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()
    assert not cache.exists() or not any(cache.rglob("*.npz"))
