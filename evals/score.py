"""Score one video made by any system and print every applicable metric as JSON.

    python -m evals.score video=clip.mp4 [audio=speech.wav] [companion.images=[a.png,b.png]]
                          [suite=nightly] [features.floor_db=-60]

Arguments are Hydra overrides of ``configs/eval.yaml``: the suite's metrics are the ones the
nightly runner uses, so peers' clips (Wav2Lip, MuseTalk, LatentSync, LivePortrait, hosted avatars)
are measured exactly like ours. With ``audio=`` the speech is taken from that file (aligned to the
video's first frame) instead of the MP4's own track; identity metrics need ``companion.images``.
Speed metrics need the renderer's timings and are reported as skipped. Keys: ``media/*`` container
facts, ``face/detection_rate``, ``<group>/<metric>`` values, and ``skipped`` reasons.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from avatar.companion import load_image
from avatar.errors import AvatarError
from avatar.media import probe_mp4, read_audio, read_mp4
from evals.features import extract_features
from evals.results import json_ready
from evals.suite import Suite
from evals.weights import external_status, load_registry

log = logging.getLogger(__name__)

__all__ = ["main", "score_video"]

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


def score_video(
    video: str | Path,
    suite: Suite,
    *,
    audio: str | Path | None = None,
    references: Sequence[str] = (),
    feature_options: Mapping[str, Any],
) -> dict[str, Any]:
    """Every metric of ``suite`` that applies to one video file.

    Args:
        video: any video FFmpeg reads (MP4 with H.264 + AAC typically).
        suite: the metrics (a fresh :class:`~evals.suite.Suite`).
        audio: an audio file to use instead of the video's own track (starts at frame 0).
        references: the companion's image refs (paths or ``embedded:astronaut``).
        feature_options: the ``features`` config node: keyword arguments of
            :func:`~evals.features.extract_features` (``floor_db``, ``min_confidence``,
            ``mask_margin``).

    Returns:
        A flat JSON-ready dict (see the module docstring).
    """
    info = probe_mp4(video)
    clip = read_mp4(video)
    samples, rate = clip.audio, clip.sample_rate
    if audio is not None:
        samples, rate = read_audio(audio, mono=True)
        n = round(clip.n_frames / clip.fps * rate)
        samples = np.pad(samples[:n], (0, max(0, n - len(samples))))
    refs = [load_image(ref) for ref in references]
    feats = extract_features(
        clip.frames, clip.fps, samples, rate, references=refs or None, **dict(feature_options)
    )
    values, skipped = suite.score_clip(feats.inputs())
    report: dict[str, Any] = {f"media/{k}": info[k] for k in _MEDIA_KEYS}
    report["media/path"] = str(video)
    report["media/audio_source"] = str(audio) if audio is not None else "video"
    report["face/detection_rate"] = feats.track.detection_rate
    report.update(values)
    report["skipped"] = skipped
    clean: dict[str, Any] = json_ready(report)
    return clean


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: prints the :func:`score_video` report as JSON; 2 on bad input."""
    from avatar.config import compose

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = compose("eval", overrides)
    except HydraException as exc:
        log.error("bad arguments: %s", exc)
        return 2
    if not cfg.video:
        log.error(
            "missing video=PATH (usage: python -m evals.score video=clip.mp4 "
            "[audio=speech.wav] [companion.images=[a.png]])"
        )
        return 2
    suite = Suite(
        {g: {n: instantiate(m) for n, m in cfg.suite[g].metrics.items()} for g in cfg.suite}
    )
    external = {
        f"{g}/{k}": str(v)
        for g in cfg.suite
        for k, v in (cfg.suite[g].get("external") or {}).items()
    }
    try:
        registry = load_registry(OmegaConf.to_container(cfg.weights, resolve=True))  # type: ignore[arg-type]
        skipped = external_status(external, registry)
        report = score_video(
            cfg.video,
            suite,
            audio=cfg.audio,
            references=list(cfg.companion.images),
            feature_options=dict(cfg.features),
        )
    except AvatarError as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 2
    report["skipped"] = skipped | report["skipped"]
    sys.stdout.write(json.dumps(report, indent=2, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
