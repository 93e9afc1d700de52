"""Text before speech: validation with explicit errors, and sentence splitting for TTS backends."""

from __future__ import annotations

import re

from avatar.errors import TextInputError

# Abbreviations whose trailing period does not end a sentence ("Dr. Smith", "e.g. this").
_ABBREVIATIONS = frozenset(
    "mr mrs ms mx dr prof st sr jr rev gen col capt lt sgt gov sen rep hon mt ft vs etc e.g i.e "
    "approx dept est fig inc ltd co no vol jan feb mar apr jun jul aug sep sept oct nov dec".split()
)
# End punctuation, optional closing quotes/brackets, then whitespace before the next sentence.
_SENT_END = re.compile(r"(?<=[.!?…])[\"”’)\]]*\s+(?=\S)")
_PARAGRAPH = re.compile(r"\s*\n\s*")


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
        raise TextInputError(f"text has nothing speakable (no letters or digits): {shown!r}")
    return stripped
