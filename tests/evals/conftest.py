"""Eval test data made once per session: a short rendered speech clip at 128 px and its track."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SPEECH = "Hello there. It is a lovely day, and I am so glad to see you again. Shall we begin?"


@dataclass
class SpeechClip:
    """A clip rendered by the pipeline and what the lip-sync metrics read from it."""

    path: Path
    frames: np.ndarray  # (T, 128, 128, 3) uint8
    fps: float
    audio: np.ndarray  # (S,) float32, decoded from the MP4
    sample_rate: int
    aperture: np.ndarray  # (T,) from MediaPipe landmarks of the frames


@pytest.fixture(scope="session")
def speech_clip(tmp_path_factory: pytest.TempPathFactory, identity_cache: Path) -> SpeechClip:
    """One pipeline render at renderer.size=128 (about 1 s to render, 1 s to track)."""
    from avatar.config import compose, pipeline_from_config
    from avatar.media import read_mp4
    from evals.functional.mouth import mouth_aperture
    from evals.landmarks import track_video

    out = tmp_path_factory.mktemp("speech") / "speech.mp4"
    cfg = compose("render", ["renderer.size=128", f"identity.cache_dir={identity_cache}"])
    pipeline_from_config(cfg).render_text("default", SPEECH, out)
    clip = read_mp4(out)
    track = track_video(clip.frames, clip.fps)
    assert track.detection_rate == 1.0
    return SpeechClip(
        out, clip.frames, clip.fps, clip.audio, clip.sample_rate, mouth_aperture(track.landmarks)
    )


class MeanColourEmbedder:
    """A stand-in face embedder: the image's mean colour in [0, 1] (None for an all-black image)."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, image_rgb: np.ndarray) -> np.ndarray | None:
        self.calls += 1
        if not image_rgb.any():
            return None
        return image_rgb.reshape(-1, 3).mean(axis=0) / 255.0


@pytest.fixture
def fake_embedder() -> MeanColourEmbedder:
    return MeanColourEmbedder()


@pytest.fixture(scope="session")
def shift() -> object:
    """:func:`evals.perturb.shift_audio` (audio delayed by k video frames)."""
    from evals.perturb import shift_audio

    return shift_audio
