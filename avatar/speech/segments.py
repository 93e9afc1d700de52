"""Text into segments for speech in parts: whole sentences grouped up to a length, a sentence
longer than that cut at clause punctuation or between words, and each inline emotion tag kept
with the word it precedes. :mod:`avatar.long_text` speaks and renders the segments in turn."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from avatar.errors import TextInputError
from avatar.speech.text import split_sentences

__all__ = ["Segment", "split_segments"]

_CLAUSE = frozenset(",;:—–")


@dataclass(frozen=True)
class Segment:
    """One segment of a long text.

    Attributes:
        index: 0-based position.
        start: first character in the (tag-free) text.
        end: one past its last character.
        text: ``text[start:end]``, the words spoken.
        tags: emotion tags ``(word_index, emotion, intensity)``, word indices within the segment.
    """

    index: int
    start: int
    end: int
    text: str
    tags: list[tuple[int, str, float]]

    def where(self, count: int) -> str:
        """``segment 3 of 12 (characters 1201-1650: "First words...")`` for messages."""
        head = self.text if len(self.text) <= 40 else self.text[:40] + "..."
        return (
            f"segment {self.index + 1} of {count} (characters {self.start + 1}-{self.end}: "
            f"{head!r})"
        )


def _cut(text: str, start: int, limit: int) -> tuple[int, int]:
    """Where to cut ``text[start:]`` at most ``limit`` characters in: ``(head_end, rest_start)``,
    after the last clause punctuation that a space follows, else at the last space."""
    window = text[start : start + limit + 1]
    clause = [
        p + 1 for p in range(len(window) - 1) if window[p] in _CLAUSE and window[p + 1] == " "
    ]
    spaces = [p for p in range(1, len(window)) if window[p].isspace()]
    cuts = [p for p in clause if p <= limit] or spaces
    if not cuts:
        word = text[start:].split(maxsplit=1)[0]
        raise TextInputError(
            f"text has a word of {len(word)} characters at character {start + 1} "
            f"({word[:30]!r}...), longer than a segment ({limit} characters here; config keys "
            "long_text.segment_chars, long_text.first_segment_chars)"
        )
    head_end = start + cuts[-1]
    rest = head_end
    while rest < len(text) and text[rest].isspace():
        rest += 1
    return start + len(text[start:head_end].rstrip()), rest


def split_segments(
    text: str, tags: list[tuple[int, str, float]], *, first_chars: int, chars: int
) -> list[Segment]:
    """Group the sentences of ``text`` into segments of at most ``chars`` characters (the first
    at most ``first_chars``); a longer sentence is cut at clause punctuation, else at a space.

    Args:
        text: tag-free text, whitespace collapsed (as :func:`~avatar.motion.emotion.parse_tags`
            returns it).
        tags: ``(word_index, emotion, intensity)`` over ``text.split()``.
        first_chars: longest first segment.
        chars: longest other segment.

    Raises:
        TextInputError: a word longer than a segment, or a segment with nothing to speak (no
            letter or digit), naming where.

    >>> [s.text for s in split_segments("One. Two two. Three, three three.", [(2, "sad", 1.0)],
    ...                                  first_chars=5, chars=14)]
    ['One.', 'Two two.', 'Three,', 'three three.']
    >>> split_segments("One. Two two.", [(2, "sad", 1.0)], first_chars=5, chars=14)[1].tags
    [(1, 'sad', 1.0)]
    """
    spans: deque[tuple[int, int]] = deque()
    cursor = 0
    for sentence in split_sentences(text):
        at = text.index(sentence, cursor)
        spans.append((at, at + len(sentence)))
        cursor = at + len(sentence)
    groups: list[tuple[int, int]] = []
    current: tuple[int, int] | None = None
    while spans:
        start, end = spans.popleft()
        limit = first_chars if not groups else chars
        if current is not None and end - current[0] <= limit:
            current = (current[0], end)
            continue
        if current is not None:  # full: this sentence starts the next segment
            groups.append(current)
            current = None
            spans.appendleft((start, end))
        elif end - start <= limit:
            current = (start, end)
        else:  # a sentence longer than a segment: its head is a segment of its own
            head_end, rest = _cut(text, start, limit)
            groups.append((start, head_end))
            spans.appendleft((rest, end))
    if current is not None:
        groups.append(current)
    segments, first_word = [], 0
    for index, (start, end) in enumerate(groups):
        words = len(text[start:end].split())
        last = index == len(groups) - 1
        mine = [
            (w - first_word, emotion, level)
            for w, emotion, level in tags
            if first_word <= w and (w < first_word + words or last)
        ]
        segments.append(Segment(index, start, end, text[start:end], mine))
        first_word += words
    for segment in segments:
        if not any(c.isalnum() for c in segment.text):
            raise TextInputError(
                f"{segment.where(len(segments))} has nothing speakable (no letters or digits)"
            )
    return segments
