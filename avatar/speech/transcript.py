"""Transcripts for forced alignment: tokens of plain English text -> pocketsphinx dictionary words.

pocketsphinx 5 has no letter-to-sound rules, so a word missing from its dictionary (CMUdict) is
an error that names it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from avatar.errors import TextInputError

if TYPE_CHECKING:
    from pocketsphinx import Decoder

_EDGE = '"“”‘()[]{}<>,;:!?…*_—–'  # stripped from both ends of a transcript token
_TOKEN_SPLIT = re.compile(r"[\s—–/]+")


def lookup_words(decoder: Decoder, transcript: str) -> tuple[list[str], list[str]]:
    """Transcript -> (words as written, CMUdict entries), one to one.

    Tokens split at spaces, dashes and slashes, with quotes and punctuation stripped from their
    ends. Each token is tried with its apostrophes and final period (``"a.m."``, ``"'em"``),
    then bare, then (hyphenated) part by part.

    Args:
        decoder: a pocketsphinx decoder with the dictionary loaded (``lookup_word``).
        transcript: the words spoken, plain English text.

    Returns:
        ``(written, entries)``: the words as written, and the dictionary entry of each.

    Raises:
        TextInputError: words missing from the dictionary (named), or no word at all.
    """
    written, entries, missing = [], [], []
    for token in _TOKEN_SPLIT.split(transcript.replace("’", "'")):
        token = token.strip(_EDGE)
        word = token.strip("'").rstrip(".") or token
        if not word.strip(".'-"):
            continue  # punctuation only
        found = next(
            (c.lower() for c in (token, token.rstrip("."), word) if decoder.lookup_word(c.lower())),
            None,
        )
        parts = [p for p in word.split("-") if p.strip("'")]
        if found is not None:
            written.append(word)
            entries.append(found)
        elif len(parts) > 1 and all(decoder.lookup_word(p.lower()) for p in parts):
            written.extend(parts)
            entries.extend(p.lower() for p in parts)
        else:
            missing.append(word)
    if missing:
        raise TextInputError(
            "words not in the pocketsphinx dictionary (CMUdict; pocketsphinx 5 has no letter-to-"
            f"sound fallback): {', '.join(map(repr, dict.fromkeys(missing)))}; spell them out"
        )
    if not entries:
        raise TextInputError(f"transcript has no words to align: {transcript[:40]!r}")
    return written, entries
