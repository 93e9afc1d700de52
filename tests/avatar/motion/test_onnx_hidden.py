"""The learned mouth's streaming step on ONNX Runtime gives PyTorch's outputs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from avatar.config import repo_path  # noqa: E402
from avatar.errors import ConfigValueError  # noqa: E402
from avatar.motion.learned import LearnedMotion  # noqa: E402


def _speechlike(seconds: float, rate: int = 16000) -> np.ndarray:
    """Voiced bursts (harmonics with a moving pitch) and pauses, seeded."""
    rng = np.random.default_rng(3)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(pitch) / rate) / k for k in range(1, 6))
    envelope = (np.sin(2 * np.pi * 1.3 * t) > -0.2).astype(float)
    return (0.2 * voiced * envelope + 0.003 * rng.normal(size=len(t))).astype(np.float32)


def _streamed(model: LearnedMotion, audio: np.ndarray, chunk: int) -> np.ndarray:
    stream = model.stream()
    frames = []
    for start in range(0, len(audio), chunk):
        frames += stream.push(audio[start : start + chunk])
    return np.stack(frames + stream.flush())


@pytest.fixture(scope="module")
def models():
    path = repo_path("checkpoints/audio2motion.ckpt")
    return (
        LearnedMotion.load(path, streaming_runtime="torch"),
        LearnedMotion.load(path, streaming_runtime="onnxruntime"),
    )


@pytest.mark.parametrize("chunk", [320, 640, 1111])
def test_onnxruntime_streams_what_torch_streams(models, chunk):
    torch_model, ort_model = models
    audio = _speechlike(3.0)
    expected = _streamed(torch_model, audio, chunk)
    got = _streamed(ort_model, audio, chunk)
    assert got.shape == expected.shape == (75, 7)
    assert np.abs(got - expected).max() < 1e-5
    assert np.ptp(expected[:, 0]) > 0.1, "the mouth moves: the comparison is not of zeros"
    offline = torch_model.predict(audio, 16000)
    assert np.abs(got - offline).max() < 1e-4, "and the offline path"


def test_an_unknown_runtime_is_refused():
    with pytest.raises(ConfigValueError, match="streaming_runtime"):
        LearnedMotion.load(repo_path("checkpoints/audio2motion.ckpt"), streaming_runtime="tf")
