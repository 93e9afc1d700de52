"""The notebook helpers of a streaming session (avatar/stream_lab.py): exact 20 ms chunks, the
real-time schedule and its latencies on a fake clock, the interruption, the motion tap, and
the same helpers over the real session (equal to the offline learned-mouth path)."""

from __future__ import annotations

import numpy as np
import pytest

from avatar.audio import Audio
from avatar.motion.track import CHANNELS, MotionTrack
from avatar.renderers.base import RenderedFrame, RendererStream
from avatar.stream_lab import (
    LatencyStats,
    chunk_size,
    chunks,
    envelope_dbfs,
    recorded_conversation,
    stream_recording,
)

RATE = 16000
FPS = 25
SPF = RATE // FPS  # 640 samples per frame


class FakeStream(RendererStream):
    """Frames numbered on one counter; the image's first pixel holds the jaw value * 100."""

    def __init__(self) -> None:
        self.index = 0
        self.resets = 0
        self.closed = False

    def push(self, motion: MotionTrack, audio: Audio | None = None) -> list[RenderedFrame]:
        out = []
        for row in motion.values:
            image = np.zeros((8, 8, 3), np.uint8)
            image[0, 0, 0] = int(round(100 * row[0]))
            out.append(RenderedFrame(image, self.index, self.index / FPS))
            self.index += 1
        return out

    def reset(self) -> None:
        self.resets += 1

    def close(self) -> None:
        self.closed = True


class FakeSession:
    """A session with one frame (40 ms) of look-ahead: frame k is made once audio up to the
    end of frame k + 1 is in; its jaw is the RMS of frame k's audio. ``flush`` makes the rest."""

    fps = FPS

    def __init__(self) -> None:
        self.stream: RendererStream = FakeStream()
        self.frame_index = 0
        self.reset_calls = 0
        self._audio = np.zeros(0, np.float32)
        self._made = 0  # frames of this utterance

    def _render(self, jaws: list[float]) -> list[RenderedFrame]:
        if not jaws:
            return []
        values = np.zeros((len(jaws), len(CHANNELS)), np.float32)
        values[:, CHANNELS.index("jaw_open")] = jaws
        values[:, CHANNELS.index("blink_l")] = 0.5  # behaviour goes on
        frames = self.stream.push(MotionTrack(values, CHANNELS, FPS))
        self.frame_index += len(frames)
        return frames

    def _jaw(self, k: int) -> float:
        piece = self._audio[k * SPF : (k + 1) * SPF]
        return float(np.sqrt(np.mean(piece**2))) if len(piece) else 0.0

    def push_audio(self, chunk: np.ndarray, sample_rate: int) -> list[RenderedFrame]:
        assert sample_rate == RATE
        self._audio = np.concatenate([self._audio, chunk])
        ready = max(len(self._audio) // SPF - 1, 0)
        jaws = [self._jaw(k) for k in range(self._made, ready)]
        self._made = max(self._made, ready)
        return self._render(jaws)

    def flush(self) -> list[RenderedFrame]:
        total = -(-len(self._audio) // SPF)
        jaws = [self._jaw(k) for k in range(self._made, total)]
        self.reset()
        return self._render(jaws)

    def reset(self) -> None:
        self.reset_calls += 1
        self._audio = np.zeros(0, np.float32)
        self._made = 0
        self.stream.reset()

    def idle(self, n_frames: int) -> list[RenderedFrame]:
        return self._render([0.0] * n_frames)


def clock(step: float):
    """A timer reading 0, step, 2 step, ...: every timed call takes exactly ``step``."""
    ticks = iter(range(10**9))
    return lambda: next(ticks) * step


def speech(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    return (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


# -- chunks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_chunks_are_exactly_20_ms_and_rebuild_the_recording(rate):
    samples = np.random.default_rng(0).normal(size=rate + 123).astype(np.float32)
    pieces = chunks(samples, rate)
    size = rate // 50
    assert chunk_size(rate) == size
    assert all(len(p) == size for p in pieces[:-1]) and 0 < len(pieces[-1]) <= size
    assert len(pieces) == -(-len(samples) // size)
    assert np.array_equal(np.concatenate(pieces), samples)


def test_a_rate_without_whole_20_ms_chunks_is_refused():
    with pytest.raises(ValueError, match="220.5 samples"):
        chunk_size(11025)
    assert chunk_size(11025, 0.04) == 441
    assert chunks(np.zeros(0, np.float32), RATE) == []


# -- statistics and levels --------------------------------------------------------------------


def test_latency_stats_are_numpy_percentiles():
    values = [0.10, 0.12, 0.11, 0.30, 0.13, 0.12, 0.14, 0.11, 0.10, 0.50]
    stats = LatencyStats.of(values)
    assert stats.n == 10
    assert stats.p50_s == pytest.approx(0.12)
    assert stats.p95_s == pytest.approx(0.41)  # between 0.30 and 0.50, linearly
    assert stats.mean_s == pytest.approx(0.173)
    assert stats.max_s == 0.50
    assert "p50 120.0 ms, p95 410.0 ms" in str(stats)
    empty = LatencyStats.of([])
    assert empty.n == 0 and np.isnan(empty.p50_s) and np.isnan(empty.p95_s)


def test_envelope_is_each_frames_level():
    samples = np.concatenate([np.full(SPF, 0.1), np.zeros(SPF), np.full(SPF // 2, 1.0)])
    level = envelope_dbfs(samples.astype(np.float32), RATE, FPS, 4)
    assert level.round(3).tolist() == [-20.0, -120.0, 0.0, -120.0]


def test_the_recording_is_found_in_site_packages_or_none():
    path = recorded_conversation()
    assert path is None or (path.name == "sample.wav" and path.is_file())


# -- the real-time schedule on a fake clock ---------------------------------------------------


def test_frames_latency_and_motion_on_a_fast_clock():
    session = FakeSession()
    stream = session.stream
    audio = speech(1.0)
    run = stream_recording(session, audio, RATE, tail_frames=3, timer=clock(0.001))

    assert session.stream is stream, "the tap is removed after the run"
    assert [p.kind for p in run.pushes] == ["audio"] * 50 + ["flush"] + ["idle"] * 3
    assert len(run.frames) == 25 + 3 and run.speech == [True] * 25 + [False] * 3
    assert [f.index for f in run.frames] == list(range(28))
    assert [f.timestamp for f in run.frames] == pytest.approx([k / FPS for k in range(28)])
    # frame k is made with chunk 2k + 3 (its audio and the next frame's are in): ready 1 ms
    # after that chunk arrived at 0.04 k + 0.08 s; the last one by the flush, which starts when
    # the last push is done (1.001 s) and takes 1 ms
    assert run.latency_s == pytest.approx([0.081] * 24 + [1.002 - 0.96])
    assert run.latency.p50_s == pytest.approx(0.081)
    assert run.compute.n == 50 and run.compute.p50_s == pytest.approx(0.001)
    assert run.compute_per_audio_s == pytest.approx(51 * 0.001 / 1.0)
    assert run.interruption is None
    # the tap kept the motion each frame was rendered from
    jaw = run.channel("jaw_open")
    assert jaw[:25] == pytest.approx(np.full(25, 0.3 / np.sqrt(2)), abs=1e-3)
    assert np.all(jaw[25:] == 0) and np.all(run.channel("blink_l") == 0.5)
    assert [f.image[0, 0, 0] for f in run.frames] == [round(100 * j) for j in jaw]
    assert run.images.shape == (28, 8, 8, 3)


def test_a_slow_session_queues_and_latency_grows():
    """30 ms of compute per 20 ms chunk: each push waits for the previous one."""
    run = stream_recording(FakeSession(), speech(1.0), RATE, timer=clock(0.03))
    audio = [p for p in run.pushes if p.kind == "audio"]
    assert [p.start_s for p in audio] == pytest.approx([0.02 + 0.03 * i for i in range(50)])
    assert [p.arrival_s for p in audio] == pytest.approx([0.02 * (i + 1) for i in range(50)])
    assert run.compute_per_audio_s > 1
    lat = run.latency_s[:24]
    assert all(b > a for a, b in zip(lat, lat[1:], strict=False)), "it falls further behind"
    # frame k: chunk 2k + 3 starts at 0.02 + 0.03 (2k + 3), done 30 ms later
    assert lat == pytest.approx([0.14 + 0.06 * k - 0.04 * k for k in range(24)])


def test_the_session_frame_counter_goes_on_across_runs():
    session = FakeSession()
    first = stream_recording(session, speech(0.4), RATE, timer=clock(0.001))
    second = stream_recording(session, speech(0.4), RATE, timer=clock(0.001))
    assert second.first_index == len(first.frames) == 10
    assert second.audio_start_s.tolist() == pytest.approx([k / FPS for k in range(10)])
    assert second.latency_s == first.latency_s


# -- the interruption ----------------------------------------------------------------------------


def test_an_interruption_stops_the_frames_and_closes_the_mouth():
    session = FakeSession()
    run = stream_recording(
        session, speech(1.0), RATE, interrupt_at=0.5, tail_frames=5, timer=clock(0.001)
    )
    cut = run.interruption
    assert cut is not None and cut.at_s == 0.5
    # chunk 24 completes at 0.5 s, with the interruption: it is dropped with the inbox
    assert cut.chunks_pushed == 24 and cut.dropped_frames == 0
    assert [p.kind for p in run.pushes] == ["audio"] * 24 + ["reset"] + ["idle"] * 5
    assert session.reset_calls == 1 and session.stream.resets == 1, "reset, not flushed"
    # frames whose audio and look-ahead were in before 0.5 s (0.04 k + 0.08 < 0.5), then idle
    assert run.speech == [True] * 11 + [False] * 5
    assert np.all(run.channel("jaw_open")[11:] == 0)
    assert cut.closed_index == 11
    # the reset (1 ms) and the first idle frame (1 ms)
    assert cut.reset_s == pytest.approx(0.001)
    assert cut.first_frame_s == pytest.approx(0.002) and cut.closed_s == pytest.approx(0.002)
    assert run.audio_s == 0.5


def test_an_interruption_drops_the_frames_of_a_call_in_flight_and_the_waiting_chunks():
    """30 ms per call: at 0.49 s chunk 15 is being pushed (0.47-0.50 s) and makes frame 6; its
    frames are dropped, chunks waiting behind it are never pushed, the reset waits for it."""
    run = stream_recording(
        FakeSession(), speech(1.0), RATE, interrupt_at=0.49, tail_frames=2, timer=clock(0.03)
    )
    cut = run.interruption
    assert cut.chunks_pushed == 16 and cut.dropped_frames == 1
    assert run.speech == [True] * 6 + [False] * 2
    reset = next(p for p in run.pushes if p.kind == "reset")
    assert reset.start_s == pytest.approx(0.50)
    assert cut.first_frame_s == pytest.approx(0.56 - 0.49) == cut.closed_s


def test_an_interruption_after_the_end_is_a_plain_end():
    run = stream_recording(FakeSession(), speech(0.4), RATE, interrupt_at=5.0, timer=clock(0.0))
    assert run.interruption is None and run.pushes[-1].kind == "flush" and len(run.frames) == 10
    with pytest.raises(ValueError, match="interrupt_at"):
        stream_recording(FakeSession(), speech(0.4), RATE, interrupt_at=-1)


def test_the_tap_is_removed_when_the_session_fails():
    class Broken(FakeSession):
        def push_audio(self, chunk, sample_rate):
            raise RuntimeError("model gone")

    session = Broken()
    stream = session.stream
    with pytest.raises(RuntimeError, match="model gone"):
        stream_recording(session, speech(0.1), RATE)
    assert session.stream is stream


def test_figures():
    pytest.importorskip("matplotlib")
    audio = speech(1.0)
    run = stream_recording(
        FakeSession(), audio, RATE, interrupt_at=0.6, tail_frames=4, timer=clock(0.001)
    )
    from avatar.stream_lab import latency_figure, mouth_figure

    lat = latency_figure(run)
    assert len(lat.axes) == 2
    assert any("p95" in t.get_text() for t in lat.axes[0].get_legend().get_texts())
    mouth = mouth_figure(run, audio, RATE)
    labels = [t.get_text() for t in mouth.axes[0].get_legend().get_texts()]
    assert labels == ["jaw_open", "lip_open", "interrupted"]
    # the red line stands at the first frame after the interruption, on the play-out timeline
    assert mouth.axes[0].lines[-1].get_xdata()[0] == pytest.approx(run.audio_start_s[13])
    assert run.speech == [True] * 13 + [False] * 4


# -- over the real session ------------------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline(render_config_overrides):
    """The default pipeline with a small untrained network for the checkpoint (as
    tests/avatar/test_streaming.py), at 128 px."""
    pytest.importorskip("torch")
    import torch
    from hydra.utils import instantiate

    from avatar.config import compose, pipeline_from_config
    from avatar.motion.learned import LearnedMotion

    torch.manual_seed(0)
    net = instantiate(compose("train", ["model=tiny", "data=synthetic", "~logger"]).model.net)
    cfg = compose("render", [*render_config_overrides, "renderer.size=128"])
    return pipeline_from_config(cfg, learned=lambda: LearnedMotion(net, streaming_runtime="torch"))


def test_the_real_session_streams_the_offline_motion_and_closes_on_interruption(pipeline):
    from avatar.audio import frame_count

    said = pipeline.speak("Hello there. How are you?")
    audio = Audio(said.audio, said.sample_rate)
    session = pipeline.session("default")
    run = stream_recording(session, audio.mono, audio.sample_rate)
    offline = pipeline.learned_motion(audio)
    assert len(run.frames) == len(offline) == frame_count(audio.duration, FPS)
    assert all(run.speech) and run.channels == CHANNELS
    np.testing.assert_allclose(run.values, offline.select(CHANNELS).values, atol=1e-4)
    assert all(x > 0 for x in run.latency_s)

    cut_at = audio.duration / 2
    cut = stream_recording(
        session, audio.mono, audio.sample_rate, interrupt_at=cut_at, tail_frames=4
    )
    assert cut.interruption.closed_index == sum(cut.speech) and not any(cut.speech[-4:])
    mouth = [CHANNELS.index(c) for c in ("jaw_open", "lip_open", "lip_round")]
    assert np.abs(cut.values[-4:, mouth]).max() < 0.01
    assert [f.image.shape for f in cut.frames[-4:]] == [(128, 128, 3)] * 4
    session.close()
