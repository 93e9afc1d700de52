"""``avatar-render``: the Hydra entry point that renders a companion speaking to an MP4."""

from __future__ import annotations

import logging
import os
import sys
import time

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

import avatar.config  # noqa: F401  (registers the ${repo:...} config resolver)
from avatar.companion import CompanionSpec, configs_dir
from avatar.errors import AvatarError
from avatar.media import load_audio
from avatar.pipeline import Pipeline, RenderResult

log = logging.getLogger("avatar.render")


def process_age_s() -> float:
    """Seconds since this process started (Linux ``/proc``; NaN elsewhere)."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _render(pipeline: Pipeline, companion: CompanionSpec, cfg: DictConfig) -> RenderResult:
    """Dispatch on the inputs given: ``listen``, ``audio`` (+ ``transcript``) or ``text``."""
    if cfg.listen and cfg.audio:
        raise AvatarError("give either audio= (the companion speaks) or listen= (it listens)")
    if cfg.listen:
        return pipeline.render_listening(companion, load_audio(cfg.listen), cfg.out)
    if cfg.audio:
        return pipeline.render_audio(
            companion,
            load_audio(cfg.audio),
            cfg.out,
            transcript=cfg.transcript,
            mouth_source=cfg.mouth_source,
        )
    return pipeline.render_text(
        companion, cfg.text, cfg.out, emotion=cfg.emotion, emotion_intensity=cfg.emotion_intensity
    )


@hydra.main(config_path=str(configs_dir()), config_name="render", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """Render ``cfg.text`` spoken by ``cfg.companion`` to ``cfg.out``; exit 2 on bad input."""
    age_at_main = process_age_s()
    t_main = time.perf_counter()
    from avatar.config import companion_from_config, pipeline_from_config

    try:
        companion = companion_from_config(cfg)
        pipeline = pipeline_from_config(cfg)
        t_call = time.perf_counter()
        result = _render(pipeline, companion, cfg)
    except AvatarError as e:
        log.error("%s: %s", type(e).__name__, e)
        sys.exit(2)
    except InstantiationException as e:  # a constructor refused a config value
        log.error("bad configuration: %s", e)
        sys.exit(2)
    cold_start = age_at_main + (t_call - t_main) + result.timings["first_frame"]
    log.info(
        "%s: %d frames at %g fps, %.2f s of audio, real-time factor %.3f",
        result.path,
        result.n_frames,
        result.fps,
        result.audio_seconds,
        result.real_time_factor,
    )
    log.info(
        "cold start: first frame %.3f s after process start (torch imported: %s)",
        cold_start,
        "torch" in sys.modules,
    )


if __name__ == "__main__":
    main()
