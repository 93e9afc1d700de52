"""Every option of every config group composes and instantiates; bad keys fail at compose."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate

from avatar.companion import configs_dir
from avatar.config import companion_from_config, compose

GROUPS = ["voices", "aligner", "motion", "renderer"]


@pytest.mark.parametrize(
    "group,option",
    [(g, p.stem) for g in GROUPS for p in sorted((configs_dir() / g).glob("*.yaml"))],
)
def test_group_option_instantiates(group, option):
    cfg = compose("render", [f"{group}={option}"])
    assert instantiate(cfg[group]) is not None


@pytest.mark.parametrize("option", [p.stem for p in (configs_dir() / "companion").glob("*.yaml")])
def test_companions_load(option):
    spec = companion_from_config(compose("render", [f"companion={option}"]))
    assert spec.images


def test_unknown_key_fails_at_compose():
    with pytest.raises(ConfigCompositionException, match="motion.not_a_knob"):
        compose("render", ["motion.not_a_knob=1"])


def test_missing_constructor_argument_fails_at_instantiate():
    cfg = compose("render", ["~motion.fps"])
    with pytest.raises(Exception, match="fps"):
        instantiate(cfg.motion)
