"""Motion settings: every numeric ``motion.*`` value is checked against its documented range at
construction, and a refusal names the key, the value and the range."""

from __future__ import annotations

import copy
import functools
import math
import re
from typing import Any

import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from avatar.companion import configs_dir
from avatar.config import compose
from avatar.errors import ConfigValueError
from avatar.motion.generate import SETTING_RANGES, MotionGenerator


@functools.cache
def _configured() -> dict[str, Any]:
    node = OmegaConf.to_container(compose("render").motion, resolve=True)
    return {k: v for k, v in node.items() if k != "_target_"}


def motion_kwargs(**changes: Any) -> dict[str, Any]:
    """``MotionGenerator`` keyword arguments of ``configs/motion/default.yaml``, changed."""
    kwargs = copy.deepcopy(_configured())
    unknown = set(changes) - set(kwargs)
    if unknown:
        raise TypeError(f"not motion settings: {sorted(unknown)}")
    return {**kwargs, **changes}


def _outside(key: str) -> list[Any]:
    """Values just outside the range of ``key`` (and NaN, infinity, a string)."""
    rng = SETTING_RANGES[key]
    below = rng.lo if rng.lo_open else rng.lo - (1 if rng.integer else 0.5)
    values = [below, math.nan, "1"]
    if math.isfinite(rng.hi):
        values += [rng.hi + 0.5 if not rng.integer else int(rng.hi) + 1, math.inf]
    return values


BAD = [(key, value) for key in SETTING_RANGES if key != "saccade_hold_s" for value in _outside(key)]


@pytest.mark.parametrize(("key", "value"), BAD, ids=[f"{k}={v!r}" for k, v in BAD])
def test_a_value_out_of_range_is_refused_by_name(key, value):
    with pytest.raises(ConfigValueError) as err:
        MotionGenerator(**motion_kwargs(**{key: value}))
    message = str(err.value)
    assert f"motion.{key} must be" in message
    assert repr(value) in message and str(SETTING_RANGES[key]) in message


@pytest.mark.parametrize("key", [k for k in SETTING_RANGES if k != "saccade_hold_s"])
def test_the_closed_ends_of_each_range_are_accepted(key):
    rng = SETTING_RANGES[key]
    ends = [e for e, open_ in ((rng.lo, rng.lo_open), (rng.hi, rng.hi_open)) if not open_]
    if rng.integer:
        ends = [int(e) for e in ends] + [2**40]
    assert ends
    for end in ends:
        # the longest stare must stay at least the shortest interval between blinks
        other = {"blink_max_interval_s": 600.0} if key == "blink_min_interval_s" else {}
        generator = MotionGenerator(**motion_kwargs(**{key: end, **other}))
        assert isinstance(generator, MotionGenerator)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([0.9, 0.3], "ordered as (shortest, longest)"),
        ([0.3], "a (shortest, longest) pair of seconds"),
        ([0.3, 0.6, 0.9], "a (shortest, longest) pair of seconds"),
        (0.5, "a (shortest, longest) pair of seconds"),
        ([0.0, 0.5], "each in (0, 5]"),
        ([0.3, 6.0], "each in (0, 5]"),
        ([0.3, "x"], "each in (0, 5]"),
    ],
)
def test_saccade_hold_must_be_an_ordered_pair(value, expected):
    with pytest.raises(ConfigValueError, match=re.escape(expected)) as err:
        MotionGenerator(**motion_kwargs(saccade_hold_s=value))
    assert "motion.saccade_hold_s" in str(err.value) and repr(value) in str(err.value)
    assert MotionGenerator(**motion_kwargs(saccade_hold_s=[0.4, 0.4])).fps == 25.0


def test_blinks_never_further_apart_than_closer():
    with pytest.raises(ConfigValueError, match=r"motion\.blink_max_interval_s must be at least"):
        MotionGenerator(**motion_kwargs(blink_min_interval_s=3.0, blink_max_interval_s=2.0))


@pytest.mark.parametrize("value", [2.5, -1, True])
def test_the_seed_is_a_non_negative_integer(value):
    with pytest.raises(ConfigValueError, match=r"motion\.seed must be an integer in \[0, inf\)"):
        MotionGenerator(**motion_kwargs(seed=value))


@pytest.mark.parametrize("override", ["motion.head_sway_deg=-1", "motion.expressivity=-0.5"])
def test_negative_sway_or_expressivity_is_refused_through_the_config(override):
    cfg = compose("render", [override])
    with pytest.raises((ConfigValueError, InstantiationException)) as err:
        instantiate(cfg.motion)
    cause = err.value if isinstance(err.value, ConfigValueError) else err.value.__cause__
    assert isinstance(cause, ConfigValueError)
    key, value = override.split("=")
    assert f"{key} must be in [0, " in str(cause) and value in str(cause)


def test_every_numeric_setting_has_a_range_documented_in_the_yaml():
    """Each numeric key of ``configs/motion/default.yaml`` has a checked range, and its comment
    states that same range (``range [lo, hi]``)."""
    text = (configs_dir() / "motion" / "default.yaml").read_text()
    documented = {}
    for line in text.splitlines():
        m = re.match(r"(\w+):.*#.*\brange ([\[(][^\])]*[\])])", line)
        if m:
            documented[m.group(1)] = m.group(2)
    numeric = {k for k, v in motion_kwargs().items() if isinstance(v, int | float | list)}
    assert numeric == set(SETTING_RANGES) == set(documented)
    assert documented == {k: str(r) for k, r in SETTING_RANGES.items()}
    assert isinstance(MotionGenerator(**motion_kwargs()), MotionGenerator)


@pytest.mark.parametrize(("value", "expected"), [("giddy", "unknown emotion"), (3, "emotion name")])
def test_an_unknown_emotion_is_refused_by_name(value, expected):
    with pytest.raises(ConfigValueError, match=expected) as err:
        MotionGenerator(**motion_kwargs(emotion=value))
    assert "motion.emotion" in str(err.value) and repr(value) in str(err.value)
