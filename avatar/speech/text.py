"""Text before speech: validation with explicit errors, sentence splitting for TTS backends, and
the writing systems (scripts) in a text that an English voice cannot speak."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Container

from avatar.errors import TextInputError

log = logging.getLogger(__name__)

# Abbreviations whose trailing period does not end a sentence ("Dr. Smith", "e.g. this").
_ABBREVIATIONS = frozenset(
    "mr mrs ms mx dr prof st sr jr rev gen col capt lt sgt gov sen rep hon mt ft vs etc e.g i.e "
    "approx dept est fig inc ltd co no vol jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# End punctuation, optional closing quotes/brackets, then whitespace before the next sentence.
_SENT_END = re.compile(r"(?<=[.!?…])[\"”’)\]]*\s+(?=\S)")
_PARAGRAPH = re.compile(r"\s*\n\s*")
# Pictographs: Miscellaneous Symbols, Dingbats, arrows and stars, and the emoji planes.
_EMOJI = ((0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x1F000, 0x1FAFF))
# First words of Unicode names of letters and numbers that belong with Latin text.
_COMMON = frozenset(
    "LATIN MODIFIER SUPERSCRIPT SUBSCRIPT VULGAR ROMAN CIRCLED PARENTHESIZED DIGIT NUMBER "
    "MICRO FEMININE MASCULINE".split()
)


def _ends_sentence(para: str, end: int, next_char: str) -> bool:
    """Whether the end punctuation just before ``para[end]`` closes a sentence."""
    if next_char.islower():
        return False
    if para[end - 1] != ".":
        return True
    word = para[para.rfind(" ", 0, end) + 1 : end - 1].lstrip("(\"“'‘")
    is_initial = len(word) == 1 and word.isupper()  # "J. K. Rowling"
    return not (is_initial or word.lower() in _ABBREVIATIONS)


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at end punctuation and line breaks.

    A period after a known abbreviation or a single capital initial, or before a lowercase
    word, does not end a sentence. Empty pieces are dropped; each piece is stripped.

    Args:
        text: any text; line breaks always end a sentence.

    Returns:
        The sentences in order, each non-empty.

    >>> split_sentences("Hello there. Dr. Smith is in! Is he?  Yes.")
    ['Hello there.', 'Dr. Smith is in!', 'Is he?', 'Yes.']
    >>> split_sentences("First line\\n\\nSecond line... and more.")
    ['First line', 'Second line... and more.']
    >>> split_sentences("   ")
    []
    """
    out: list[str] = []
    for para in _PARAGRAPH.split(text.strip()):
        cut = 0
        for m in _SENT_END.finditer(para):
            if _ends_sentence(para, m.start(), para[m.end()]):
                out.append(para[cut : m.end()].strip())
                cut = m.end()
        out.append(para[cut:].strip())
    return [s for s in out if s]


def validate_text(text: object, *, max_chars: int) -> str:
    """Check that text can be spoken and return it stripped.

    Args:
        text: the text to speak.
        max_chars: the longest accepted text in characters, after stripping (``tts.max_chars``).

    Returns:
        ``text`` without leading and trailing whitespace.

    Raises:
        TextInputError: ``text`` is not a str, is empty or whitespace only, is longer than
            ``max_chars``, or has no letter or digit to speak (e.g. only punctuation).

    >>> validate_text("  Hi there. ", max_chars=100)
    'Hi there.'
    >>> validate_text("?!", max_chars=100)
    Traceback (most recent call last):
    ...
    avatar.errors.TextInputError: text has nothing speakable (no letters or digits): '?!'
    """
    if not isinstance(text, str):
        raise TextInputError(f"text must be a str, got {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        what = "empty" if not text else f"whitespace only ({len(text)} characters)"
        raise TextInputError(f"text is {what}; give at least one word to speak")
    if len(stripped) > max_chars:
        raise TextInputError(
            f"text is {len(stripped)} characters, over the limit of {max_chars} "
            f"(config key tts.max_chars); split it or raise the limit"
        )
    if not any(c.isalnum() for c in stripped):
        shown = stripped if len(stripped) <= 40 else stripped[:40] + "..."
        scripts = Counter(filter(None, map(script_of, stripped)))
        found = f" ({_counts(scripts)})" if scripts else ""
        raise TextInputError(f"text has nothing speakable (no letters or digits): {shown!r}{found}")
    return stripped


def script_of(ch: str) -> str | None:
    """The writing system of a character that carries words, from its Unicode name.

    Python's :mod:`unicodedata` has no script property; the first word of a letter's name is
    its script (``CYRILLIC SMALL LETTER PE``), with ``"CJK"`` for Chinese/Japanese ideographs.

    Args:
        ch: one character.

    Returns:
        ``"Latin"`` for Latin letters and the numbers and compatibility forms that go with
        them (``é``, ``²``, ``½``, ``ﬁ``, full-width Latin), another script's name (``"CJK"``,
        ``"Cyrillic"``, ``"Arabic"``, ``"Devanagari"``, ``"Hangul"``, ``"Greek"``...) or
        ``"emoji"`` for pictographs; None for ASCII, spaces, punctuation, other symbols,
        format characters and combining accents (they go with the letter before them).

    >>> [script_of(c) for c in "a é,你Пمन"] + [script_of("\U0001f600"), script_of("\u200d")]
    [None, None, 'Latin', None, 'CJK', 'Cyrillic', 'Arabic', 'Devanagari', 'emoji', None]
    """
    if ch.isascii():
        return None
    category, point = unicodedata.category(ch), ord(ch)
    if category[0] == "S":
        return "emoji" if any(a <= point <= b for a, b in _EMOJI) else None
    name = unicodedata.name(ch, "")
    if category[0] not in "LMN" or name.startswith(("COMBINING", "VARIATION SELECTOR")):
        return None
    words = name.replace("-", " ").split() or ["unnamed"]
    if words[0] in ("HALFWIDTH", "FULLWIDTH") and len(words) > 1:
        words = words[1:]
    if words[0] in _COMMON or unicodedata.normalize("NFKC", ch).isascii():
        return "Latin"
    return "CJK" if words[0] in ("CJK", "IDEOGRAPHIC", "KANGXI") else words[0].title()


def _counts(scripts: Counter[str]) -> str:
    """``"CJK 2, Cyrillic 6"``: characters per script, most first."""
    return ", ".join(f"{name} {n}" for name, n in scripts.most_common())


def check_scripts(
    text: str,
    *,
    voice: str,
    speaks: Callable[[str], bool],
    guesses: Container[str] = frozenset(),
) -> Counter[str]:
    """Warn about the characters of ``text`` a voice cannot speak; refuse text with none it can.

    Each character that carries words (:func:`script_of` is not None) and that the voice does
    not speak is either *guessed* (read by English letter-to-sound rules, which is not the
    language: ``guesses``) or *dropped*. One WARNING names the scripts and the counts.

    Args:
        text: the validated text.
        voice: voice id for the messages.
        speaks: whether the voice reads a character properly (ASCII is always read).
        guesses: characters the voice reads as if they were English letters.

    Returns:
        Dropped characters per script (empty when all is spoken or guessed).

    Raises:
        TextInputError: no letter or digit of ``text`` is spoken or guessed.

    >>> check_scripts("Hello 你好", voice="v", speaks=str.isascii)
    Counter({'CJK': 2})
    >>> check_scripts("你好", voice="v", speaks=str.isascii)
    Traceback (most recent call last):
    ...
    avatar.errors.TextInputError: text has nothing the voice v can speak: 2 characters it drops \
(CJK 2); the voices speak English (Latin letters and digits)
    """
    dropped, guessed = Counter(), Counter()
    for ch in text:
        script = script_of(ch)
        if script is None or ch.isascii() or speaks(ch):
            continue
        (guessed if ch in guesses else dropped)[script] += 1
    if not dropped and not guessed:
        return dropped
    parts = []
    if dropped:
        parts.append(f"{sum(dropped.values())} characters it drops ({_counts(dropped)})")
    if guessed:
        parts.append(
            f"{sum(guessed.values())} characters it reads by English spelling rules, not in "
            f"their language ({_counts(guessed)})"
        )
    if not any(c.isalnum() and (c.isascii() or speaks(c) or c in guesses) for c in text):
        raise TextInputError(
            f"text has nothing the voice {voice} can speak: {' and '.join(parts)}; the voices "
            "speak English (Latin letters and digits)"
        )
    log.warning("the voice %s speaks English; the text holds %s", voice, " and ".join(parts))
    return dropped
