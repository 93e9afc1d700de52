"""Checks one rendered MP4 against the foundation acceptance criteria and prints a JSON report.

    python -m evals.check_clip video=out/demo.mp4 [reference=embedded:astronaut[,b.png]]
                               [sample_every=5]

Measures container facts (codecs, size, fps, A/V durations), face detection over every frame
(MediaPipe), lip-sync proxies (A/V offset of mouth aperture against the speech envelope, mouth
closure in pauses, aperture in speech vs silence), blinks (count, rate, required count), and
ID-dlib identity distance of sampled frames to the companion's reference image(s). Keys are flat
and grouped by prefix (``media/``, ``face/``, ``lipsync/``, ``blink/``, ``identity/``,
``timing/``); NaN is written as null.
"""

from __future__ import annotations

import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avatar.companion import EMBEDDED_ASTRONAUT, load_image
from avatar.entry_errors import report
from avatar.errors import AvatarError, WeightsMissingError
from avatar.identity.derive import IdentitySettings
from avatar.media import probe_mp4, read_mp4
from evals.functional.blink import blink_rate_per_min, detect_blinks
from evals.functional.identity import SAME_PERSON_THRESHOLD, DlibFaceEmbedder, identity_distance
from evals.functional.lipsync import (
    av_offset,
    frame_level_db,
    pause_closure,
    speech_envelope,
    speech_motion,
)
from evals.functional.mouth import eye_openness, mouth_aperture
from evals.landmarks import track_video
from evals.results import json_ready

log = logging.getLogger(__name__)

__all__ = ["BLINK_PERIOD_S", "check_clip", "main"]

BLINK_PERIOD_S = 6.0
"""A clip must show at least ``floor(duration / BLINK_PERIOD_S)`` blinks."""
MAX_OFFSET = 8
"""Largest A/V lag searched, frames."""


def _identity(
    frames: np.ndarray,
    references: Sequence[str | np.ndarray],
    sample_every: int,
    embedder: DlibFaceEmbedder | None,
) -> dict[str, Any]:
    """ID-dlib of every ``sample_every``-th frame against the closest reference image."""
    try:
        embedder = embedder or DlibFaceEmbedder()
    except WeightsMissingError as exc:
        log.warning("identity skipped: %s", exc)
        return {"identity/skipped": f"weights absent: {exc}"}
    refs = []
    limits = _image_limits() if any(isinstance(r, str) for r in references) else {}
    for ref in references:
        emb = embedder.embed(load_image(ref, **limits) if isinstance(ref, str) else ref)
        if emb is None:
            log.warning("no face found by dlib in reference %s; not used", ref)
        else:
            refs.append(emb)
    sampled = frames[::sample_every]
    embs = [e for e in embedder.embed_many(sampled) if e is not None]
    out: dict[str, Any] = {
        "identity/metric": "ID-dlib",
        "identity/threshold": SAME_PERSON_THRESHOLD,
        "identity/references": [
            r if isinstance(r, str) else "aligned source portrait" for r in references
        ],
        "identity/frames_sampled": len(sampled),
        "identity/frames_no_face": len(sampled) - len(embs),
        "identity/mean": None,
        "identity/max": None,
    }
    if refs and embs:
        per_frame = identity_distance(np.stack(embs), np.stack(refs)).min(axis=1)  # (N,)
        out.update(
            {"identity/mean": float(per_frame.mean()), "identity/max": float(per_frame.max())}
        )
    return out


def check_clip(
    path: str | Path,
    *,
    references: Sequence[str] = (EMBEDDED_ASTRONAUT,),
    sample_every: int = 5,
    embedder: DlibFaceEmbedder | None = None,
    portrait: IdentitySettings | None = None,
) -> dict[str, Any]:
    """Measures one MP4 against the acceptance criteria.

    Args:
        path: the MP4 to check (H.264 + AAC as the pipeline writes it).
        references: image refs of the companion (paths or ``embedded:astronaut``); each sampled
            frame is compared with the closest one.
        sample_every: identity is measured on frames 0, N, 2N, ...
        embedder: the ID-dlib embedder (injected in tests); None loads dlib's models, and reports
            ``identity/skipped`` when they are not installed.
        portrait: identity settings to compare with the aligned source portrait the renderer
            animated (derived from ``references`` at the clip's size with them) instead of the
            raw images; use it when an image holds several faces. None: the raw images.

    Returns:
        A flat dict of JSON-ready values (floats, ints, bools, strings, None for NaN):
        ``media/*`` container facts and ``media/duration_diff_frames`` = |video - audio duration|
        * fps; ``face/detection_rate`` in [0, 1]; ``lipsync/av_offset_frames`` (> 0: video lags
        audio) and ``lipsync/av_confidence``; ``lipsync/n_pauses`` (silences >= 0.3 s),
        ``lipsync/pause_max_aperture``, ``lipsync/pauses_all_closed``,
        ``lipsync/pause_closed_fraction``; ``lipsync/aperture_speech`` and ``_silence`` means;
        ``blink/count``, ``blink/rate_per_min``, ``blink/required`` (floor(duration / 6)),
        ``blink/ok``; ``identity/mean`` and ``identity/max`` (ID-dlib, < 0.6 = same person);
        ``timing/*`` wall seconds.
    """
    if sample_every < 1:
        raise ValueError(f"sample_every must be >= 1, got {sample_every}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info = probe_mp4(path)
    clip = read_mp4(path)
    fps, n = clip.fps, clip.n_frames
    timings["decode"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    track = track_video(clip.frames, fps)
    timings["track"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    aperture = mouth_aperture(track.landmarks)
    has_audio = clip.sample_rate > 0 and len(clip.audio) > 0
    audio, rate = (clip.audio, clip.sample_rate) if has_audio else (np.zeros(n), 16000)
    envelope = speech_envelope(audio, rate, fps, n)
    offset = av_offset(aperture, envelope, max_offset=MAX_OFFSET)
    pauses = pause_closure(aperture, frame_level_db(audio, rate, fps, n), fps)
    motion = speech_motion(aperture, envelope)
    blinks = detect_blinks(eye_openness(track.landmarks), fps)
    duration = n / fps
    required = math.floor(duration / BLINK_PERIOD_S)
    timings["metrics"] = time.perf_counter() - t0

    audio_duration = info["audio_duration"]
    diff = (
        abs(info["video_duration"] - audio_duration) * fps if audio_duration is not None else None
    )
    report: dict[str, Any] = {
        "media/path": str(path),
        "media/video_codec": info["video_codec"],
        "media/audio_codec": info["audio_codec"],
        "media/pix_fmt": info["pix_fmt"],
        "media/width": info["width"],
        "media/height": info["height"],
        "media/fps": fps,
        "media/n_frames": n,
        "media/video_duration": info["video_duration"],
        "media/audio_duration": audio_duration,
        "media/duration_diff_frames": diff,
        "media/faststart": info["faststart"],
        "face/detection_rate": track.detection_rate,
        "lipsync/av_offset_frames": offset.offset_frames,
        "lipsync/av_confidence": offset.confidence,
        "lipsync/n_pauses": len(pauses.pauses),
        "lipsync/pause_max_aperture": pauses.max_aperture,
        "lipsync/pauses_all_closed": pauses.all_closed,
        "lipsync/pause_closed_fraction": pauses.closed_fraction,
        "lipsync/aperture_speech": motion.speech_mean,
        "lipsync/aperture_silence": motion.silence_mean,
        "blink/count": len(blinks),
        "blink/peak_frames": [b.peak_frame for b in blinks],
        "blink/rate_per_min": blink_rate_per_min(blinks, n, fps),
        "blink/required": required,
        "blink/ok": len(blinks) >= required,
    }
    t0 = time.perf_counter()
    refs: Sequence[str | np.ndarray] = references
    if portrait is not None:
        from avatar.companion import CompanionSpec
        from avatar.identity.derive import derive_identity

        spec = CompanionSpec(id="check", name="check", images=list(references))
        refs = [derive_identity(spec, size=int(info["width"]), settings=portrait).portrait]
    report.update(_identity(clip.frames, refs, sample_every, embedder))
    timings["identity"] = time.perf_counter() - t0
    report.update({f"timing/{k}_s": round(v, 3) for k, v in timings.items()})
    clean: dict[str, Any] = json_ready(report)
    return clean


_USAGE = (
    "usage: python -m evals.check_clip video=PATH [reference=REF[,REF...]] [sample_every=N] "
    "[portrait=true]"
)


def _parse(argv: Sequence[str]) -> dict[str, Any]:
    """``key=value`` arguments -> check_clip keyword arguments (plus ``video``)."""
    args: dict[str, Any] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or key not in {"video", "reference", "references", "sample_every", "portrait"}:
            raise SystemExit(f"unknown argument {arg!r}\n{_USAGE}")
        if key in {"reference", "references"}:
            args.setdefault("references", []).extend(v for v in value.split(",") if v)
        elif key == "portrait":
            if value.lower() in {"1", "true", "yes"}:
                args["portrait"] = _identity_settings()
        elif key == "sample_every":
            try:
                args["sample_every"] = int(value)
            except ValueError:
                raise SystemExit(f"sample_every must be an integer, got {value!r}") from None
        else:
            args["video"] = value
    if "video" not in args:
        raise SystemExit(f"missing video=PATH\n{_USAGE}")
    return args


def _identity_settings() -> IdentitySettings:
    """The identity settings of ``configs/render.yaml`` (how the renderer derived the portrait)."""
    from omegaconf import OmegaConf

    from avatar.config import compose

    node = OmegaConf.to_container(compose("render").identity, resolve=True)
    return IdentitySettings(**node)  # type: ignore[arg-type]


def _image_limits() -> dict[str, Any]:
    """The renderer's image limits (``configs/render.yaml``), for reading reference images."""
    from avatar.config import compose

    node = compose("render").identity
    return {"max_megapixels": node.max_image_megapixels, "max_side": node.max_image_side}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: prints the :func:`check_clip` report as one JSON object on stdout; 2 on bad input."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parse(sys.argv[1:] if argv is None else argv)
    video = args.pop("video")
    try:
        result = check_clip(video, **args)
    except AvatarError as exc:
        return report(exc)
    sys.stdout.write(json.dumps(result, indent=2, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
