"""The service's entry-point configuration: compose ``configs/serve.yaml`` (Hydra) into
:class:`~serve.settings.ServeSettings` and the render pipelines' factory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

from avatar.config import PipelineFactory, compose, pipeline_factory
from serve.settings import ServeSettings

__all__ = ["load"]


def load(overrides: Sequence[str] = ()) -> tuple[ServeSettings, PipelineFactory]:
    """Settings (config + environment) and the pipeline factory of the served renders.

    The pipelines keep their identity cache in ``var_dir/identity`` unless the render
    overrides say otherwise.
    """
    cfg: Any = OmegaConf.to_container(compose("serve", list(overrides)), resolve=True)
    settings = ServeSettings.from_config(cfg)
    render = [f"identity.cache_dir={settings.var_dir / 'identity'}", *settings.render_overrides]
    return settings, pipeline_factory(render)
