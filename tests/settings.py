"""The project's configured settings for tests that build a component by hand (import as
``tests.settings``), so a test states only what it changes and YAML stays the one home."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from avatar.companion import configs_dir


def hibari_kwargs(**changes: Any) -> dict[str, Any]:
    """``HibariTTS`` keyword arguments of the default voice (``configs/voices/default.yaml``),
    with ``changes`` applied."""
    node = yaml.safe_load((configs_dir() / "voices" / "default.yaml").read_text())
    kwargs = {k: v for k, v in node["voices"]["heart"].items() if k != "_target_"}
    unknown = set(changes) - set(kwargs)
    if unknown:
        raise TypeError(f"not HibariTTS settings: {sorted(unknown)}")
    return {**kwargs, **changes}


def image_limits() -> dict[str, Any]:
    """``load_image`` limits of ``configs/render.yaml``'s ``identity`` node."""
    node = yaml.safe_load((configs_dir() / "render.yaml").read_text())["identity"]
    return {"max_megapixels": node["max_image_megapixels"], "max_side": node["max_image_side"]}


def pyannote_sample() -> Path | None:
    """The recorded telephone conversation the pyannote.audio wheel ships (``sample.wav``,
    16 kHz, two speakers; installed with --no-deps by the Makefile), or None when absent."""
    from avatar.stream_lab import recorded_conversation

    return recorded_conversation()
