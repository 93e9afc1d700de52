"""RendererDataModule: a video folder (or the made-here corpus) -> neural-renderer training items.

Steps (``prepare_data``, each cached under ``cache_dir``):

1. **Videos.** ``path`` is any folder of talking-face videos (``<speaker>/<clip>.mp4``). When it
   is null, the made-here corpus (:mod:`avatar.data.renderer_corpus`) is rendered first: faces
   found in installed packages speaking generated sentences, rendered by mesh-warp **with**
   its painted mouth interior and lids.
2. **Shards** (:func:`avatar.data.video_folder.build_shards`): per video, crops aligned once on
   a frontal reference frame, landmarks, motion, 16 kHz audio. Motion is fitted to the tracked
   landmarks (``motion: fitted``; any folder), or for the made-here corpus its **true** motion
   (``motion: true``, the default there), re-expressed at rest as in the reference frame
   (row - reference row), so the ground truth is exact up to that frame's own expression.
3. **Identities and priors** (:mod:`avatar.data.renderer_samples`): each shard's reference crop
   becomes an identity (:func:`avatar.identity.derive.derive_identity`, in the identity cache);
   the neural renderer's prior (plain mesh-warp, no mouth interior or lids) renders every motion
   row of the shard, beside its region masks and audio features (:meth:`NeuralRenderer.inputs`).

Splits: the made-here corpus keeps its own (a face's last clips validate, held-out faces test);
a video folder uses the shard manifest's speaker split. Items are single frames (see
:class:`~avatar.data.renderer_samples.RendererFrames`), batched as (B, C, s, s) tensors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from avatar.data.renderer_corpus import RendererCorpusSpec, build_renderer_corpus, read_manifest
from avatar.data.renderer_samples import RendererFrames, ShardSamples, write_samples
from avatar.data.video_folder import MANIFEST, ShardSettings, build_shards, scan_videos
from avatar.errors import ConfigValueError
from avatar.motion.track import CHANNELS, MotionTrack

log = logging.getLogger(__name__)

__all__ = ["RendererDataModule"]

SAMPLES_VERSION = 1
PORTRAIT_MIN = 256
"""Reference crops smaller than this are upscaled to it before the identity stage (whose
``min_eye_distance_px`` refuses the 38 px eye distance of a 128 px crop)."""


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def _truth_fitter(video: Path) -> Callable[..., MotionTrack]:
    """The made-here clip's true motion, at rest as in the reference frame (see step 2)."""

    def fit(faces: list, reference: int, fps: float) -> MotionTrack:
        truth = MotionTrack.load(video.with_suffix(".motion.npz")).select(CHANNELS)
        values = truth.values.astype(np.float32)
        values = values[: len(faces)] - values[reference]
        return MotionTrack(values, CHANNELS, fps)

    return fit


class RendererDataModule(L.LightningDataModule):
    """Training items of the neural renderer from a video folder (see the module docstring).

    Args:
        path: a folder of talking-face videos, or None for the made-here corpus.
        size: S, crop (and corpus) side in pixels; the renderer's size.
        cache_dir: corpus, shards, identities' portraits and sample arrays live here.
        pipeline: builds a pipeline (``pipeline(size=S)``): identity settings, and the corpus's
            renders (a :class:`avatar.config.PipelineFactory`).
        corpus: :class:`RendererCorpusSpec` fields of the made-here corpus (size: ``size``),
            and optionally ``cache_dir``, where it is rendered (default ``cache_dir/corpus``).
        motion: ``true`` (made-here corpus only) or ``fitted``; None: true for the corpus.
        audio_dim: audio features per frame (the net's ``audio_dim``; 0 for none).
        heldout_speakers: speakers of the test split (a video folder).
        val_fraction: share of the other speakers that validate (a video folder).
        min_seconds, max_seconds, min_face_fraction: :class:`ShardSettings` limits.
        crop: training crop side around the mouth or an eye (None: whole frames).
        val_frames: frames per shard validated and tested (None: all).
        batch_size, num_workers: of the data loaders.
        seed: crops' random stream.
    """

    def __init__(
        self,
        *,
        path: str | None,
        size: int,
        cache_dir: str,
        pipeline: Callable[..., Any],
        corpus: dict[str, Any] | None = None,
        motion: str | None = None,
        audio_dim: int = 0,
        heldout_speakers: Sequence[str] = (),
        val_fraction: float = 0.1,
        min_seconds: float = 1.0,
        max_seconds: float = 120.0,
        min_face_fraction: float = 0.9,
        crop: int | None = None,
        val_frames: int | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if isinstance(motion, bool):  # YAML reads `true` as a bool
            motion = "true" if motion else "fitted"
        if motion not in (None, "true", "fitted"):
            raise ConfigValueError(f"data.motion must be true, fitted or null, got {motion!r}")
        if motion == "true" and path is not None:
            raise ConfigValueError(
                f"data.motion=true needs the made-here corpus (data.path=null); {path} has "
                "no true motion: use data.motion=fitted"
            )
        self.path = None if path is None else Path(path)
        self.size, self.cache_dir = int(size), Path(cache_dir)
        self.pipeline_factory, self.corpus = pipeline, dict(corpus or {})
        self.motion = motion or ("true" if path is None else "fitted")
        self.audio_dim, self.heldout = int(audio_dim), tuple(heldout_speakers)
        self.val_fraction = val_fraction
        self.settings = ShardSettings(
            size=self.size,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
            min_face_fraction=min_face_fraction,
        )
        self.crop, self.val_frames = crop, val_frames
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.splits: dict[str, list[ShardSamples]] = {}
        self._check_path()

    def _check_path(self) -> None:
        """A missing folder or one without videos fails here, naming it (before any work)."""
        if self.path is None:
            return
        if not self.path.is_dir():
            raise ConfigValueError(f"data.path {self.path}: no such folder")
        if not scan_videos(self.path):
            raise ConfigValueError(
                f"data.path {self.path}: no videos in it (.mp4, .mov, .mkv, .webm, .avi, .m4v)"
            )

    # ---- building (prepare_data: once per machine) -------------------------------------------

    def _videos(self, pipeline: Any) -> tuple[Path, dict[str, str] | None]:
        """The video folder and, for the made-here corpus, its split per video."""
        if self.path is not None:
            return self.path, None
        fields = {**self.corpus, "size": self.size}
        where = Path(fields.pop("cache_dir", None) or self.cache_dir / "corpus")
        for key in ("faces", "heldout_faces"):
            if key in fields:
                fields[key] = tuple(fields[key])
        spec = RendererCorpusSpec(**fields)
        root = build_renderer_corpus(pipeline, spec, where)
        return root, {c.path: c.split for c in read_manifest(root)}

    def _shard_dir(self, root: Path) -> Path:
        from avatar.data.video_shard import make_shard
        from avatar.drive import fit_tracked_faces

        def maker(path: Path, settings: ShardSettings) -> dict[str, np.ndarray]:
            fit = _truth_fitter(path) if self.motion == "true" else fit_tracked_faces
            return make_shard(path, settings, fit=fit)

        where = self.cache_dir / "renderer_shards" / f"{_digest(str(root.resolve()))}-{self.motion}"
        return build_shards(
            root,
            where,
            maker,
            self.settings,
            heldout_speakers=self.heldout,
            val_fraction=self.val_fraction,
            progress=False,
        )

    def _samples_root(self, shards: Path) -> Path:
        key = _digest([SAMPLES_VERSION, str(shards.resolve()), self.audio_dim, list(CHANNELS)])
        return self.cache_dir / "renderer_samples" / key

    def _renderer(self) -> Any:
        from avatar.modules.refine_unet import WarpRefineNet
        from avatar.renderers.neural import NeuralRenderer

        # only the prior, masks and audio features are used: the net just sets audio_dim
        net = WarpRefineNet(motion_dim=len(CHANNELS), audio_dim=self.audio_dim, depth=1)
        return NeuralRenderer(size=self.size, net=net, device="cpu")

    def _write_shard_samples(self, shards: Path, entry: dict, pipeline: Any, renderer: Any) -> None:
        from avatar.companion import CompanionSpec
        from avatar.identity.derive import derive_identity

        stem = Path(entry["shard"]).stem
        folder = self._samples_root(shards) / stem
        if (folder / "done").is_file():
            return
        with np.load(shards / entry["shard"]) as data:
            shard = {k: data[k] for k in ("frames", "landmarks", "audio", "motion", "reference")}
        ref = int(shard["reference"])
        png = self.cache_dir / "renderer_portraits" / f"{stem}.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(shard["frames"][ref])
        if self.size < PORTRAIT_MIN:  # the identity stage refuses small faces; it aligns back to S
            image = image.resize((PORTRAIT_MIN, PORTRAIT_MIN), Image.Resampling.LANCZOS)
        image.save(png)
        spec = CompanionSpec(id=f"video-{stem}", name=stem, images=[str(png)])
        identity = derive_identity(spec, size=self.size, settings=pipeline.identities.settings)
        prepared = renderer.prepare(identity)
        rate = self.settings.sample_rate
        write_samples(folder, renderer, prepared, identity.portrait, shard, shard["motion"], rate)
        log.info("renderer samples: %s (%d frames)", stem, len(shard["frames"]))

    def prepare_data(self) -> None:
        """Corpus (when ``path`` is null), shards, identities and priors; cached."""
        self._build()

    def _build(self) -> tuple[Path, list[dict]]:
        pipeline = self.pipeline_factory(size=self.size)
        root, corpus_splits = self._videos(pipeline)
        shards = self._shard_dir(root)
        entries = json.loads((shards / MANIFEST).read_text())["shards"]
        if not entries:
            raise ConfigValueError(
                f"video folder {root}: no usable video (see the reasons in {shards / MANIFEST})"
            )
        renderer = self._renderer()
        for entry in entries:
            if corpus_splits is not None:
                entry["split"] = corpus_splits.get(entry["video"], entry["split"])
            self._write_shard_samples(shards, entry, pipeline, renderer)
        return shards, entries

    # ---- loading (setup: every process) ------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        shards, entries = self._build()  # cached: only reads manifests
        root = self._samples_root(shards)
        by_split: dict[str, list[ShardSamples]] = {"train": [], "val": [], "test": []}
        for entry in entries:
            by_split[entry["split"]].append(ShardSamples.load(root / Path(entry["shard"]).stem))
        if not by_split["val"] and len(by_split["train"]) >= 2:
            log.warning("no validation speaker: validating on the last training video")
            by_split["val"].append(by_split["train"].pop())
        if not by_split["train"]:
            raise ConfigValueError(f"{shards}: no training videos (splits {by_split.keys()})")
        by_split["val"] = by_split["val"] or by_split["train"][-1:]
        by_split["test"] = by_split["test"] or by_split["val"]
        self.splits = by_split
        log.info("renderer data: %s", {k: len(v) for k, v in by_split.items()})

    def _frames(self, split: str, train: bool) -> RendererFrames:
        return RendererFrames(
            self.splits[split],
            crop=self.crop if train else None,
            frames=None if train else self.val_frames,
            seed=self.seed,
            fixed=not train,
        )

    def _loader(self, data: RendererFrames, shuffle: bool) -> DataLoader:
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._frames("train", True), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self._frames("val", False), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self._frames("test", False), shuffle=False)
