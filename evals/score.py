"""Score one video made by any system and print every applicable metric as JSON.

    python -m evals.score video=clip.mp4 [audio=speech.wav] [companion.images=[a.png,b.png]]
                          [suite=nightly] [features.floor_db=-60] [score.max_seconds=1800]

Arguments are Hydra overrides of ``configs/eval.yaml``: the suite's metrics are the ones the
nightly runner uses, so peers' clips (Wav2Lip, MuseTalk, LatentSync, LivePortrait, hosted avatars)
are measured exactly like ours. With ``audio=`` the speech is taken from that file (aligned to the
video's first frame) instead of the MP4's own track; identity metrics need ``companion.images``.
Speed metrics need the renderer's timings and are reported as skipped, as are the lip-sync
metrics of a clip without audio and metrics a clip is too short for. Keys: ``media/*`` container
facts, ``face/detection_rate``, ``<group>/<metric>`` values, and ``skipped`` reasons.

The clip is decoded frame by frame and never held whole (:func:`evals.features.features_from_file`),
so memory does not grow with its length; its duration is checked against ``score.max_seconds``
from the container before any decoding. Bad input (a missing, undecodable, truncated or
over-long file, bad arguments, a clip no metric applies to) prints one line on stderr and exits
2; a bug exits 1 with its traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from avatar.companion import load_image
from avatar.entry_errors import report
from avatar.errors import AvatarError, ConfigValueError
from avatar.media import probe_mp4, read_audio
from avatar.quiet import NativeStderrFilter, quiet_native_logs
from evals.errors import UnscorableClip
from evals.features import features_from_file
from evals.results import json_ready
from evals.run import suite_spec
from evals.suite import Suite
from evals.weights import external_status, load_registry

log = logging.getLogger(__name__)

__all__ = ["main", "score_video"]

MAX_SECONDS_KEY = "score.max_seconds"

_MEDIA_KEYS = (
    "video_codec",
    "audio_codec",
    "width",
    "height",
    "fps",
    "n_video_frames",
    "video_duration",
    "audio_duration",
)


def _audio_file(path: str | Path, max_seconds: float) -> tuple[np.ndarray, int] | str:
    """(mono samples, rate) of an ``audio=`` file, or why it has no audio to score against.

    Raises:
        AudioFormatError: the file is missing or not decodable.
        UnscorableClip: its audio is longer than ``max_seconds`` (read from the container).
    """
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return f"audio={path} has no audio track"
            stream = container.streams.audio[0]
            seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
    except (av.FFmpegError, OSError):
        seconds = 0.0  # not a media file we can open: read_audio names the problem
    if seconds > max_seconds:
        raise UnscorableClip(
            f"audio={path} is {seconds:.4g} s long, over {MAX_SECONDS_KEY}={max_seconds:g} "
            f"(raise {MAX_SECONDS_KEY} to score it)"
        )
    return read_audio(path, mono=True)


def score_video(
    video: str | Path,
    suite: Suite,
    *,
    audio: str | Path | None = None,
    references: Sequence[np.ndarray] = (),
    feature_options: Mapping[str, Any],
    max_seconds: float,
) -> dict[str, Any]:
    """Every metric of ``suite`` that applies to one video file.

    Args:
        video: any video FFmpeg reads (MP4 with H.264 + AAC typically).
        suite: the metrics (a fresh :class:`~evals.suite.Suite`).
        audio: an audio file to use instead of the video's own track (starts at frame 0).
        references: the companion's reference images, (H, W, 3) uint8 each.
        feature_options: the ``features`` config node: keyword arguments of
            :func:`~evals.features.features_from_file` (``floor_db``, ``min_confidence``,
            ``mask_margin``).
        max_seconds: longest video (and ``audio``) accepted, seconds (``score.max_seconds``).

    Returns:
        A flat JSON-ready dict (see the module docstring).

    Raises:
        VideoFormatError: the video is missing, undecodable or truncated.
        AudioFormatError: ``audio`` is missing or undecodable.
        UnscorableClip: the video is longer than ``max_seconds``, or no metric applies to it.
        ConfigValueError: ``max_seconds`` is not positive.
    """
    if not max_seconds > 0:
        raise ConfigValueError(f"{MAX_SECONDS_KEY} must be > 0 seconds, got {max_seconds}")
    info = probe_mp4(video)
    if info["video_duration"] > max_seconds:
        raise UnscorableClip(
            f"{video} is {info['video_duration']:.4g} s long, over {MAX_SECONDS_KEY}="
            f"{max_seconds:g} (raise {MAX_SECONDS_KEY} to score it)"
        )
    samples = _audio_file(audio, max_seconds) if audio is not None else None
    if samples is None and info["audio_codec"] is None:
        samples = f"no audio track in {video} (give audio=FILE to score lip sync)"
    feats = features_from_file(
        video,
        audio=samples if isinstance(samples, tuple) else None,
        audio_missing=samples if isinstance(samples, str) else None,
        references=list(references) or None,
        **dict(feature_options),
    )
    values, skipped = suite.score_clip(feats.inputs(), feats.missing())
    if not values:
        by_reason: dict[str, list[str]] = {}
        for key, reason in skipped.items():
            by_reason.setdefault(reason.removeprefix("skipped: "), []).append(key)
        reasons = "; ".join(f"{r} ({', '.join(keys)})" for r, keys in by_reason.items())
        raise UnscorableClip(f"{video}: no metric of the suite applies: {reasons}")
    report: dict[str, Any] = {f"media/{k}": info[k] for k in _MEDIA_KEYS}
    report["media/path"] = str(video)
    report["media/audio_source"] = str(audio) if audio is not None else "video"
    report["face/detection_rate"] = feats.track.detection_rate
    report.update(values)
    report["skipped"] = skipped
    clean: dict[str, Any] = json_ready(report)
    return clean


def _references(refs: Sequence[str]) -> list[np.ndarray]:
    """The companion's reference images, read within the renderer's image limits."""
    if not refs:
        return []
    from avatar.config import compose

    limits = compose("render").identity  # identity.max_image_megapixels, .max_image_side
    return [
        load_image(ref, max_megapixels=limits.max_image_megapixels, max_side=limits.max_image_side)
        for ref in refs
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: prints the :func:`score_video` report as JSON; exit codes as
    :mod:`avatar.entry_errors` says (2 on bad input, one line on stderr)."""
    with quiet_native_logs() as native:
        return _main(list(sys.argv[1:] if argv is None else argv), native)


def _main(overrides: list[str], native: NativeStderrFilter) -> int:
    from avatar.config import compose

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = compose("eval", overrides)
        native.verbose = bool(cfg.verbose)
        if not cfg.video:
            raise ConfigValueError(
                "video is required: video=PATH (usage: python -m evals.score video=clip.mp4 "
                "[audio=speech.wav] [companion.images=[a.png]])"
            )
        spec = suite_spec(cfg.suite)
        suite, external = spec.factory(), spec.external
        registry = load_registry(OmegaConf.to_container(cfg.weights, resolve=True))  # type: ignore[arg-type]
        skipped = external_status(external, registry)
        scores = score_video(
            cfg.video,
            suite,
            audio=cfg.audio,
            references=_references(list(cfg.companion.images)),
            feature_options=dict(cfg.features),
            max_seconds=float(cfg.score.max_seconds),
        )
    except (AvatarError, HydraException, OmegaConfBaseException) as exc:
        return report(exc)
    scores["skipped"] = skipped | scores["skipped"]
    sys.stdout.write(json.dumps(scores, indent=2, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
