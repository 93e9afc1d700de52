"""``avatar-render``: the Hydra entry point that renders a companion speaking to an MP4."""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from avatar.companion import configs_dir
from avatar.errors import AvatarError

log = logging.getLogger("avatar.render")


@hydra.main(config_path=str(configs_dir()), config_name="render", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Render ``cfg.text`` spoken by ``cfg.companion`` to ``cfg.out``; exit 2 on bad input."""
    from avatar.config import companion_from_config, pipeline_from_config

    try:
        companion = companion_from_config(cfg)
        pipeline = pipeline_from_config(cfg)
        result = pipeline.render_text(companion, cfg.text, cfg.out)
    except AvatarError as e:
        log.error("%s: %s", type(e).__name__, e)
        sys.exit(2)
    log.info(
        "%s: %d frames at %g fps, %.2f s of audio, real-time factor %.3f",
        result.path, result.n_frames, result.fps, result.audio_seconds, result.real_time_factor,
    )


if __name__ == "__main__":
    main()
