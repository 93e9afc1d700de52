"""Speech audio -> motion -> frames, chunk by chunk: the real-time core (and its offline twin).

The mouth comes from the learned audio-to-motion model (:mod:`avatar.motion.learned`), gated
closed in silence; everything else (blinks, breathing, head sway, saccades, the mood) comes
from a behaviour track the :class:`~avatar.motion.generate.MotionGenerator` makes for
silence, looped. Frames come from the renderer's :class:`~avatar.renderers.base.RendererStream`.
:func:`learned_track` runs the same steps over a whole recording, so the streamed frames equal
the offline ones (up to the network's float rounding between chunked and whole-signal runs,
< 1e-5, which moves a few pixels by one level).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avatar.audio import Audio, StreamResampler, resample_stream
from avatar.errors import AudioFormatError, ConfigValueError, WeightsMissingError
from avatar.motion.generate import MotionGenerator
from avatar.motion.track import CHANNELS, MOUTH_CHANNELS, MotionTrack
from avatar.renderers.base import RenderedFrame, RendererStream
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline

log = logging.getLogger(__name__)

_MOUTH_COLUMNS = [CHANNELS.index(c) for c in MOUTH_CHANNELS]


@dataclass(frozen=True)
class StreamingSettings:
    """The learned-mouth path (config node ``streaming``; defaults live there).

    Attributes:
        behaviour_seconds: length of the looped non-verbal track, seconds.
        silence_db: audio this far below ``reference_dbfs`` is silence, dB.
        reference_dbfs: typical speech level of the incoming audio, dBFS.
        hold_s: silence this long closes the mouth, seconds.
        ramp_s: closing ramp, seconds.
    """

    behaviour_seconds: float
    silence_db: float
    reference_dbfs: float
    hold_s: float
    ramp_s: float

    def __post_init__(self) -> None:
        if not self.behaviour_seconds > 0 or self.hold_s < 0 or self.ramp_s < 0:
            raise ConfigValueError(
                "streaming: need behaviour_seconds > 0, hold_s >= 0 and ramp_s >= 0, got "
                f"{self.behaviour_seconds}, {self.hold_s}, {self.ramp_s}"
            )


@dataclass
class MouthGate:
    """Closes the mouth in silence, frame by frame (causal, stateful).

    A frame whose audio stays ``silence_db`` below ``reference_dbfs`` for longer than
    ``hold_s`` is silent; the gate then falls to 0 over ``ramp_s`` and rises again as soon as
    sound returns, so closures never cut into speech.
    """

    fps: float
    silence_db: float
    reference_dbfs: float
    hold_s: float
    ramp_s: float
    value: float = 1.0
    quiet_frames: int = 0

    @classmethod
    def new(cls, settings: StreamingSettings, fps: float) -> MouthGate:
        """A fresh (open) gate for frames at ``fps``."""
        return cls(
            fps=fps,
            silence_db=settings.silence_db,
            reference_dbfs=settings.reference_dbfs,
            hold_s=settings.hold_s,
            ramp_s=settings.ramp_s,
        )

    def __call__(self, frame_audio: np.ndarray) -> float:
        """Gate in [0, 1] for one frame's (S,) float32 audio."""
        rms = (
            float(np.sqrt(np.mean(np.square(frame_audio, dtype=np.float64))))
            if len(frame_audio)
            else 0.0
        )
        level = 20.0 * np.log10(max(rms, 1e-9))
        quiet = level < self.reference_dbfs + self.silence_db
        self.quiet_frames = self.quiet_frames + 1 if quiet else 0
        step = 1.0 / max(self.ramp_s * self.fps, 1.0)
        if not quiet:
            self.value = 1.0
        elif self.quiet_frames > self.hold_s * self.fps:
            self.value = max(self.value - step, 0.0)
        return self.value


def behaviour_track(motion: MotionGenerator, seconds: float) -> MotionTrack:
    """Non-verbal motion for ``seconds`` of silence (mouth channels all 0), to be looped."""
    n = int(round(seconds * motion.fps))
    timeline = PhonemeTimeline([Phone(SILENCE, 0.0, seconds)], duration=seconds)
    return motion.generate(timeline, np.zeros(int(seconds * 16000), np.float32), 16000, n)


def compose_row(behaviour: MotionTrack, index: int, mouth: np.ndarray, gate: float) -> np.ndarray:
    """(C,) float32 channel values of frame ``index``: looped behaviour plus the gated mouth.

    Args:
        behaviour: the looped track (its own channels, C of them).
        index: frame number from the start of the session.
        mouth: (7,) learned mouth channels (:data:`MOUTH_CHANNELS` order).
        gate: mouth gate in [0, 1].
    """
    row = behaviour.values[index % len(behaviour)].astype(np.float64)
    for name, value in zip(MOUTH_CHANNELS, np.clip(mouth, -1.0, 1.0), strict=True):
        if name in behaviour.channels:
            row[behaviour.index(name)] += gate * float(value)
    return row.astype(np.float32)


class StreamingSession:
    """A companion speaking in real time: push its audio, get frames with timestamps.

    Args:
        stream: the renderer's stream of the companion's prepared identity.
        learned: the audio-to-motion model (:class:`avatar.motion.learned.LearnedMotion`).
        behaviour: the looped non-verbal track (:func:`behaviour_track`).
        settings: the mouth gate's settings.
    """

    def __init__(
        self,
        *,
        stream: RendererStream,
        learned: Any,
        behaviour: MotionTrack,
        settings: StreamingSettings,
    ) -> None:
        self.stream = stream
        self.learned = learned
        self.behaviour = behaviour.select(CHANNELS)
        self.fps = behaviour.fps
        self.settings = settings
        self.frame_index = 0
        self._spf = int(round(learned.sample_rate / self.fps))  # model samples per frame
        self.reset()

    def reset(self) -> None:
        """Forget pending audio (an interruption): the next push starts a new utterance."""
        self._model_stream = self.learned.stream()
        self._resampler: StreamResampler | None = None
        self._audio = np.zeros(0, np.float32)  # model-rate audio not yet matched to frames
        self._gate = MouthGate.new(self.settings, self.fps)
        self.stream.reset()

    def _render(self, rows: list[np.ndarray], audio: np.ndarray) -> list[RenderedFrame]:
        if not rows:
            return []
        chunk = MotionTrack(np.stack(rows), CHANNELS, self.fps)
        frames = self.stream.push(chunk, Audio(audio, self.learned.sample_rate))
        self.frame_index += len(frames)
        return frames

    def _frames(self, mouths: list[np.ndarray]) -> list[RenderedFrame]:
        rows, spent = [], []
        for k, mouth in enumerate(mouths):
            frame_audio, self._audio = self._audio[: self._spf], self._audio[self._spf :]
            gate = self._gate(frame_audio)
            rows.append(compose_row(self.behaviour, self.frame_index + k, mouth, gate))
            spent.append(np.pad(frame_audio, (0, self._spf - len(frame_audio))))
        audio = np.concatenate(spent) if spent else np.zeros(0, np.float32)
        return self._render(rows, audio)

    def push_audio(self, chunk: np.ndarray, sample_rate: int) -> list[RenderedFrame]:
        """Feed (S,) float32 mono speech (20 ms chunks typical); returns the frames it completes.

        Audio at another rate than the model's goes through a stream resampler whose output
        does not depend on the chunking. All chunks of an utterance share one rate.
        """
        if self._resampler is None:
            self._resampler = StreamResampler(sample_rate, self.learned.sample_rate)
        elif self._resampler.src_rate != sample_rate:
            raise AudioFormatError(
                f"chunk at {sample_rate} Hz in an utterance at {self._resampler.src_rate} Hz"
            )
        return self._model_audio(self._resampler.push(chunk))

    def _model_audio(self, audio: np.ndarray) -> list[RenderedFrame]:
        self._audio = np.concatenate([self._audio, audio])
        return self._frames(self._model_stream.push(audio))

    def flush(self) -> list[RenderedFrame]:
        """End of the utterance: emit the frames still waiting for look-ahead audio."""
        frames = self._model_audio(self._resampler.flush()) if self._resampler else []
        frames += self._frames(self._model_stream.flush())
        self.reset()
        return frames

    def idle(self, n_frames: int) -> list[RenderedFrame]:
        """``n_frames`` of silence (listening or idle: mouth closed, behaviour going on)."""
        zero = np.zeros(len(MOUTH_CHANNELS), np.float32)
        rows = [
            compose_row(self.behaviour, self.frame_index + k, zero, 0.0) for k in range(n_frames)
        ]
        return self._render(rows, np.zeros(n_frames * self._spf, np.float32))

    def close(self) -> None:
        """End the session: the renderer stream releases what it holds."""
        self.stream.close()


def learned_loader(*, ckpt_path: str) -> Callable[[], object]:
    """A loader for the audio-to-motion checkpoint that imports torch only when called."""

    def load() -> object:
        if not Path(ckpt_path).is_file():
            raise WeightsMissingError(
                f"audio-to-motion checkpoint {ckpt_path} is missing: train it with "
                "`python -m avatar.train experiment=audio2motion` (config key `learned.ckpt_path`)"
            )
        try:
            from avatar.motion.learned import LearnedMotion
        except ImportError as e:
            raise WeightsMissingError(
                f"the learned mouth needs torch ({e}); install the project with `.[train]`"
            ) from None
        return LearnedMotion.load(ckpt_path)

    return load


def learned_track(
    learned: Any,
    behaviour: MotionTrack,
    settings: StreamingSettings,
    audio: np.ndarray,
    sample_rate: int,
    n_frames: int,
) -> MotionTrack:
    """The offline twin of :class:`StreamingSession`: the whole recording at once.

    Returns:
        A MotionTrack of ``n_frames`` frames (behaviour channels + gated learned mouth).
    """
    model_audio = resample_stream(np.asarray(audio, np.float32), sample_rate, learned.sample_rate)
    mouths = learned.predict(model_audio, learned.sample_rate)
    spf = int(round(learned.sample_rate / behaviour.fps))
    gate = MouthGate.new(settings, behaviour.fps)
    values = np.zeros((n_frames, len(behaviour.channels)), np.float32)
    for k in range(n_frames):
        mouth = mouths[k] if k < len(mouths) else np.zeros(len(MOUTH_CHANNELS), np.float32)
        values[k] = compose_row(behaviour, k, mouth, gate(model_audio[k * spf : (k + 1) * spf]))
    return MotionTrack(values, behaviour.channels, behaviour.fps)
