"""PhonemeTimeline: phonemes and words with start/end times in seconds, from TTS and aligners."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from avatar.errors import AvatarError

SILENCE = "_"
"""Phoneme symbol used for pauses and leading/trailing silence in every alphabet."""
SOURCES = ("", "alignment", "recognition", "recognition-fallback")
"""Values of :attr:`PhonemeTimeline.source`: how a timeline was made (see there)."""


@dataclass(frozen=True)
class Phone:
    """One phoneme occurrence; times in seconds from the start of the audio."""

    phoneme: str
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class WordSpan:
    """One word (as written) with its start and end in seconds."""

    word: str
    start: float
    end: float


@dataclass
class PhonemeTimeline:
    """Ordered, non-overlapping phones covering ``[0, duration]`` seconds.

    Attributes:
        phones: phones in time order; pauses use :data:`SILENCE`.
        words: word spans in time order (may be empty when unknown).
        duration: length of the audio the timeline describes, seconds.
        alphabet: phoneme alphabet of ``phones`` (``"misaki"`` for hibari, ``"arpabet"`` for
            pocketsphinx); :mod:`avatar.motion.visemes` maps each to visemes.
        source: how the phones were found, one of :data:`SOURCES`: ``""`` not stated (a
            voice's own timings), ``"alignment"`` forced alignment of a transcript,
            ``"recognition"`` phone recognition (no transcript), ``"recognition-fallback"``
            phone recognition because the transcript did not fit the audio. Not compared by
            ``==``, and in :meth:`to_dict` only when stated.
    """

    phones: list[Phone]
    words: list[WordSpan] = field(default_factory=list)
    duration: float = 0.0
    alphabet: str = "misaki"
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise AvatarError(f"PhonemeTimeline: source {self.source!r} is not one of {SOURCES}")
        prev_end = 0.0
        for p in self.phones:
            if p.end < p.start - 1e-9 or p.start < prev_end - 1e-6:
                raise AvatarError(f"PhonemeTimeline: phone {p} overlaps or runs backwards")
            prev_end = p.end
        if self.phones and self.duration < self.phones[-1].end - 1e-6:
            self.duration = self.phones[-1].end

    def __len__(self) -> int:
        return len(self.phones)

    def __iter__(self):
        return iter(self.phones)

    @property
    def speech_spans(self) -> list[tuple[float, float]]:
        """Merged (start, end) seconds of non-silent phones."""
        spans: list[tuple[float, float]] = []
        for p in self.phones:
            if p.phoneme == SILENCE:
                continue
            if spans and p.start - spans[-1][1] < 1e-6:
                spans[-1] = (spans[-1][0], p.end)
            else:
                spans.append((p.start, p.end))
        return spans

    def pauses(self, min_duration: float = 0.0) -> list[tuple[float, float]]:
        """(start, end) seconds of silences at least ``min_duration`` long, edges included."""
        out: list[tuple[float, float]] = []
        cursor = 0.0
        for start, end in self.speech_spans:
            if start - cursor >= min_duration and start > cursor:
                out.append((cursor, start))
            cursor = end
        if self.duration - cursor >= min_duration and self.duration > cursor:
            out.append((cursor, self.duration))
        return out

    def shifted(self, offset: float) -> PhonemeTimeline:
        """A copy with every time moved by ``offset`` seconds."""
        return PhonemeTimeline(
            phones=[Phone(p.phoneme, p.start + offset, p.end + offset) for p in self.phones],
            words=[WordSpan(w.word, w.start + offset, w.end + offset) for w in self.words],
            duration=self.duration + offset,
            alphabet=self.alphabet,
            source=self.source,
        )

    def moved_within(self, offset: float) -> PhonemeTimeline:
        """Every time moved by ``offset`` seconds, kept inside ``[0, duration]``.

        The first phone still starts at 0 and the last still ends at ``duration`` (stretched or
        cut); phones pushed wholly outside are dropped. For correcting a timeline that is
        known to run early or late against its audio.

        Example:
            >>> tl = PhonemeTimeline.from_durations(["_", "AA", "_"], [0.1, 0.2, 0.1])
            >>> [(p.phoneme, round(p.start, 3), round(p.end, 3)) for p in tl.moved_within(-0.05)]
            [('_', 0.0, 0.05), ('AA', 0.05, 0.25), ('_', 0.25, 0.4)]
        """
        d = self.duration
        moved = [
            (p.phoneme, min(max(p.start + offset, 0.0), d), min(max(p.end + offset, 0.0), d))
            for p in self.phones
        ]
        moved = [m for m in moved if m[2] > m[1]]
        if moved:
            moved[0] = (moved[0][0], 0.0, moved[0][2])
            moved[-1] = (moved[-1][0], moved[-1][1], d)
        words = [
            WordSpan(w.word, min(max(w.start + offset, 0.0), d), min(max(w.end + offset, 0.0), d))
            for w in self.words
        ]
        return PhonemeTimeline([Phone(*m) for m in moved], words, d, self.alphabet, self.source)

    @staticmethod
    def concatenate(parts: Sequence[PhonemeTimeline]) -> PhonemeTimeline:
        """Join timelines end to end; each part's times are offset by the durations before it.

        The result keeps the parts' :attr:`source` when they all agree, else it is ``""``.
        """
        phones: list[Phone] = []
        words: list[WordSpan] = []
        offset = 0.0
        alphabet = parts[0].alphabet if parts else "misaki"
        for part in parts:
            if part.alphabet != alphabet:
                raise AvatarError("PhonemeTimeline.concatenate: parts use different alphabets")
            moved = part.shifted(offset)
            phones.extend(moved.phones)
            words.extend(moved.words)
            offset += part.duration
        sources = {part.source for part in parts}
        source = sources.pop() if len(sources) == 1 else ""
        return PhonemeTimeline(phones, words, offset, alphabet, source)

    @staticmethod
    def from_durations(
        phonemes: Iterable[str], durations: Iterable[float], alphabet: str = "misaki"
    ) -> PhonemeTimeline:
        """Build back-to-back phones from per-phone durations in seconds.

        >>> t = PhonemeTimeline.from_durations(["_", "h", "i"], [0.1, 0.05, 0.2])
        >>> round(t.duration, 2), t.phones[1].start
        (0.35, 0.1)
        """
        phones: list[Phone] = []
        t = 0.0
        for ph, d in zip(phonemes, durations, strict=True):
            phones.append(Phone(ph, t, t + float(d)))
            t += float(d)
        return PhonemeTimeline(phones=phones, duration=t, alphabet=alphabet)

    def to_dict(self) -> dict:
        """JSON-ready dict; ``source`` only when stated (cached corpora keep their keys)."""
        out = {
            "alphabet": self.alphabet,
            "duration": self.duration,
            "phones": [[p.phoneme, p.start, p.end] for p in self.phones],
            "words": [[w.word, w.start, w.end] for w in self.words],
        }
        if self.source:
            out["source"] = self.source
        return out

    @staticmethod
    def from_dict(d: dict) -> PhonemeTimeline:
        return PhonemeTimeline(
            phones=[Phone(str(a), float(b), float(c)) for a, b, c in d["phones"]],
            words=[WordSpan(str(a), float(b), float(c)) for a, b, c in d.get("words", [])],
            duration=float(d["duration"]),
            alphabet=str(d.get("alphabet", "misaki")),
            source=str(d.get("source", "")),
        )
