"""``avatar-render``: the Hydra entry point that renders a companion speaking to an MP4.

Exit codes:
    0: the MP4 was written.
    1: a bug: the traceback is on stderr.
    2: bad input or configuration: one line ``error: <Class>: <message>`` on stderr, naming the
       problem and the fix; nothing is written.
    128 + N: stopped by signal N (130 for SIGINT / Ctrl-C, 143 for SIGTERM); the partial output
       is removed.

Inputs are checked before any work, in this order: the mode's keys (see ``configs/render.yaml``
and :mod:`avatar.render_request`), the output path, the text, the companion, the configured
components, the voice; then the audio file is read and the render starts.

``drive=<video>``: the face in a video drives the companion (:mod:`avatar.drive`); the MP4 has
the video's duration and carries its soundtrack (silence when it has none). It takes no text,
audio or listen keys.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import avatar.config  # noqa: F401  (registers the ${repo:...} config resolver)
from avatar.companion import CompanionSpec, configs_dir
from avatar.entry_errors import report
from avatar.errors import ConfigValueError, Terminated
from avatar.media import (
    check_output_path,
    load_audio,
)
from avatar.pipeline import Pipeline, RenderResult
from avatar.quiet import NativeStderrFilter, quiet_native_logs
from avatar.render_request import MODE_KEYS, Request, make_request

__all__ = ["hydra_for_one_call", "main", "request_from_config", "run"]

log = logging.getLogger("avatar.render")

_NULL_DEFAULT = ("text_file", "audio", "listen", "transcript", "emotion")  # set = not null
_NOT_WITH_DRIVE = (*_NULL_DEFAULT, "text", "mouth_source", "emotion_intensity")
_LITERAL = ("text", "transcript", "emotion")  # user text: read without interpolation


def given_keys() -> set[str]:
    """The keys set on the command line of the running Hydra job (``a.b=1`` gives ``a.b``)."""
    return {o.split("=", 1)[0].lstrip("+~") for o in HydraConfig.get().overrides.task}


def request_from_config(cfg: DictConfig, given: set[str]) -> Request:
    """The checked request of a composed ``render`` config (see :mod:`avatar.render_request`).

    ``text`` and ``transcript`` are read as given, without resolving ``${...}`` in them. A key
    with a null default counts as set when it is not null; ``text``, ``mouth_source`` and
    ``emotion_intensity`` count as set only when given on the command line (``given``).
    """
    raw = OmegaConf.to_container(OmegaConf.masked_copy(cfg, list(_LITERAL)), resolve=False)
    values = {k: raw[k] if k in _LITERAL else cfg[k] for k in (*MODE_KEYS, "out")}  # type: ignore[index]
    set_keys = {k for k in _NULL_DEFAULT if values[k] is not None}
    set_keys |= {k for k in ("text", "mouth_source", "emotion_intensity") if k in given}
    return make_request(values, set_keys)


def _render(
    pipeline: Pipeline, companion: CompanionSpec, request: Request, max_audio_seconds: float
) -> RenderResult:
    """Run the request's mode (recordings longer than ``max_audio_seconds`` are refused)."""
    if request.mode == "listen":
        assert request.audio is not None
        recording = load_audio(request.audio, max_seconds=max_audio_seconds)
        return pipeline.render_listening(companion, recording, request.out)
    if request.mode == "audio":
        assert request.audio is not None
        return pipeline.render_audio(
            companion,
            load_audio(request.audio, max_seconds=max_audio_seconds),
            request.out,
            transcript=request.transcript,
            mouth_source=request.mouth_source,
        )
    return pipeline.render_text(
        companion,
        request.text,  # type: ignore[arg-type]  (None or "" is refused by the voice)
        request.out,
        emotion=request.emotion,
        emotion_intensity=request.emotion_intensity,
    )


def _drive_request(cfg: DictConfig, given: set[str]) -> tuple[str, Path]:
    """(video, out) of a ``drive=`` render; keys of the other modes are an error."""
    video = cfg.get("drive")
    clash = [
        k for k in _NOT_WITH_DRIVE if (k in given) or (k in _NULL_DEFAULT and cfg[k] is not None)
    ]
    if clash:
        keys = ", ".join(f"{k}=" for k in clash)
        raise ConfigValueError(
            f"{keys} cannot be used with drive= (the video brings the motion and the sound); "
            "remove " + ("them" if len(clash) > 1 else "it")
        )
    if not str(video).strip():
        raise ConfigValueError("drive= is empty: give the path of a video with a face")
    out = check_output_path(None if cfg.out is None else str(cfg.out), key="out")
    return str(video), out


def _job(cfg: DictConfig, native: NativeStderrFilter) -> None:
    """Render one request (inside Hydra's job: the run directory and logging are set up)."""
    age_at_main = process_age_s()
    t_main = time.perf_counter()
    native.verbose = bool(cfg.get("verbose", False))
    from avatar.config import companion_from_config, pipeline_from_config

    given = given_keys()
    drive = _drive_request(cfg, given) if cfg.get("drive") is not None else None
    request = None if drive else request_from_config(cfg, given)
    companion = companion_from_config(cfg)
    pipeline = pipeline_from_config(cfg)
    if request is not None and request.mode == "text":
        pipeline.voices.get(companion.voice)  # an unknown voice fails before any work
    t_call = time.perf_counter()
    limit = float(cfg.max_audio_seconds)
    if drive is not None:
        from avatar.drive import render_drive  # scipy's solvers load only for drive=

        result = render_drive(pipeline, companion, *drive, max_seconds=limit)
    else:
        assert request is not None
        result = _render(pipeline, companion, request, limit)
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


# -- the one error path ------------------------------------------------------------------------


@contextlib.contextmanager
def _signals_stop_the_render() -> Iterator[None]:
    """SIGTERM and SIGINT raise :class:`Terminated` in the main thread, so open outputs are
    deleted as it unwinds; a second signal stops the process at once (default action)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.getsignal(s) for s in watched}

    def stop(signum: int, _frame: FrameType | None) -> None:
        for s in watched:
            signal.signal(s, signal.SIG_DFL)
        raise Terminated(signum)

    for s in watched:
        signal.signal(s, stop)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def hydra_for_one_call(argv: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` set to ``argv``, Hydra's errors raised (not printed) and the logging setup
    put back afterwards, so that :func:`run` can be called in a process more than once."""
    saved_argv, saved_env = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    sys.argv = [saved_argv[0] if saved_argv else "avatar-render", *argv]
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        sys.argv = saved_argv
        if saved_env is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_env
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def _hydra_app(job: Callable[[DictConfig], None]) -> Callable[[], None]:
    return hydra.main(config_path=str(configs_dir()), config_name="render", version_base="1.3")(job)


def run(argv: Sequence[str] | None = None) -> int:
    """Run ``avatar-render`` with these command-line arguments (Hydra overrides and flags).

    Args:
        argv: the arguments after the program name (None: ``sys.argv[1:]``).

    Returns:
        The exit code (see the module): 0, 1, 2 or 128 + a signal number.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    errors: list[BaseException] = []

    with quiet_native_logs() as native:

        def job(cfg: DictConfig) -> None:
            try:
                _job(cfg, native)
            except Exception as exc:  # kept from Hydra, which would print a line of its own
                errors.append(exc)

        try:
            with hydra_for_one_call(argv), _signals_stop_the_render():
                _hydra_app(job)()
        except SystemExit as exc:  # --help, --cfg job, argparse errors
            code = exc.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except BaseException as exc:  # Hydra's composition errors, signals
            errors.append(exc)
        return report(errors[0] if errors else None)


def main() -> None:
    """The ``avatar-render`` console script."""
    sys.exit(run())


if __name__ == "__main__":
    main()
