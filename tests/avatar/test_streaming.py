"""Real-time session: 20 ms chunks in, frames out, equal to the offline learned-mouth path."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from hydra.utils import instantiate  # noqa: E402

from avatar.audio import Audio, frame_count  # noqa: E402
from avatar.config import compose, pipeline_from_config  # noqa: E402
from tests.fakes import FakeRenderer, decode_fake_frame, pipeline_with  # noqa: E402

FPS = 25


@pytest.fixture(scope="module")
def pipeline(render_config_overrides):
    """The default pipeline with a small untrained network standing in for the checkpoint."""
    import torch

    from avatar.motion.learned import LearnedMotion

    torch.manual_seed(0)
    net = instantiate(compose("train", ["model=tiny", "data=synthetic", "~logger"]).model.net)
    cfg = compose("render", [*render_config_overrides, "renderer.size=128"])
    return pipeline_from_config(cfg, learned=lambda: LearnedMotion(net, streaming_runtime="torch"))


@pytest.fixture(scope="module")
def speech(pipeline) -> Audio:
    s = pipeline.speak("Hello there. How are you?")
    return Audio(s.audio, s.sample_rate)


def _stream(session, audio: Audio, chunk_s: float = 0.02):
    step = int(round(chunk_s * audio.sample_rate))
    frames = []
    for start in range(0, len(audio.mono), step):
        frames += session.push_audio(audio.mono[start : start + step], audio.sample_rate)
    return frames + session.flush()


def test_streamed_frames_equal_the_offline_path(pipeline, speech):
    session = pipeline.session("default")
    streamed = _stream(session, speech)
    motion = pipeline.learned_motion(speech)
    # one frame per 1/FPS of speech, rounded half up (avatar.audio.frame_count), on both paths
    expected = frame_count(len(speech.mono) / speech.sample_rate, FPS)
    assert len(streamed) == len(motion) == expected
    offline = list(pipeline.frames("default", motion))
    for frame, image in zip(streamed, offline, strict=True):
        # the network's chunked and whole-signal runs differ by < 1e-5: a pixel may move a level
        assert np.abs(frame.image.astype(int) - image.astype(int)).max() <= 1
    assert [f.index for f in streamed] == list(range(len(streamed)))
    assert streamed[3].timestamp == pytest.approx(3 / FPS)


def test_chunk_size_does_not_matter(pipeline, speech):
    a = [f.image for f in _stream(pipeline.session("default"), speech, 0.02)]
    b = [f.image for f in _stream(pipeline.session("default"), speech, 0.05)]
    assert len(a) == len(b) == frame_count(len(speech.mono) / speech.sample_rate, FPS)
    diffs = [np.abs(x.astype(int) - y.astype(int)).max() for x, y in zip(a, b, strict=True)]
    assert max(diffs) <= 1


def test_silence_keeps_the_mouth_closed_and_interrupt_resets(pipeline, speech):
    session = pipeline.session("default")
    quiet = Audio(np.zeros(int(1.0 * speech.sample_rate), np.float32), speech.sample_rate)
    frames = _stream(session, quiet)
    motion = pipeline.learned_motion(quiet)
    assert np.all(np.abs(motion["jaw_open"][8:]) < 1e-6), "gated closed after the hold time"
    # interrupt mid-utterance: pending audio is dropped, frame numbering continues
    n = len(frames)
    session.push_audio(speech.mono[: speech.sample_rate // 2], speech.sample_rate)
    session.reset()
    idle = session.idle(3)
    assert idle[0].index > n and all(f.image.shape == (128, 128, 3) for f in idle)


def test_the_renderer_stream_gets_each_frames_audio_and_the_interruption(pipeline, speech):
    """Through the renderer contract: every frame's audio reaches the renderer, and an
    interruption resets its stream before the next frame (a network's state included)."""
    fake = FakeRenderer(size=64)
    session = pipeline_with(pipeline, fake).session("default")
    frames = _stream(session, speech)
    assert fake.audio_samples == len(frames) * 640  # 16 kHz model rate, 25 fps
    spoken = [decode_fake_frame(f.image)[0][0] for f in frames]
    assert np.ptp(spoken) > 0.1, "the (untrained) learned mouth moves while she speaks"
    session.push_audio(speech.mono[: speech.sample_rate // 2], speech.sample_rate)
    session.reset()
    idle = session.idle(4)
    assert [f.image[-1, 0, 0] for f in idle] == [0, 1, 2, 3], "the stream was reset"
    assert all(abs(decode_fake_frame(f.image)[0][0]) < 0.011 for f in idle), "mouth closed"
    assert idle[0].index == session.frame_index - 4 > frames[-1].index  # numbering goes on
    session.close()
    assert session.stream.closed
