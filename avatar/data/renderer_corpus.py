"""The made-here renderer corpus: a folder of talking-head videos with their true motion.

No public talking-face video can be had on these machines, so the renderer's training and tests
use clips the project renders itself: portraits found in installed packages (the astronaut the
default companion uses, the insightface sample photos, Grace Hopper from matplotlib, a cartoon
the project draws) speaking generated sentences with the workbench's voice and motion stage,
rendered by mesh-warp **with** its painted mouth interior and lids. The layout is that of any
video folder a researcher brings (one sub-folder per speaker), so the video-folder dataset reads
it like theirs; what it adds is the ground truth beside each clip::

    <root>/<speaker>/<k>.mp4          H.264 + AAC, 25 fps, size x size
    <root>/<speaker>/<k>.motion.npz   the MotionTrack the clip was rendered from (its frames)
    <root>/manifest.json              speakers, clips (path, speaker, split, frames, seconds,
                                      text, seed) and the settings (a change rebuilds)

What a checkpoint trained on it can show: that the framework learns (losses fall, one clip is
overfit, the residual paints the mouth interior and lids the plain warp lacks, on held-out
faces). What it cannot: realism beyond mesh-warp's own look, since mesh-warp made the targets.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avatar.data.cache import build_dir
from avatar.data.sync_clips import face_image
from avatar.data.text_prompts import generated_sentences
from avatar.sample_portraits import look_portraits, photo_path

if TYPE_CHECKING:
    from avatar.pipeline import Pipeline

log = logging.getLogger(__name__)

__all__ = ["CorpusClip", "RendererCorpusSpec", "build_renderer_corpus", "read_manifest"]

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RendererCorpusSpec:
    """What the corpus holds; every field enters its cache key.

    Attributes:
        faces: image refs spoken by training speakers (a path, ``embedded:astronaut``,
            ``insightface:<file>[#k]``, ``photo:hopper``, ``cartoon``).
        heldout_faces: image refs kept for the test split (faces the renderer never sees).
        clips_per_face: sentences each face speaks.
        size: frame side in pixels.
        seed: sentences and motion seeds.
        val_fraction: share of each training face's clips put in the validation split.
    """

    faces: tuple[str, ...] = ("insightface:t1.jpg#0", "insightface:t1.jpg#2", "photo:hopper")
    heldout_faces: tuple[str, ...] = ("embedded:astronaut",)
    clips_per_face: int = 4
    size: int = 256
    seed: int = 0
    val_fraction: float = 0.25

    def key(self, renderer: object | None = None) -> str:
        """A short hash of the settings and the renderer's (the cache folder's name)."""
        drawn_by = {} if renderer is None else _settings_of(renderer)
        text = json.dumps({"v": FORMAT_VERSION, **asdict(self), "by": drawn_by}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _settings_of(renderer: object) -> dict[str, object]:
    """A renderer's class and plain public settings (size, mouth_interior, eyelids...)."""
    plain = (bool, int, float, str)
    settings = {k: v for k, v in vars(renderer).items() if not k.startswith("_")}
    kept = {k: v for k, v in settings.items() if isinstance(v, plain)}
    return {"class": type(renderer).__qualname__, **kept}


@dataclass(frozen=True)
class CorpusClip:
    """One clip of the manifest; ``path`` and ``motion`` are relative to the corpus root."""

    path: str
    motion: str
    speaker: str
    split: str
    n_frames: int
    seconds: float
    text: str
    seed: int


def _portrait(ref: str, folder: Path) -> str:
    """An image ref :func:`avatar.companion.load_image` reads, made here where needed."""
    if ref == "photo:hopper":
        return str(photo_path())
    if ref == "cartoon":
        return look_portraits(folder)["cartoon"]
    return face_image(ref, folder)


def _speaker(ref: str) -> str:
    """A folder name for a face ref (``insightface:t1.jpg#2`` -> ``insightface-t1-2``)."""
    out = "".join(c if c.isalnum() else "-" for c in ref.replace(".jpg", "").replace(".png", ""))
    return "-".join(part for part in out.split("-") if part)


def _split(face: str, index: int, spec: RendererCorpusSpec) -> str:
    if face in spec.heldout_faces:
        return "test"
    n_val = round(spec.val_fraction * spec.clips_per_face)
    if spec.val_fraction > 0 and spec.clips_per_face > 1:
        n_val = max(n_val, 1)  # a validation clip per face, whatever the rounding
    return "val" if index >= spec.clips_per_face - n_val else "train"


def build_renderer_corpus(
    pipeline: Pipeline, spec: RendererCorpusSpec, cache_dir: str | Path
) -> Path:
    """The corpus folder for ``spec`` under ``cache_dir`` (rendered once, then reused).

    Args:
        pipeline: renders the clips (its renderer should paint the mouth interior and lids:
            the targets); its size is used, and must equal ``spec.size``.
        spec: faces, clip counts, size and seed.
        cache_dir: parent of the corpus folder (named by ``spec.key(renderer)``: another
            spec or renderer setting makes another folder).

    Returns:
        The corpus root (see the module docstring); written whole or not at all.
    """
    if pipeline.renderer.size != spec.size:
        raise ValueError(
            f"renderer corpus: the pipeline renders {pipeline.renderer.size} px, the spec "
            f"asks for {spec.size} px"
        )
    if spec.clips_per_face < 1 or not (spec.faces or spec.heldout_faces):
        raise ValueError("renderer corpus: needs at least one face and one clip per face")
    root = Path(cache_dir) / spec.key(pipeline.renderer)
    if (root / MANIFEST).is_file():
        return root
    from avatar.companion import CompanionSpec

    faces = [*spec.faces, *spec.heldout_faces]
    texts = generated_sentences(len(faces) * spec.clips_per_face, spec.seed)
    clips: list[CorpusClip] = []
    with build_dir(root) as tmp:
        portraits = tmp / "_portraits"
        for f, face in enumerate(faces):
            speaker = _speaker(face)
            image = _portrait(face, portraits)
            companion = CompanionSpec(id=f"corpus-{speaker}", name=speaker, images=[image])
            (tmp / speaker).mkdir()
            for k in range(spec.clips_per_face):
                text, seed = texts[f * spec.clips_per_face + k], spec.seed * 1000 + len(clips)
                speech = pipeline.speak(text)
                motion = pipeline.motion_for(speech, seed=seed)
                video, truth = f"{speaker}/{k:03d}.mp4", f"{speaker}/{k:03d}.motion.npz"
                pipeline.render_speech(companion, speech, tmp / video, motion=motion)
                motion.save(tmp / truth)
                split = _split(face, k, spec)
                clips.append(
                    CorpusClip(
                        video, truth, speaker, split, len(motion), speech.duration, text, seed
                    )
                )
            log.info("renderer corpus: %s (%d clips) done", speaker, spec.clips_per_face)
        manifest = {
            "format_version": FORMAT_VERSION,
            "spec": asdict(spec),
            "speakers": sorted({c.speaker for c in clips}),
            "clips": [asdict(c) for c in clips],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return root


def read_manifest(root: str | Path, splits: Sequence[str] | None = None) -> list[CorpusClip]:
    """The clips of a corpus folder (optionally only ``splits``), in manifest order."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{root}: not a renderer corpus (no {MANIFEST})")
    data = json.loads(path.read_text())
    if data.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format {data.get('format_version')}, expected {FORMAT_VERSION}")
    clips = [CorpusClip(**c) for c in data["clips"]]
    return [c for c in clips if splits is None or c.split in splits]
