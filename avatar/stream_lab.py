"""A real-time session fed from a recording, measured: the helpers of ``notebooks/05-real-time``.

:func:`stream_recording` feeds a recording to a :class:`~avatar.streaming.StreamingSession` in
20 ms chunks *as if they arrived in real time* and times every session call, the way
``benchmarks/bench_streaming.py`` does: chunk i is complete at ``(i + 1) * 20 ms``; a call
starts when its chunk is in and the previous call is done, and takes what the wall clock says.
A speech frame's latency runs from the start of its audio (frame k: ``k / fps``) to the end of
the call that made it, so it holds the frame's own 40 ms, the model's look-ahead, the chunking
and the compute (no sleeping: a 10 s recording takes only its compute time).

With ``interrupt_at`` the recording is cut there, as the LiveKit generator's ``clear_buffer``
cuts an utterance: chunks not yet taken by the session are dropped (with the generator's inbox),
so are the frames of a call still running at that moment; the session is reset and idle frames
follow, one per frame period. The run records when the first frame with the mouth closed was
ready (:class:`Interruption`).

A :class:`MotionTap` between the session and its renderer stream keeps the channel values of
every rendered frame, so the mouth can be plotted against the audio (:func:`mouth_figure`).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avatar.audio import Audio
from avatar.motion.track import CHANNELS, MOUTH_CHANNELS, MotionTrack
from avatar.renderers.base import RenderedFrame, RendererStream

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from avatar.streaming import StreamingSession

__all__ = ["CHUNK_S", "Interruption", "LatencyStats", "MotionTap", "Push", "StreamRun"]
__all__ += ["chunk_size", "chunks", "envelope_dbfs", "latency_figure", "mouth_figure"]
__all__ += ["recorded_conversation", "stream_recording"]

CHUNK_S = 0.02
"""A voice agent's TTS frames and the benchmarks' chunks: 20 ms."""

CLOSED_BELOW = 0.01
"""A frame's mouth is closed when every mouth channel is below this in absolute value."""


def chunk_size(sample_rate: int, chunk_s: float = CHUNK_S) -> int:
    """Samples in one chunk of ``chunk_s`` seconds at ``sample_rate`` Hz; a rate at which the
    chunk is not a whole number of samples is refused (ValueError).

    >>> chunk_size(16000), chunk_size(24000), chunk_size(44100)
    (320, 480, 882)
    """
    exact = sample_rate * chunk_s
    size = int(round(exact))
    if size <= 0 or abs(exact - size) > 1e-6:
        raise ValueError(
            f"{chunk_s * 1000:g} ms at {sample_rate} Hz is {exact:g} samples, not a whole number"
        )
    return size


def chunks(samples: np.ndarray, sample_rate: int, chunk_s: float = CHUNK_S) -> list[np.ndarray]:
    """``samples`` cut into chunks of exactly ``chunk_s`` seconds (views, in order); only the last
    one may be shorter (the recording's tail).

    >>> [len(c) for c in chunks(np.zeros(700), 16000)]
    [320, 320, 60]
    """
    size = chunk_size(sample_rate, chunk_s)
    return [samples[i : i + size] for i in range(0, len(samples), size)]


def recorded_conversation() -> Path | None:
    """The recorded telephone conversation the pyannote.audio wheel ships (``sample.wav``:
    30 s, 16 kHz, two speakers; installed by ``make install`` for its files only), or None."""
    spec = importlib.util.find_spec("pyannote")
    if not spec or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "audio" / "sample" / "sample.wav"
    return path if path.is_file() else None


def envelope_dbfs(samples: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """(n_frames,) RMS level in dBFS of each frame's audio (frame k: ``[k, k + 1) / fps`` s;
    -120 where there is none).

    >>> envelope_dbfs(np.full(640, 0.1, np.float32), 16000, 25, 2).round(1).tolist()
    [-20.0, -120.0]
    """
    out = np.full(n_frames, -120.0)
    for k in range(n_frames):
        a, b = int(round(k * sample_rate / fps)), int(round((k + 1) * sample_rate / fps))
        piece = np.asarray(samples[a:b], np.float64)
        if len(piece):
            rms = float(np.sqrt(np.mean(piece**2)))
            out[k] = max(20.0 * np.log10(max(rms, 1e-12)), -120.0)
    return out


class MotionTap(RendererStream):
    """A renderer stream that passes everything to ``inner`` and keeps each frame's channel
    values (the motion the session composed, listener included), by frame index.

    Args:
        inner: the session's renderer stream.
    """

    def __init__(self, inner: RendererStream) -> None:
        self.inner = inner
        self.rows: dict[int, np.ndarray] = {}
        self.channels: tuple[str, ...] = CHANNELS

    def push(self, motion: MotionTrack, audio: Audio | None = None) -> list[RenderedFrame]:
        frames = self.inner.push(motion, audio)
        self.channels = motion.channels
        for frame, row in zip(frames, motion.values, strict=True):
            self.rows[frame.index] = np.array(row, np.float32)
        return frames

    def reset(self) -> None:
        self.inner.reset()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # anything else a stream has: the inner one's
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


@dataclass(frozen=True)
class Push:
    """One timed session call.

    Attributes:
        kind: ``audio`` (a chunk), ``flush`` (end of the recording), ``reset`` (the
            interruption) or ``idle`` (one idle frame).
        arrival_s: when its input was there (chunk complete, interruption, idle frame due), s.
        start_s: when it started (its arrival, or the end of the previous call), s.
        compute_s: how long it took on the wall clock, s.
        n_frames: frames it returned.
    """

    kind: str
    arrival_s: float
    start_s: float
    compute_s: float
    n_frames: int

    @property
    def done_s(self) -> float:
        """When its frames were ready, s."""
        return self.start_s + self.compute_s


@dataclass(frozen=True)
class LatencyStats:
    """Percentiles of latencies, seconds (NaN when there are none)."""

    n: int
    p50_s: float
    p95_s: float
    mean_s: float
    max_s: float

    @classmethod
    def of(cls, values: Sequence[float]) -> LatencyStats:
        """``np.percentile``'s p50 and p95 (linear interpolation, as the benchmarks report).

        >>> LatencyStats.of([0.1, 0.2, 0.3, 0.4, 0.5]).p50_s
        0.3
        """
        if not len(values):
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        v = np.asarray(values, np.float64)
        p50, p95 = np.percentile(v, [50, 95])
        return cls(len(v), float(p50), float(p95), float(v.mean()), float(v.max()))

    def __str__(self) -> str:
        ms = [1000 * x for x in (self.p50_s, self.p95_s, self.mean_s, self.max_s)]
        return "{} frames: p50 {:.1f} ms, p95 {:.1f} ms, mean {:.1f} ms, max {:.1f} ms".format(
            self.n, *ms
        )


@dataclass(frozen=True)
class Interruption:
    """What an interruption did.

    Attributes:
        at_s: when it came (seconds of the recording).
        chunks_pushed: chunks pushed before it.
        dropped_frames: speech frames of a call still running at ``at_s``, dropped.
        reset_s: compute time of the session's reset, s.
        first_frame_s: from ``at_s`` to the first frame after it being ready, s.
        closed_s: from ``at_s`` to the first frame after it with the mouth closed being
            ready, s (NaN: none in the run).
        closed_index: that frame's index in :attr:`StreamRun.frames` (-1: none).
    """

    at_s: float
    chunks_pushed: int
    dropped_frames: int
    reset_s: float
    first_frame_s: float
    closed_s: float
    closed_index: int


@dataclass
class StreamRun:
    """Frames of one recording through a session, with their timing and motion.

    Attributes:
        frames: rendered frames in order (timestamps ``index / fps`` of the session's counter).
        ready_s: when each frame was ready, seconds from the recording's first sample.
        speech: per frame, True for a frame of the recording, False for an idle one.
        values: (len(frames), C) channel values each frame was rendered from.
        channels: the C channel names.
        pushes: every timed session call, in order.
        fps: the session's frame rate.
        first_index: the session's frame counter at the recording's first frame.
        chunk_s: seconds per chunk.
        audio_s: seconds of the recording fed (up to the interruption).
        interruption: what the interruption did, or None.
    """

    frames: list[RenderedFrame]
    ready_s: list[float]
    speech: list[bool]
    values: np.ndarray
    channels: tuple[str, ...]
    pushes: list[Push]
    fps: float
    first_index: int
    chunk_s: float
    audio_s: float
    interruption: Interruption | None = None
    _motion: MotionTrack | None = field(default=None, repr=False)

    @property
    def audio_start_s(self) -> np.ndarray:
        """Per frame, the start of its audio (frame k of the run: ``k / fps``), seconds."""
        return np.array([(f.index - self.first_index) / self.fps for f in self.frames])

    @property
    def latency_s(self) -> list[float]:
        """Latency of each speech frame: ready time minus the start of its audio, seconds."""
        starts = self.audio_start_s
        return [r - s for r, s, sp in zip(self.ready_s, starts, self.speech, strict=True) if sp]

    @property
    def latency(self) -> LatencyStats:
        return LatencyStats.of(self.latency_s)

    @property
    def compute(self) -> LatencyStats:
        """Compute time per chunk push (``audio`` calls), as latency statistics."""
        return LatencyStats.of([p.compute_s for p in self.pushes if p.kind == "audio"])

    @property
    def compute_per_audio_s(self) -> float:
        """Seconds of compute per second of audio (chunk pushes and the flush): above 1 the
        session cannot keep up, and every later frame waits longer (the latency grows)."""
        spent = sum(p.compute_s for p in self.pushes if p.kind in ("audio", "flush"))
        return spent / self.audio_s if self.audio_s > 0 else float("nan")

    @property
    def motion(self) -> MotionTrack:
        """The frames' channel values as a track."""
        if self._motion is None:
            self._motion = MotionTrack(self.values, self.channels, self.fps)
        return self._motion

    def channel(self, name: str) -> np.ndarray:
        """(len(frames),) values of one channel."""
        return self.motion[name]

    @property
    def images(self) -> np.ndarray:
        """(T, S, S, 3) uint8: the frames' images."""
        return np.stack([f.image for f in self.frames])


def _reset(session: StreamingSession) -> list[RenderedFrame]:
    session.reset()
    return []


def _mouth_closed(row: np.ndarray, channels: Sequence[str], below: float) -> bool:
    cols = [channels.index(c) for c in MOUTH_CHANNELS if c in channels]
    return bool(np.all(np.abs(row[cols]) < below))


def stream_recording(
    session: StreamingSession,
    samples: np.ndarray,
    sample_rate: int,
    *,
    chunk_s: float = CHUNK_S,
    interrupt_at: float | None = None,
    tail_frames: int = 0,
    closed_below: float = CLOSED_BELOW,
    timer: Callable[[], float] = time.perf_counter,
) -> StreamRun:
    """Feed ``samples`` to ``session`` in ``chunk_s`` chunks as if in real time (module docstring).

    Args:
        session: a streaming session (its frame counter goes on from where it is).
        samples: (S,) float32 mono speech at ``sample_rate``.
        chunk_s: seconds per chunk (``chunk_s * sample_rate`` a whole number).
        interrupt_at: seconds into the recording at which it is cut (None: it plays to the end
            and the session is flushed).
        tail_frames: idle frames after the end or the interruption, one per frame period.
        closed_below: the mouth is closed when every mouth channel is below this.
        timer: the clock the calls are timed on (monotonic seconds).
    """
    if interrupt_at is not None and interrupt_at < 0:
        raise ValueError(f"interrupt_at must be >= 0 seconds, got {interrupt_at}")
    pieces = chunks(np.asarray(samples, np.float32), sample_rate, chunk_s)
    total_s = len(samples) / sample_rate
    fps = float(session.fps)
    first_index = session.frame_index
    tap = MotionTap(session.stream)
    session.stream = tap
    pushes: list[Push] = []
    made: list[tuple[RenderedFrame, float, bool]] = []  # frame, ready, speech
    busy = 0.0

    def call(kind: str, arrival: float, fn: Callable[[], list[RenderedFrame]]) -> Push:
        nonlocal busy
        start = max(arrival, busy)
        t0 = timer()
        frames = fn()
        push = Push(kind, arrival, start, timer() - t0, len(frames))
        busy = push.done_s
        pushes.append(push)
        made.extend((f, push.done_s, kind in ("audio", "flush")) for f in frames)
        return push

    try:
        pushed, end = 0, total_s
        for i, piece in enumerate(pieces):
            arrival = min((i + 1) * len(pieces[0]), len(samples)) / sample_rate
            if interrupt_at is not None and max(arrival, busy) >= interrupt_at:
                break  # not taken before the interruption: cleared with the generator's inbox
            call("audio", arrival, lambda p=piece: session.push_audio(p, sample_rate))
            pushed += 1
        interruption = None
        if interrupt_at is None or (pushed == len(pieces) and interrupt_at >= total_s):
            call("flush", total_s, session.flush)
        else:
            end = interrupt_at
            late = [m for m in made if m[1] > interrupt_at]  # the call running then: dropped
            made = [m for m in made if m[1] <= interrupt_at]
            reset = call("reset", interrupt_at, lambda: _reset(session))
            interruption = (pushed, len(late), reset.compute_s)
        for j in range(tail_frames):
            call("idle", end + j / fps, lambda: session.idle(1))
    finally:
        session.stream = tap.inner
    frames = [m[0] for m in made]
    rows = [tap.rows[f.index] for f in frames]
    values = np.stack(rows) if rows else np.zeros((0, len(tap.channels)))
    run = StreamRun(
        frames=frames,
        ready_s=[m[1] for m in made],
        speech=[m[2] for m in made],
        values=values.astype(np.float32),
        channels=tap.channels,
        pushes=pushes,
        fps=fps,
        first_index=first_index,
        chunk_s=chunk_s,
        audio_s=min(total_s, end),
    )
    if interruption is not None:
        run.interruption = _interruption(run, interrupt_at, *interruption, closed_below)
    return run


def _interruption(
    run: StreamRun, at_s: float, pushed: int, dropped: int, reset_s: float, below: float
) -> Interruption:
    after = [k for k, r in enumerate(run.ready_s) if r > at_s]
    closed = [k for k in after if _mouth_closed(run.values[k], run.channels, below)]
    nan = float("nan")
    return Interruption(
        at_s=at_s,
        chunks_pushed=pushed,
        dropped_frames=dropped,
        reset_s=reset_s,
        first_frame_s=run.ready_s[after[0]] - at_s if after else nan,
        closed_s=run.ready_s[closed[0]] - at_s if closed else nan,
        closed_index=closed[0] if closed else -1,
    )


# -- figures (matplotlib outside pyplot: a notebook shows a Figure by ending a cell with it) ---


def _bins(values: np.ndarray, n: int = 40, min_width: float = 0.25) -> np.ndarray:
    """Histogram edges over ``values``: ``n`` bins, none narrower than ``min_width``."""
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    width = max((hi - lo) / n, min_width)
    return lo + width * np.arange(int(np.ceil((hi - lo) / width)) + 2)


def latency_figure(run: StreamRun, *, width: float = 10.0) -> Figure:
    """Histogram of the speech frames' latency with p50 and p95, and of the compute per push."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, 3.0), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[3, 2])
    lat = 1000 * np.asarray(run.latency_s)
    stats = run.latency
    left.hist(lat, bins=_bins(lat), color="tab:blue", alpha=0.8)
    for q, value, style in (("p50", stats.p50_s, "-"), ("p95", stats.p95_s, "--")):
        left.axvline(1000 * value, color="k", ls=style, lw=1, label=f"{q} {1000 * value:.1f} ms")
    left.set_xlabel("frame latency, ms (audio start -> frame ready)")
    left.set_ylabel("frames")
    left.legend()
    comp = 1000 * np.asarray([p.compute_s for p in run.pushes if p.kind == "audio"])
    right.hist(comp, bins=_bins(comp), color="tab:orange", alpha=0.8)
    right.axvline(1000 * run.chunk_s, color="k", ls=":", lw=1, label="chunk period")
    right.set_xlabel(f"compute per {1000 * run.chunk_s:g} ms push, ms")
    right.legend()
    return fig


def mouth_figure(
    run: StreamRun,
    samples: np.ndarray,
    sample_rate: int,
    *,
    channels: Sequence[str] = ("jaw_open", "lip_open"),
    width: float = 10.0,
) -> Figure:
    """The mouth channels of the streamed frames against the level of the audio each one
    carries (idle frames carry silence), on the play-out timeline: frame k at ``k / fps``, as a
    room plays it with its audio. An interruption is drawn where it cut the play-out: at the
    first frame made after it."""
    from matplotlib.figure import Figure

    t = run.audio_start_s
    level = envelope_dbfs(samples, sample_rate, run.fps, len(run.frames))
    level[~np.asarray(run.speech, bool)] = -120.0
    fig = Figure(figsize=(width, 3.2), layout="constrained")
    ax = fig.subplots()
    for name in channels:
        ax.plot(t, run.channel(name), label=name, lw=1.2)
    ax.set_xlabel("seconds (frame timestamp: the play-out timeline)")
    ax.set_ylabel("mouth channel")
    twin = ax.twinx()
    twin.fill_between(t, -80, np.maximum(level, -80), step="post", color="0.6", alpha=0.35)
    twin.set_ylim(-80, 0)
    twin.set_ylabel("audio, dBFS (grey)")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    cut = run.interruption
    if cut is not None and cut.closed_index >= 0:
        ax.axvline(t[cut.closed_index], color="tab:red", lw=1.5, label="interrupted")
    ax.legend(loc="upper right", fontsize=8)
    return fig
