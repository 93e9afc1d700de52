"""``python -m serve.simulate``: a real-time call without a LiveKit server, written to an MP4.

    python -m serve.simulate audio=speech.wav out=out/published.mp4
    python -m serve.simulate audio=speech.wav interrupt_at=1.5 tail_s=10 listen=user.wav

The real ``AvatarRunner`` (:class:`~serve.livekit.runner.CompanionAvatarRunner`) and the
companion's generator publish into an in-process room; LiveKit's own ``VideoStream`` and
``AudioStream`` read the local tracks back, and the MP4 holds exactly that, in publish time
(see :mod:`serve.livekit.simulation` for the schedule, ``configs/simulate.yaml`` for the keys).
It runs in real time: a 10 s call takes 10 s. Exit codes as ``avatar-render``: 0 written,
2 bad input (one line naming it), 1 a bug, 128 + N a signal.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

import avatar.config  # noqa: F401  (registers the ${repo:...} config resolver)
from avatar.cli import hydra_for_one_call
from avatar.companion import configs_dir
from avatar.entry_errors import report
from avatar.errors import ConfigValueError
from avatar.media import load_audio
from avatar.media.outputs import check_output_path
from avatar.quiet import quiet_native_logs

log = logging.getLogger("serve.simulate")

_NOT_HERE = ("text", "text_file", "transcript", "mouth_source", "emotion", "emotion_intensity")


def _check_keys(cfg: DictConfig) -> None:
    given = {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}
    wrong = sorted(given & set(_NOT_HERE))
    if wrong:
        raise ConfigValueError(
            f"{', '.join(wrong)}: not a simulate key (it plays a recording: give audio= and "
            "optionally listen=, interrupt_at=, tail_s=)"
        )
    if cfg.audio is None and cfg.listen is None:
        raise ConfigValueError("give audio=<the companion's speech> and/or listen=<the user's>")
    for key in ("tail_s", "lead_s"):
        if not float(cfg[key]) >= 0:
            raise ConfigValueError(f"{key} must be >= 0 seconds, got {cfg[key]}")
    if cfg.interrupt_at is not None and not float(cfg.interrupt_at) >= 0:
        raise ConfigValueError(f"interrupt_at must be >= 0 seconds, got {cfg.interrupt_at}")


def _job(cfg: DictConfig) -> None:
    from avatar.config import companion_from_config, pipeline_from_config
    from serve.livekit.companion import RealtimeSettings, open_generator
    from serve.livekit.published_mp4 import write_published_mp4
    from serve.livekit.simulation import simulate_call

    _check_keys(cfg)
    out = check_output_path(cfg.out, suffix=".mp4")
    limit = float(cfg.max_audio_seconds)
    speech = load_audio(cfg.audio, max_seconds=limit) if cfg.audio is not None else None
    user = load_audio(cfg.listen, max_seconds=limit) if cfg.listen is not None else None
    settings = RealtimeSettings.from_config(cfg.realtime)
    pipeline = pipeline_from_config(cfg)
    gen = open_generator(pipeline, companion_from_config(cfg), settings, seed=cfg.motion.seed)
    result = asyncio.run(
        simulate_call(
            gen,
            speech,
            lead_s=float(cfg.lead_s),
            listen=user,
            interrupt_at=None if cfg.interrupt_at is None else float(cfg.interrupt_at),
            tail_s=float(cfg.tail_s),
        )
    )
    write_published_mp4(result.recording, out, fps=gen.fps, encoder=pipeline.encoder)
    stats = gen.stats
    log.info(
        "%s: %d video frames published (%d speech, %d idle), playback %s s%s",
        out,
        len(result.recording.video),
        stats.speech_frames,
        stats.idle_frames,
        "-" if result.playback_position is None else f"{result.playback_position:.3f}",
        " (interrupted)" if result.interrupted else "",
    )


def main() -> None:
    """The ``python -m serve.simulate`` entry point."""
    errors: list[BaseException] = []

    def job(cfg: DictConfig) -> None:
        try:
            _job(cfg)
        except Exception as exc:
            errors.append(exc)

    app = hydra.main(config_path=str(configs_dir()), config_name="simulate", version_base="1.3")
    with quiet_native_logs(), hydra_for_one_call(sys.argv[1:]):  # Hydra's errors raised
        try:
            app(job)()
        except SystemExit as exc:
            code = exc.code
            sys.exit(code if isinstance(code, int) else (0 if code is None else 1))
        except BaseException as exc:
            errors.append(exc)
    sys.exit(report(errors[0] if errors else None))


if __name__ == "__main__":
    main()
