"""Every option of every config group composes and instantiates; bad keys fail at compose."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, get_object, instantiate
from omegaconf import OmegaConf

from avatar.companion import configs_dir
from avatar.config import companion_from_config, compose

GROUPS = ["voices", "aligner", "motion", "renderer"]
# groups whose every option is instantiated elsewhere (train groups need a run directory)
INSTANTIATED_ELSEWHERE = {
    "model": "tests/avatar/test_audio2motion.py",
    "data": "tests/avatar/test_audio2motion.py",
    "trainer": "tests/avatar/test_audio2motion.py",
    "callbacks": "tests/avatar/test_audio2motion.py",
    "logger": "tests/avatar/test_audio2motion.py",
    "suite": "tests/evals/test_configs_eval.py",
}


def _has_target(node: Any) -> bool:
    if isinstance(node, dict):
        return "_target_" in node or any(_has_target(v) for v in node.values())
    return isinstance(node, list) and any(_has_target(v) for v in node)


def _yaml(path: Path) -> Any:
    return OmegaConf.to_container(OmegaConf.load(path), resolve=False)


@pytest.mark.parametrize(
    "group,option",
    [(g, p.stem) for g in GROUPS for p in sorted((configs_dir() / g).glob("*.yaml"))],
)
def test_group_option_instantiates(group, option, tmp_path):
    cfg = compose("render", [f"{group}={option}", *_needs(group, option, tmp_path)])
    assert isinstance(instantiate(cfg[group]), get_class(cfg[group]._target_))


def _needs(group: str, option: str, tmp_path: Path) -> list[str]:
    """Overrides an option cannot build without: the neural renderer's checkpoint (a tiny
    untrained network saved here; the renderer refuses a null ckpt_path by name)."""
    if (group, option) != ("renderer", "neural"):
        return []
    from avatar.checkpoint import save_network
    from avatar.modules.refine_unet import WarpRefineNet
    from avatar.motion.track import CHANNELS

    net = WarpRefineNet(motion_dim=len(CHANNELS), base_channels=4, depth=2)
    return [f"renderer.ckpt_path={save_network(tmp_path / 'neural.ckpt', net)}"]


@pytest.mark.parametrize("option", [p.stem for p in (configs_dir() / "companion").glob("*.yaml")])
def test_companions_load(option):
    spec = companion_from_config(compose("render", [f"companion={option}"]))
    expected = yaml.safe_load((configs_dir() / "companion" / f"{option}.yaml").read_text())
    assert dataclasses.asdict(spec) == expected


def test_every_group_with_targets_is_instantiated_by_a_test():
    groups = {p.parent.name for p in configs_dir().glob("*/*.yaml") if _has_target(_yaml(p))}
    assert groups == set(GROUPS) | set(INSTANTIATED_ELSEWHERE)


@pytest.mark.parametrize(
    "root,key",
    [
        (p.stem, k)
        for p in sorted(configs_dir().glob("*.yaml"))
        for k, v in _yaml(p).items()
        if isinstance(v, dict) and "_target_" in v
    ],
)
def test_root_objects_instantiate(root, key):
    node = compose(root)[key]
    built, target = instantiate(node), get_object(node._target_)
    if isinstance(target, type):
        assert isinstance(built, target)
    else:  # a factory function (render.learned: a loader called on first use)
        assert callable(built) and not isinstance(built, type)


def test_weights_registry_loads_from_the_composed_config():
    from evals.weights import load_registry

    node = OmegaConf.to_container(compose("eval").weights, resolve=True)
    registry = load_registry(node)
    assert set(registry.specs) == set(node["entries"]) >= {"syncnet_v2", "arcface"}
    assert registry.strict is False


def test_unknown_key_fails_at_compose():
    with pytest.raises(ConfigCompositionException, match="motion.not_a_knob"):
        compose("render", ["motion.not_a_knob=1"])


def test_missing_constructor_argument_fails_at_instantiate():
    cfg = compose("render", ["~motion.fps"])
    with pytest.raises(Exception, match="fps"):
        instantiate(cfg.motion)
