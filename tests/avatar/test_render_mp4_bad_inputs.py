"""``avatar.render_mp4`` (the Python entry point) with bad input: each raises an AvatarError
naming the problem, leaves nothing on disk, and the next good call still works."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import HydraException

from avatar.companion import CompanionSpec
from avatar.errors import (
    AvatarError,
    CompanionSpecError,
    ConfigValueError,
    ImageReadError,
    OutputPathError,
    TextInputError,
)
from avatar.media import read_mp4
from avatar.render import render_mp4

ROWS = [  # (id, text, keyword arguments, expected error, message fragment); {tmp} filled in
    ("empty text", "", {}, TextInputError, "empty"),
    (
        "text over the limit",
        "word " * 500,
        {"overrides": ["long_text.max_text_chars=2000"]},
        TextInputError,
        "over the limit of 2000 (config key long_text.max_text_chars)",
    ),
    ("unknown emotion tag", "Hi [grumpy] there", {}, TextInputError, "unknown emotion"),
    ("intensity over 1", "Hi [sad 3] there", {}, TextInputError, "intensity"),
    ("out is a directory", "Hi.", {"out": "{tmp}"}, OutputPathError, "is a directory"),
    ("out not .mp4", "Hi.", {"out": "{tmp}/o.avi"}, OutputPathError, "must end in .mp4"),
    ("unknown companion", "Hi.", {"companion": "nobody"}, CompanionSpecError, "nobody"),
    (
        "missing image",
        "Hi.",
        {"companion": CompanionSpec(id="x", name="X", images=["{tmp}/none.png"])},
        ImageReadError,
        "none.png",
    ),
    (
        "unknown voice",
        "Hi.",
        {"companion": CompanionSpec(id="v", name="V", images=["embedded:astronaut"], voice="x")},
        ConfigValueError,
        "unknown voice 'x'",
    ),
    ("crf 99", "Hi.", {"overrides": ["encoder.crf=99"]}, ConfigValueError, "encoder.crf"),
    ("odd size", "Hi.", {"overrides": ["renderer.size=129"]}, ConfigValueError, "renderer.size"),
    ("sway < 0", "Hi.", {"overrides": ["motion.head_sway_deg=-1"]}, ConfigValueError, "sway"),
]


def _fill(value: object, tmp: Path) -> object:
    if isinstance(value, str):
        return value.format(tmp=tmp)
    if isinstance(value, CompanionSpec):
        return CompanionSpec(
            id=value.id,
            name=value.name,
            images=[_fill(i, tmp) for i in value.images],
            voice=value.voice,
        )
    return value


@pytest.mark.parametrize(
    ("text", "kwargs", "error", "fragment"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_bad_input_raises_a_named_error_and_writes_nothing(
    identity_cache, tmp_path, text, kwargs, error, fragment
):
    kwargs = {k: _fill(v, tmp_path) for k, v in kwargs.items()}
    overrides = [f"identity.cache_dir={identity_cache}", "renderer.size=128"]
    overrides += kwargs.pop("overrides", [])
    out = kwargs.pop("out", str(tmp_path / "o.mp4"))
    with pytest.raises((AvatarError, HydraException)) as caught:
        render_mp4(text, out, overrides=overrides, **kwargs)
    shown = caught.value.__cause__ if isinstance(caught.value, HydraException) else caught.value
    assert isinstance(shown, error), repr(shown)
    assert fragment in str(shown)
    assert list(tmp_path.iterdir()) == [], "nothing written, no temporary file left"


def test_a_good_call_after_bad_ones(identity_cache, tmp_path):
    overrides = [f"identity.cache_dir={identity_cache}", "renderer.size=128"]
    with pytest.raises(TextInputError):
        render_mp4("", tmp_path / "bad.mp4", overrides=overrides)
    result = render_mp4("Still here.", tmp_path / "good.mp4", overrides=overrides)
    assert len(read_mp4(result.path).frames) == result.n_frames > 10
