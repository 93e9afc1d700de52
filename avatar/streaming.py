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
        lookahead_s: audio after a frame that must be silent too before its mouth closes,
            seconds (at most the model's own look-ahead, which it waits for anyway).
    """

    behaviour_seconds: float
    silence_db: float
    reference_dbfs: float
    hold_s: float
    ramp_s: float
    lookahead_s: float

    def __post_init__(self) -> None:
        if (
            not self.behaviour_seconds > 0
            or self.hold_s < 0
            or self.ramp_s < 0
            or self.lookahead_s < 0
        ):
            raise ConfigValueError(
                "streaming: need behaviour_seconds > 0 and hold_s, ramp_s, lookahead_s >= 0, "
                f"got {self.behaviour_seconds}, {self.hold_s}, {self.ramp_s}, {self.lookahead_s}"
            )


@dataclass
class MouthGate:
    """Closes the mouth in silence, frame by frame (causal, stateful).

    A frame is quiet when its audio and the look-ahead after it (``StreamingSettings.lookahead_s``)
    stay ``silence_db`` below ``reference_dbfs``; after quiet frames lasting longer than
    ``hold_s`` the gate falls to 0 over ``ramp_s``, and it rises again as soon as sound is
    within the look-ahead, so closures never cut into speech and the mouth opens just before
    the sound.
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

    def _quiet(self, audio: np.ndarray) -> bool:
        rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
        return 20.0 * np.log10(max(rms, 1e-9)) < self.reference_dbfs + self.silence_db

    def __call__(self, frame_audio: np.ndarray, ahead: np.ndarray | None = None) -> float:
        """Gate in [0, 1] for one frame's (S,) float32 audio and the (L,) audio after it."""
        quiet = self._quiet(frame_audio) and (ahead is None or self._quiet(ahead))
        self.quiet_frames = self.quiet_frames + 1 if quiet else 0
        step = 1.0 / max(self.ramp_s * self.fps, 1.0)
        if not quiet:
            self.value = 1.0
        elif self.quiet_frames > self.hold_s * self.fps:
            self.value = max(self.value - step, 0.0)
        return self.value


def lookahead_samples(settings: StreamingSettings, learned: Any) -> int:
    """The gate's look-ahead in model samples; refused when the model would not wait for it."""
    latency = float(getattr(learned, "latency_s", 0.0))
    if settings.lookahead_s > latency + 1e-9:
        raise ConfigValueError(
            f"streaming.lookahead_s {settings.lookahead_s} s is more than the model's own "
            f"look-ahead ({latency:.3f} s); a frame cannot wait for audio that late"
        )
    return int(round(settings.lookahead_s * learned.sample_rate))


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
        listener: listening behaviour applied to every rendered batch (an object with
            ``apply(rows (T, C), speaking: bool) -> (T, C)``, such as
            :class:`~avatar.motion.live_listening.LiveListener`), or None.
    """

    def __init__(
        self,
        *,
        stream: RendererStream,
        learned: Any,
        behaviour: MotionTrack,
        settings: StreamingSettings,
        listener: Any = None,
    ) -> None:
        self.stream = stream
        self.listener = listener
        self.learned = learned
        self.behaviour = behaviour.select(CHANNELS)
        self.fps = behaviour.fps
        self.settings = settings
        self.frame_index = 0
        self._spf = int(round(learned.sample_rate / self.fps))  # model samples per frame
        self._ahead = lookahead_samples(settings, learned)
        self._model_ahead = int(round(float(learned.latency_s) * learned.sample_rate))
        self.reset()

    def reset(self) -> None:
        """Forget pending audio (an interruption): the next push starts a new utterance."""
        self._model_stream = self.learned.stream()
        self._held = np.zeros(0, np.float32)  # model-rate audio not yet given to the model
        self._model_samples = 0  # given to the model
        self._model_frames = 0  # frames it returned
        self._resampler: StreamResampler | None = None
        self._audio = np.zeros(0, np.float32)  # model-rate audio not yet matched to frames
        self._gate = MouthGate.new(self.settings, self.fps)
        self.stream.reset()

    def _render(
        self, rows: list[np.ndarray], audio: np.ndarray, *, speaking: bool
    ) -> list[RenderedFrame]:
        if not rows:
            return []
        values = np.stack(rows)
        if self.listener is not None:
            values = self.listener.apply(values, speaking)
        chunk = MotionTrack(values, CHANNELS, self.fps)
        frames = self.stream.push(chunk, Audio(audio, self.learned.sample_rate))
        self.frame_index += len(frames)
        return frames

    def _frames(self, mouths: list[np.ndarray]) -> list[RenderedFrame]:
        rows, spent = [], []
        for k, mouth in enumerate(mouths):
            frame_audio, self._audio = self._audio[: self._spf], self._audio[self._spf :]
            gate = self._gate(frame_audio, self._audio[: self._ahead])
            rows.append(compose_row(self.behaviour, self.frame_index + k, mouth, gate))
            spent.append(np.pad(frame_audio, (0, self._spf - len(frame_audio))))
        audio = np.concatenate(spent) if spent else np.zeros(0, np.float32)
        return self._render(rows, audio, speaking=True)

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
        """Keep ``audio`` (model rate); run the model only once it completes a frame.

        A model call costs about the same for 20 or 40 ms of audio, and a frame is emitted only
        when its audio and the look-ahead are in, so audio that completes no frame waits for the
        next chunk: half the calls at 20 ms chunks, the same frames at the same moments.
        """
        self._audio = np.concatenate([self._audio, audio])
        self._held = np.concatenate([self._held, audio])
        need = (self._model_frames + 1) * self._spf + self._model_ahead
        if self._model_samples + len(self._held) < need:
            return []
        return self._frames(self._push_model())

    def _push_model(self) -> list[np.ndarray]:
        held, self._held = self._held, np.zeros(0, np.float32)
        self._model_samples += len(held)
        mouths = self._model_stream.push(held) if len(held) else []
        self._model_frames += len(mouths)
        return mouths

    def flush(self) -> list[RenderedFrame]:
        """End of the utterance: emit the frames still waiting for look-ahead audio."""
        frames = self._model_audio(self._resampler.flush()) if self._resampler else []
        frames += self._frames(self._push_model())
        frames += self._frames(self._model_stream.flush())
        self.reset()
        return frames

    def idle(self, n_frames: int) -> list[RenderedFrame]:
        """``n_frames`` of silence (listening or idle: mouth closed, behaviour going on)."""
        zero = np.zeros(len(MOUTH_CHANNELS), np.float32)
        rows = [
            compose_row(self.behaviour, self.frame_index + k, zero, 0.0) for k in range(n_frames)
        ]
        return self._render(rows, np.zeros(n_frames * self._spf, np.float32), speaking=False)

    def close(self) -> None:
        """End the session: the renderer stream releases what it holds."""
        self.stream.close()


def learned_loader(*, ckpt_path: str, streaming_runtime: str) -> Callable[[], object]:
    """A loader for the audio-to-motion checkpoint that imports torch only when called
    (``streaming_runtime``: see :class:`~avatar.motion.learned.LearnedMotion`)."""

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
        return LearnedMotion.load(ckpt_path, streaming_runtime=streaming_runtime)

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
    ahead = lookahead_samples(settings, learned)
    gate = MouthGate.new(settings, behaviour.fps)
    values = np.zeros((n_frames, len(behaviour.channels)), np.float32)
    for k in range(n_frames):
        mouth = mouths[k] if k < len(mouths) else np.zeros(len(MOUTH_CHANNELS), np.float32)
        end = (k + 1) * spf
        level = gate(model_audio[k * spf : end], model_audio[end : end + ahead])
        values[k] = compose_row(behaviour, k, mouth, level)
    return MotionTrack(values, behaviour.channels, behaviour.fps)
