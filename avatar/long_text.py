"""Long texts in segments: split into groups of whole sentences, each spoken, moved, rendered
and encoded in turn into one open MP4, so memory is bounded by a segment, not the text, and
the first frame comes as soon as the first segment is spoken.

A text that fits one segment is not handled here: :meth:`avatar.pipeline.Pipeline.render_text`
speaks it in one call, exactly as before. Longer texts:

- **Segments** (:func:`avatar.speech.segments.split_segments`): whole sentences up to
  ``segment_chars`` characters (the first up to ``first_segment_chars``, so the first frame
  comes sooner); a sentence longer than that is cut at clause punctuation, else between
  words. Inline emotion tags go with the segment of the word they precede.
- **Audio and video stay in sync** (:func:`pad_to_frames`): each segment's audio is padded with
  silence (less than a frame) so that the audio written so far always ends exactly where the
  frames written so far end: ``round(frames * sample_rate / fps)`` samples, the remainder
  carried, never drifting however many segments there are. The pad falls in the pause after
  the segment, where the mouth is closed.
- **Motion continues** across boundaries
  (:meth:`avatar.motion.generate.MotionGenerator.continue_from`): the mood (tags included)
  holds on, blinks and glances finish, head pose and expression blend in over ``blend_s``.
- **Loudness**: every segment is normalised by the voice to the same target level of its
  active speech (``target_dbfs``), the normalisation a one-call text gets over the whole of it;
  the gain can change only at a boundary, which is a pause.
- **Determinism**: segment k's motion seed is derived from ``motion.seed`` and k.
- The next segment is spoken and moved on a worker thread while this one renders (one ahead).
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from avatar.audio import Audio
from avatar.cancel import CancelToken
from avatar.cancel import check as check_cancel
from avatar.companion import CompanionSpec
from avatar.errors import AvatarError, ConfigValueError, TextInputError
from avatar.media import Mp4Sink, open_mp4
from avatar.motion.carry import MotionCarry
from avatar.motion.emotion import EmotionEvent, tag_events
from avatar.motion.track import MotionTrack
from avatar.render_ahead import Progress, encode_frames
from avatar.render_result import RenderResult
from avatar.speech.segments import Segment, split_segments
from avatar.speech.timeline import SILENCE, Phone, PhonemeTimeline
from avatar.speech.tts import Speech

if TYPE_CHECKING:
    from avatar.pipeline import Pipeline

log = logging.getLogger(__name__)

__all__ = [
    "LongTextSettings",
    "pad_to_frames",
    "plan_segments",
    "render_segments",
    "segment_seed",
]


@dataclass(frozen=True)
class LongTextSettings:
    """How long texts are rendered (config node ``long_text``; the defaults live there).

    Attributes:
        max_text_chars: longest text ``render_text`` accepts, characters (tags removed).
        segment_chars: longest segment, characters; a text that fits one is spoken in one
            call, as before (also capped by the voice's own ``max_chars``).
        first_segment_chars: longest first segment, characters (<= ``segment_chars``).
        blend_s: seconds over which a segment's head pose and expression blend in from the
            previous segment's end.
    """

    max_text_chars: int
    segment_chars: int
    first_segment_chars: int
    blend_s: float

    def __post_init__(self) -> None:
        for key in ("max_text_chars", "segment_chars", "first_segment_chars"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigValueError(f"long_text.{key} must be a positive integer, got {value!r}")
        if self.first_segment_chars > self.segment_chars:
            raise ConfigValueError(
                f"long_text.first_segment_chars ({self.first_segment_chars}) must be at most "
                f"long_text.segment_chars ({self.segment_chars})"
            )
        if not 0.0 <= self.blend_s <= 10.0:
            raise ConfigValueError(f"long_text.blend_s must be in [0, 10] s, got {self.blend_s}")


def plan_segments(
    text: str,
    tags: list[tuple[int, str, float]],
    settings: LongTextSettings,
    *,
    voice_max_chars: int | None,
) -> list[Segment] | None:
    """The segments of ``text``, or None when it fits one (it is spoken in one call).

    Raises:
        TextInputError: ``text`` is over ``long_text.max_text_chars`` (checked first), or
            :func:`split_segments` refuses it.
    """
    n = len(text.strip())
    if n > settings.max_text_chars:
        raise TextInputError(
            f"text is {n} characters, over the limit of {settings.max_text_chars} "
            "(config key long_text.max_text_chars); split it or raise the limit"
        )
    limit = min(settings.segment_chars, voice_max_chars or settings.segment_chars)
    if n <= limit:
        return None
    first = min(settings.first_segment_chars, limit)
    return split_segments(text.strip(), tags, first_chars=first, chars=limit)


def pad_to_frames(
    speech: Speech, *, samples_before: int, frames_before: int, fps: float
) -> tuple[Speech, int]:
    """``speech`` with silence appended so that audio and video end together after it.

    Before it, ``samples_before`` samples and ``frames_before`` frames were written, with
    ``samples_before == round(frames_before * sample_rate / fps)``; after it the same holds
    again (fps as the MP4 writer takes it: a fraction with denominator <= 1001), so the
    remainder is carried and nothing drifts over any number of segments.

    Returns:
        ``(padded, n_frames)``: the speech, padded by less than one frame (its timeline ends
        in silence over the pad), and its frame count.

    >>> tl = PhonemeTimeline.from_durations(["_", "a"], [0.5, 0.51])
    >>> padded, n = pad_to_frames(Speech(np.ones(24240, np.float32), 24000, tl, "a"),
    ...                           samples_before=0, frames_before=0, fps=25)
    >>> n, len(padded.audio), padded.timeline.phones[-1].phoneme, padded.timeline.duration
    (26, 24960, '_', 1.04)
    """
    rate, sr = Fraction(fps).limit_denominator(1001), speech.sample_rate
    end = samples_before + len(speech.audio)
    frames_after = math.ceil(Fraction(end) * rate / sr)
    pad = round(Fraction(frames_after * sr) / rate) - end
    n_frames = frames_after - frames_before
    if pad <= 0:
        return speech, n_frames
    audio = np.concatenate([speech.audio, np.zeros(pad, np.float32)])
    tl, duration = speech.timeline, len(audio) / sr
    phones = list(tl.phones)
    if phones and phones[-1].phoneme == SILENCE:
        phones[-1] = Phone(SILENCE, phones[-1].start, duration)
    else:
        phones.append(Phone(SILENCE, tl.duration, duration))
    timeline = PhonemeTimeline(phones, list(tl.words), duration, tl.alphabet, tl.source)
    return Speech(audio, sr, timeline, speech.text), n_frames


def segment_seed(seed: int, index: int) -> int:
    """Motion seed of segment ``index``: ``seed`` for the first, derived from both after.

    >>> segment_seed(3, 0), segment_seed(3, 1) == segment_seed(3, 1) != segment_seed(4, 1)
    (3, True)
    """
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence((int(seed), int(index))).generate_state(1)[0])


@dataclass
class _Part:
    """A segment ready to render: speech padded to whole frames, its motion and where it ends."""

    speech: Speech
    motion: MotionTrack
    carry: MotionCarry
    samples: int  # audio samples written once this part is (all parts so far)
    frames: int  # video frames likewise
    tts_s: float
    motion_s: float


def _prepare(
    pipeline: Pipeline,
    voice_name: str | None,
    segments: list[Segment],
    index: int,
    previous: _Part | None,
    mood: EmotionEvent | None,
    cancel: CancelToken | None,
) -> _Part:
    """Speak and move segment ``index`` (continuing from ``previous``); errors name it."""
    segment = segments[index]
    try:
        check_cancel(cancel)
        t0 = time.perf_counter()
        speech = pipeline.voices.get(voice_name).synthesize(segment.text)
        t1 = time.perf_counter()
        check_cancel(cancel)
        samples, frames = (0, 0) if previous is None else (previous.samples, previous.frames)
        generator = pipeline.motion
        speech, n = pad_to_frames(
            speech, samples_before=samples, frames_before=frames, fps=generator.fps
        )
        events = [mood] if mood is not None and index == 0 else []
        events += tag_events(segment.tags, speech.timeline, len(segment.text.split()))
        motion, carry = generator.continue_from(
            None if previous is None else previous.carry,
            speech.timeline,
            speech.audio,
            speech.sample_rate,
            n,
            blend_s=pipeline.long_text.blend_s,
            emotions=events,
            seed=segment_seed(generator.seed, index),
        )
    except AvatarError as exc:
        try:
            located = type(exc)(f"{segment.where(len(segments))}: {exc}")
        except TypeError:  # an error class with another signature: keep it, add a note
            exc.add_note(f"while rendering {segment.where(len(segments))}")
            raise
        raise located from exc
    end = (samples + len(speech.audio), frames + n)
    return _Part(speech, motion, carry, *end, t1 - t0, time.perf_counter() - t1)


def render_segments(
    pipeline: Pipeline,
    companion: CompanionSpec,
    segments: list[Segment],
    out: Path | Mp4Sink,
    *,
    mood: EmotionEvent | None,
    started: float,
    cancel: CancelToken | None,
    progress: Progress | None = None,
) -> RenderResult:
    """Render ``companion`` saying ``segments`` in turn into one MP4 (see the module).

    Args:
        pipeline: the pipeline whose stages are used.
        companion: the companion (its voice speaks).
        segments: from :func:`plan_segments`.
        out: a checked MP4 path or a sink.
        mood: an emotion set from the start (``render_text``'s ``emotion``), or None.
        started: ``time.perf_counter()`` when the request started (for ``first_frame``).
        cancel: checked before every frame; a cancelled render writes nothing.
        progress: ``progress(frames written, frames in all)`` after each frame; the total is
            None until the last segment is spoken.

    Returns:
        The result; its ``speech`` is None (the audio is in the MP4 only, to bound memory),
        its ``motion`` the whole track (about 3 kB per second of video).
    """
    timings = {"tts": 0.0, "motion": 0.0, "render": 0.0, "encode": 0.0}
    log.info("long text: %d segments, spoken and rendered one by one", len(segments))
    pool = ThreadPoolExecutor(1, thread_name_prefix="long-text")
    tracks: list[MotionTrack] = []
    try:  # the first segment is spoken while the companion is resolved
        first = pool.submit(_prepare, pipeline, companion.voice, segments, 0, None, mood, cancel)
        t0 = time.perf_counter()
        resolved = pipeline.resolve(companion, cancel=cancel)
        timings["identity"] = time.perf_counter() - t0
        part = first.result()
        size, sr = resolved.prepared.size, part.speech.sample_rate
        writer = open_mp4(
            out, fps=part.motion.fps, size=(size, size), sample_rate=sr, encoder=pipeline.encoder
        )
        with writer:
            for index in range(len(segments)):
                timings["tts"] += part.tts_s
                timings["motion"] += part.motion_s
                upcoming: Future[_Part] | None = None
                if index + 1 < len(segments):
                    args = (pipeline, companion.voice, segments, index + 1, part, None, cancel)
                    upcoming = pool.submit(_prepare, *args)
                t = time.perf_counter()
                writer.write_audio(part.speech.audio)
                timings["encode"] += time.perf_counter() - t
                voice = Audio(part.speech.audio, sr)
                frames = pipeline.render_ahead(resolved.prepared, part.motion, voice, cancel=cancel)
                counted = None
                if progress is not None:
                    total = part.frames if upcoming is None else None
                    done = part.frames - len(part.motion)  # frames of the segments before

                    def counted(k: int, done: int = done, total: int | None = total) -> None:
                        progress(done + k, total)

                first, encode_s = encode_frames(writer, frames, cancel, counted)
                if first is not None:
                    timings.setdefault("first_frame", first - started)
                timings["encode"] += encode_s
                timings["render"] += frames.busy_s
                tracks.append(part.motion)
                if upcoming is not None:
                    part = upcoming.result()
            t = time.perf_counter()
        timings["encode"] += time.perf_counter() - t
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    timings["total"] = time.perf_counter() - started
    motion = MotionTrack.concatenate(tracks)
    seconds = part.samples / sr
    log.info("wrote %s: %d frames, %.2f s of audio", out, len(motion), seconds)
    path = out if isinstance(out, Path) else None
    starts = np.cumsum([len(t) for t in tracks[:-1]]).tolist()
    n, fps = len(motion), motion.fps
    return RenderResult(
        path, n, fps, seconds, timings, resolved.identity, motion, None, [int(k) for k in starts]
    )
