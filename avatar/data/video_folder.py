"""Any folder of talking-face videos -> cached per-video shards for training a renderer.

A researcher's folder (HDTF, VoxCeleb-style ``<speaker>/<clip>.mp4``, recordings of their
companions, or the made-here corpus of :mod:`avatar.data.renderer_corpus`) becomes, per video,
one ``.npz`` shard holding at 25 fps:

- ``frames``: (T, S, S, 3) uint8 RGB face crops, every frame warped by the **same** similarity
  transform (the identity stage's alignment of the reference frame), so the head moves in the
  crop as it moved in the video and frame ``reference`` is the portrait an identity is made of;
- ``landmarks``: (T, 478, 2) float32 MediaPipe landmarks in crop pixels (NaN where no face);
- ``motion``: (T, C) float32 rig channels fitted to the landmarks (``channels`` names them);
- ``audio``: (T * 640,) float32 mono at 16 kHz, frame k's audio at ``[640 k, 640 (k + 1))``;
- ``reference``: the frame the crop is aligned on (the first with a face seen frontally).

``manifest.json`` lists the shards (video, speaker, split, frames) and every video skipped with
its reason (unreadable, no audio, variable frame rate, too short, no face in too many frames).
Videos are split by **speaker** (the first folder under the root; the file's stem when flat):
``heldout_speakers`` make the test split, a stable hash of the name puts others in validation.
The build is resumable: each shard is written whole under a temporary name, the manifest after
every video, and a rerun skips what is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from avatar.audio import resample
from avatar.errors import VideoFormatError

log = logging.getLogger(__name__)

__all__ = [
    "ShardSettings",
    "SkipVideo",
    "VideoEntry",
    "build_shards",
    "frame_rate_problem",
    "scan_videos",
    "speaker_split",
]

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
MANIFEST = "manifest.json"
FORMAT_VERSION = 1


class SkipVideo(Exception):
    """A video that cannot make a shard; the message is the manifest's reason."""


@dataclass(frozen=True)
class VideoEntry:
    """A video of the folder: its path relative to the root and its speaker."""

    path: str
    speaker: str


@dataclass(frozen=True)
class ShardSettings:
    """How videos become shards (every field enters the cache key).

    Attributes:
        size: crop side S in pixels.
        fps: frame rate of the shards (videos are resampled to it by timestamp).
        sample_rate: audio rate of the shards, Hz.
        min_seconds: shorter videos are skipped.
        max_seconds: longer videos are cut to this.
        min_face_fraction: a video whose face is found in fewer frames is skipped.
        vfr_tolerance: frame-interval spread (max minus min, in frame periods) above which a
            video counts as variable frame rate.
    """

    size: int = 256
    fps: float = 25.0
    sample_rate: int = 16000
    min_seconds: float = 1.0
    max_seconds: float = 120.0
    min_face_fraction: float = 0.9
    vfr_tolerance: float = 0.5

    def key(self) -> str:
        text = json.dumps({"v": FORMAT_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


ShardMaker = Callable[[Path, ShardSettings], dict[str, np.ndarray]]
"""(video path, settings) -> the shard's arrays; raises :class:`SkipVideo` with a reason."""


def scan_videos(root: str | Path) -> list[VideoEntry]:
    """Every video under ``root`` (by suffix, sorted), with its speaker.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"video folder {root}: no such folder")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    out = []
    for path in found:
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden folders (a build in progress, .git)
        speaker = rel.parts[0] if len(rel.parts) > 1 else path.stem
        out.append(VideoEntry(rel.as_posix(), speaker))
    return out


def frame_rate_problem(path: str | Path, tolerance: float = 0.5) -> str | None:
    """Why the video's frame timing is unusable (None when constant): no video stream, no
    timestamps, or intervals spreading more than ``tolerance`` frame periods (variable rate)."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            rate = Fraction(stream.average_rate or 0)
            pts = [p.pts for p in container.demux(stream) if p.pts is not None and p.size]
            base = stream.time_base
    except (av.FFmpegError, OSError) as exc:
        return f"unreadable: {exc}"
    if rate <= 0 or len(pts) < 3 or base is None:
        return "no frame rate or timestamps"
    steps = np.diff(np.sort(np.asarray(pts, np.float64))) * float(base) * float(rate)
    spread = float(steps.max() - steps.min())
    if spread > tolerance:
        low, high = steps.min(), steps.max()
        return f"variable frame rate: frame intervals from {low:.2f} to {high:.2f} periods"
    return None


def speaker_split(
    speakers: Sequence[str], heldout: Sequence[str], val_fraction: float
) -> dict[str, str]:
    """Speaker -> ``train`` | ``val`` | ``test``: ``heldout`` are test; a stable hash of the
    name puts about ``val_fraction`` of the rest in validation (at least one when two or more
    remain and the fraction is positive)."""
    rest = sorted(s for s in set(speakers) if s not in set(heldout))
    score = {s: int(hashlib.sha256(s.encode()).hexdigest()[:8], 16) / 16**8 for s in rest}
    val = {s for s in rest if score[s] < val_fraction}
    if not val and val_fraction > 0 and len(rest) >= 2:
        val = {min(rest, key=score.__getitem__)}
    if len(val) == len(rest) and rest:
        val.discard(max(rest, key=score.__getitem__))  # keep one training speaker
    split = {s: ("val" if s in val else "train") for s in rest}
    return split | {s: "test" for s in set(speakers) & set(heldout)}


def _shard_name(entry: VideoEntry) -> str:
    digest = hashlib.sha256(entry.path.encode()).hexdigest()[:12]
    return f"{entry.speaker}-{digest}.npz"


def _write_json(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def build_shards(
    root: str | Path,
    cache_dir: str | Path,
    make_shard: ShardMaker,
    settings: ShardSettings = ShardSettings(),
    *,
    heldout_speakers: Sequence[str] = (),
    val_fraction: float = 0.1,
    progress: bool = True,
) -> Path:
    """Shards of every usable video under ``root`` in ``cache_dir/<settings key>`` (resumable).

    Args:
        root: the video folder.
        cache_dir: where shard folders live.
        make_shard: makes one video's arrays (:func:`avatar.data.video_shard.make_shard`).
        settings: crop size, rates, limits.
        heldout_speakers: speakers of the test split.
        val_fraction: share of the other speakers in validation.
        progress: show a progress bar (tqdm; a widget in a notebook).

    Returns:
        The shard folder, holding ``manifest.json`` and the ``.npz`` shards.
    """
    entries = scan_videos(root)
    if not entries:
        raise VideoFormatError(f"video folder {root}: no videos ({', '.join(VIDEO_SUFFIXES)})")
    out = Path(cache_dir) / settings.key()
    out.mkdir(parents=True, exist_ok=True)
    split = speaker_split([e.speaker for e in entries], heldout_speakers, val_fraction)
    manifest_path = out / MANIFEST
    old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    done = {s["video"]: s for s in old.get("shards", []) if (out / s["shard"]).is_file()}
    skipped = {s["video"]: s for s in old.get("skipped", [])}
    from tqdm.auto import tqdm

    for entry in tqdm(entries, desc="videos", disable=not progress):
        if entry.path in done or entry.path in skipped:
            continue
        shard = _shard_name(entry)
        try:
            problem = frame_rate_problem(Path(root) / entry.path, settings.vfr_tolerance)
            if problem:
                raise SkipVideo(problem)
            arrays = make_shard(Path(root) / entry.path, settings)
        except (SkipVideo, VideoFormatError) as exc:
            log.warning("skipped %s: %s", entry.path, exc)
            skipped[entry.path] = {
                "video": entry.path,
                "speaker": entry.speaker,
                "reason": str(exc),
            }
        else:
            tmp = out / f".{shard}.tmp.npz"
            np.savez(tmp, **arrays)
            os.replace(tmp, out / shard)
            frames = int(len(arrays["frames"]))
            done[entry.path] = {"video": entry.path, "speaker": entry.speaker, "shard": shard}
            done[entry.path]["frames"] = frames
        shards = [d | {"split": split[d["speaker"]]} for d in done.values()]
        manifest = {"format_version": FORMAT_VERSION, "settings": asdict(settings)}
        _write_json(manifest_path, manifest | {"shards": shards, "skipped": list(skipped.values())})
    log.info("%d shards, %d videos skipped: %s", len(done), len(skipped), out)
    return out


def cut_audio(samples: np.ndarray, rate: int, settings: ShardSettings, n_frames: int) -> np.ndarray:
    """(n_frames * rate_out / fps,) float32 mono at ``settings.sample_rate``, zero-padded."""
    audio = resample(np.asarray(samples, np.float32), rate, settings.sample_rate)
    n = round(n_frames * settings.sample_rate / settings.fps)
    return np.pad(audio, (0, max(0, n - len(audio))))[:n].astype(np.float32)
