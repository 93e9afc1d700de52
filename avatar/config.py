"""Hydra config at the entry points: compose ``configs/`` and build the pipeline from it.

Only entry points (the CLI, :func:`avatar.pipeline.render_mp4`, notebooks, serve) call this;
everything below receives plain objects.
"""

from __future__ import annotations

from collections.abc import Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avatar.companion import CompanionSpec, configs_dir
from avatar.pipeline import EncoderSettings, IdentitySettings, Pipeline, StreamingSettings


def repo_path(relative: str) -> str:
    """``${repo:checkpoints/x.ckpt}`` in configs: a path inside the repository, absolute."""
    return str(configs_dir().parent / relative)


if not OmegaConf.has_resolver("repo"):
    OmegaConf.register_new_resolver("repo", repo_path)


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with Hydra ``overrides`` (no Hydra app needed)."""
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def companion_from_config(cfg: DictConfig) -> CompanionSpec:
    """The CompanionSpec of ``cfg.companion`` (a config group, so overridable per key)."""
    data = OmegaConf.to_container(cfg.companion, resolve=True)
    return CompanionSpec.from_dict(data)


def pipeline_from_config(cfg: DictConfig) -> Pipeline:
    """Instantiate every stage named in a ``render`` config."""
    return Pipeline(
        tts=instantiate(cfg.tts),
        aligner=instantiate(cfg.aligner) if cfg.get("aligner") else None,
        motion=instantiate(cfg.motion),
        renderer=instantiate(cfg.renderer),
        encoder=EncoderSettings(**OmegaConf.to_container(cfg.encoder, resolve=True)),
        identity=IdentitySettings(**OmegaConf.to_container(cfg.identity, resolve=True)),
        learned=instantiate(cfg.learned) if cfg.get("learned") else None,
        streaming=StreamingSettings(**OmegaConf.to_container(cfg.streaming, resolve=True)),
    )
