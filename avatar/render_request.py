"""One render request (text, audio or listen mode) checked before any work: the mode rules.

A request names a mode by its keys: ``text`` / ``text_file`` (text mode), ``audio`` with
``transcript`` and ``mouth_source`` (audio mode), or ``listen`` (listen mode); ``emotion`` and
``emotion_intensity`` belong to text mode. A key of another mode is an error naming it, never
ignored. User text is data: it is used exactly as given. The CLI reads these keys from
``configs/render.yaml``; a server can pass the same keys from a request body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avatar.errors import ConfigValueError, TextInputError
from avatar.media import check_output_path
from avatar.motion.emotion import check_emotion, parse_tags

__all__ = ["MODE_KEYS", "TEXT_FILE_MAX_BYTES", "Request", "make_request", "read_text_file"]

MODE_KEYS = (
    "text",
    "text_file",
    "audio",
    "listen",
    "transcript",
    "mouth_source",
    "emotion",
    "emotion_intensity",
)
"""The keys that choose and shape the mode (``out`` aside)."""

TEXT_FILE_MAX_BYTES = 1 << 20
"""Largest ``text_file`` read (a guard against reading a huge file whole;
``long_text.max_text_chars`` is the limit on what is spoken)."""

_WHY_NOT = {
    "text": "is the text mode's words; audio= and listen= bring their own sound",
    "text_file": "is the text mode's words; audio= and listen= bring their own sound",
    "emotion": "sets the mood of text= only; in every mode motion.emotion= sets it",
    "emotion_intensity": "goes with emotion=; in every mode use motion.emotion_intensity=",
    "transcript": "says what audio= says",
    "mouth_source": "chooses how audio= drives the mouth",
}


@dataclass(frozen=True)
class Request:
    """What to render, checked.

    Attributes:
        mode: ``text``, ``audio`` or ``listen``.
        out: the MP4 to write (checked writable).
        text: the words to speak (text mode), exactly as given.
        audio: the recording to lip-sync (audio mode) or listen to (listen mode).
        transcript: what ``audio`` says, exactly as given, or None.
        mouth_source: ``aligner`` or ``learned`` (audio mode).
        emotion: the mood from the start (text mode), or None.
        emotion_intensity: its strength, 0..1.
    """

    mode: str
    out: Path
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None
    mouth_source: str = "aligner"
    emotion: str | None = None
    emotion_intensity: float = 1.0


def make_request(values: Mapping[str, Any], set_keys: set[str]) -> Request:
    """Check a request's values; nothing is read but ``text_file``.

    Args:
        values: ``out`` and every key of :data:`MODE_KEYS`; ``text`` and ``transcript`` as the
            user gave them (no interpolation applied).
        set_keys: the keys the user set (only these count for the mode rules).

    Raises:
        ConfigValueError: keys of different modes together, a bad emotion or mouth source.
        TextInputError: ``text`` is not a string, ``text_file`` cannot be read, a bad tag.
        OutputPathError: ``out`` cannot be written.
    """
    mode = _mode(set_keys)
    if mode == "text" and {"text", "text_file"} <= set_keys:
        raise ConfigValueError("give text= or text_file=, not both")
    out = check_output_path(None if values["out"] is None else str(values["out"]), key="out")
    if mode != "text":
        return Request(
            mode,
            out,
            audio=str(values[mode]),
            transcript=_literal(values["transcript"], "transcript"),
            mouth_source=_mouth_source(values["mouth_source"]),
        )
    if "text_file" in set_keys:
        text = read_text_file(values["text_file"])
    else:
        text = _literal(values["text"], "text")
    parse_tags(text or "")  # an unknown [tag] fails now, not after synthesis
    emotion, intensity = values["emotion"], 1.0
    if emotion is None and "emotion_intensity" in set_keys:
        raise ConfigValueError("emotion_intensity= needs emotion= (the mood it is the strength of)")
    if emotion is not None:
        try:
            intensity = float(values["emotion_intensity"])
            check_emotion(str(emotion), intensity)
        except (TypeError, ValueError) as exc:
            given = values["emotion_intensity"]
            raise ConfigValueError(f"emotion={emotion} emotion_intensity={given}: {exc}") from None
    return Request(mode, out, text=text, emotion=emotion, emotion_intensity=intensity)


def _mode(set_keys: set[str]) -> str:
    """``listen``, ``audio`` or ``text``; keys of another mode are an error naming them."""
    if {"audio", "listen"} <= set_keys:
        raise ConfigValueError(
            "give audio= (the companion speaks) or listen= (it listens), not both"
        )
    mode = "listen" if "listen" in set_keys else "audio" if "audio" in set_keys else "text"
    foreign = {"text", "text_file", "emotion", "emotion_intensity"} if mode != "text" else set()
    foreign |= {"transcript", "mouth_source"} if mode != "audio" else set()
    conflicts = [k for k in _WHY_NOT if k in foreign & set_keys]
    if conflicts:
        where = f"with {mode}=" if mode != "text" else "without audio="
        reasons = "; ".join(f"{k}= {_WHY_NOT[k]}" for k in conflicts)
        keys = ", ".join(f"{k}=" for k in conflicts)
        them = "them" if len(conflicts) > 1 else "it"
        raise ConfigValueError(f"{keys} cannot be used {where} ({reasons}); remove {them}")
    return mode


def _literal(value: object, key: str) -> str | None:
    """A user text exactly as given: a string, or None."""
    if value is None or isinstance(value, str):
        return value
    raise TextInputError(
        f"{key}= must be text, got the {type(value).__name__} {value!r}: quote it "
        f"('{key}=\"...\"') or put it in a file (text_file=)"
    )


def _mouth_source(value: object) -> str:
    if value not in ("aligner", "learned"):
        raise ConfigValueError(f"mouth_source must be aligner or learned, got {value!r}")
    return str(value)


def read_text_file(path: object) -> str:
    """The whole text of the UTF-8 file ``path``, verbatim (a leading byte-order mark dropped).

    Raises:
        TextInputError: no path, no such file, over :data:`TEXT_FILE_MAX_BYTES`, not UTF-8,
            or unreadable.
    """
    if path is None or not str(path).strip():
        raise TextInputError("text_file is empty: give the path of a UTF-8 text file")
    file = Path(str(path)).expanduser()
    try:
        if not file.is_file():
            raise TextInputError(f"text_file={path}: no such file")
        size = file.stat().st_size
        if size > TEXT_FILE_MAX_BYTES:
            raise TextInputError(
                f"text_file={path}: {size} bytes, over the {TEXT_FILE_MAX_BYTES} read; "
                "split the text"
            )
        return file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TextInputError(
            f"text_file={path}: not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except OSError as exc:
        raise TextInputError(f"text_file={path}: cannot read it: {exc.strerror}") from exc
