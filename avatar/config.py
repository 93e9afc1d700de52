"""Hydra config at the entry points: compose ``configs/`` and build pipelines from it.

Only entry points (the CLI, :func:`avatar.render.render_mp4`, ``train``, ``evals.run``, notebooks,
``serve``) call this; everything below receives plain objects. Code that needs pipelines of its
own (corpus rendering in worker processes, benchmarks) receives a :class:`PipelineFactory`
made here: a resolved config, picklable, that builds a pipeline without composing anything.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from avatar.companion import CompanionSpec, configs_dir
from avatar.errors import ConfigValueError
from avatar.identity.derive import IdentitySettings
from avatar.long_text import LongTextSettings
from avatar.media import EncoderSettings
from avatar.pipeline import Pipeline
from avatar.streaming import StreamingSettings

__all__ = [
    "PipelineFactory",
    "companion_from_config",
    "compose",
    "pipeline_factory",
    "pipeline_from_config",
]

_COMPOSE_LOCK = threading.Lock()  # Hydra's global state is process-wide, not thread-safe


def repo_path(relative: str) -> str:
    """``${repo:checkpoints/x.ckpt}`` in configs: a path inside the repository, absolute."""
    return str(configs_dir().parent / relative)


if not OmegaConf.has_resolver("repo"):
    OmegaConf.register_new_resolver("repo", repo_path)


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``configs/<config_name>.yaml`` with Hydra ``overrides`` (thread-safe).

    Inside a running Hydra app (``@hydra.main``: train, evals.run) Hydra is initialized with
    this same config tree, and composing from it leaves the app's state alone; elsewhere the
    tree is initialized for the call.
    """
    with _COMPOSE_LOCK:
        if GlobalHydra.instance().is_initialized():
            return hydra_compose(config_name=config_name, overrides=list(overrides))
        with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))


def _plain(node: Any) -> dict[str, Any]:
    out = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    return dict(out)


def companion_from_config(cfg: DictConfig | Mapping[str, Any]) -> CompanionSpec:
    """The CompanionSpec of ``cfg.companion`` (a config group, so overridable per key)."""
    return CompanionSpec.from_dict(_plain(cfg["companion"]))


def pipeline_from_config(cfg: DictConfig | Mapping[str, Any], **components: Any) -> Pipeline:
    """Instantiate every stage named in a ``render`` config (composed or resolved to a dict).

    Args:
        cfg: the render config.
        components: :class:`Pipeline` arguments given as objects instead of built from
            ``cfg`` (a renderer trained in a notebook, a learned-motion loader, ...).
    """
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    builders = {
        "voices": lambda: instantiate(cfg.voices),
        "aligner": lambda: instantiate(cfg.aligner) if cfg.get("aligner") else None,
        "motion": lambda: instantiate(cfg.motion),
        "renderer": lambda: instantiate(cfg.renderer),
        "encoder": lambda: EncoderSettings(**_plain(cfg.encoder)),
        "identity": lambda: IdentitySettings(**_plain(cfg.identity)),
        "identities_in_memory": lambda: _whole(cfg.memory.identities, "memory.identities"),
        "learned": lambda: instantiate(cfg.learned) if cfg.get("learned") else None,
        "streaming": lambda: StreamingSettings(**_plain(cfg.streaming)),
        "render_threads": lambda: _whole(cfg.render_threads, "render_threads"),
        "render_processes": lambda: _whole(cfg.render_processes, "render_processes"),
        "render_processes_min_frames": lambda: _whole(
            cfg.render_processes_min_frames, "render_processes_min_frames"
        ),
        "long_text": lambda: LongTextSettings(**_plain(cfg.long_text)),
    }
    unknown = sorted(set(components) - set(builders))
    if unknown:
        raise TypeError(f"pipeline_from_config: unknown components {unknown}")
    return Pipeline(**{k: components[k] if k in components else b() for k, b in builders.items()})


def _whole(value: Any, key: str) -> int:
    """``value`` as an int, or a ConfigValueError naming ``key`` (``abc``, ``1.5``, ``true``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        ok = isinstance(value, float) and value.is_integer()
    else:
        ok = isinstance(value, int) or value.strip().lstrip("-").isdigit()
    if not ok:
        raise ConfigValueError(f"{key} must be a whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class PipelineFactory:
    """Builds pipelines from one resolved ``render`` config; picklable, so it crosses process
    boundaries (spawned corpus workers) without composing Hydra there.

    Attributes:
        config: the resolved render config as plain containers (logged by benchmarks).
        overrides: the Hydra overrides it was composed with (for cache keys and logs).
    """

    config: dict[str, Any] = field(repr=False)
    overrides: tuple[str, ...] = ()

    def __call__(self, *, size: int | None = None) -> Pipeline:
        """A new pipeline; ``size`` replaces ``renderer.size`` when given."""
        config = copy.deepcopy(self.config)
        if size is not None:
            config["renderer"]["size"] = int(size)
        return pipeline_from_config(config)


def pipeline_factory(overrides: Sequence[str]) -> PipelineFactory:
    """Compose ``configs/render.yaml`` with ``overrides`` into a :class:`PipelineFactory`."""
    cfg = compose("render", list(overrides))
    resolved = OmegaConf.to_container(cfg, resolve=True)
    return PipelineFactory(resolved, tuple(overrides))  # type: ignore[arg-type]
