"""SyncClipCorpus: talking-head clips the project renders, cut to mouth crops for the sync expert.

Each utterance of a :class:`~avatar.data.speech_corpus.SpeechCorpus` (its own voices, texts and
seed, apart from the audio-to-motion corpus) is spoken by one of several faces with the
workbench's motion stage (exact TTS phone timings, a per-clip seed for head motion, blinks and
an occasional emotion) and renderer, encoded to H.264 + AAC at a per-clip CRF, decoded again,
tracked with MediaPipe and cut with :func:`avatar.data.mouth_crops.mouth_crops`, exactly as
the metric later cuts any video. Held-out voices are spoken only by held-out faces: that split
is the test set (faces and voices the expert never saw).

Faces are image refs: a path, ``embedded:astronaut``, or ``insightface:<file>[#k]`` (the k-th
face from the left in a sample photo the insightface wheel ships, cropped to a portrait).

The corpus is cached under ``<cache_dir>/<key>`` (the key hashes every setting), written under
a temporary name and renamed into place: ``crops.npy`` (N, 56, 112) uint8 over all frames,
``audio.npy`` (N * 640,) float32 at 16 kHz (640 samples per 25 fps frame), ``speaking.npy``
(N,) bool (a phone other than silence overlaps the frame) and ``index.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from avatar.data.cache import build_dir
from avatar.data.mouth_crops import CENTRE_BELOW, STORED_SHAPE, WIDTH_D, mouth_crops
from avatar.data.speech_corpus import SpeechCorpus, Utterance
from avatar.speech.timeline import SILENCE, PhonemeTimeline

if TYPE_CHECKING:
    from avatar.pipeline import Pipeline

log = logging.getLogger(__name__)

__all__ = ["SyncClip", "SyncClipCorpus", "speaking_frames"]

FORMAT_VERSION = 2
FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
PORTRAIT_PX = 512  # side of the portraits cut from sample photos
EMOTIONS = ("happy", "sad", "surprised", "angry")


@dataclass
class SyncClip:
    """One rendered clip.

    Attributes:
        crops: (T, 56, 112) uint8 grey lower-face crops at 25 fps.
        audio: (T * 640,) float32 mono at 16 kHz, starting with frame 0.
        speaking: (T,) bool, a phone other than silence overlaps the frame.
        face: face ref; voice: voice id; split: train | val | test.
    """

    crops: np.ndarray
    audio: np.ndarray
    speaking: np.ndarray
    face: str
    voice: str
    split: str


def speaking_frames(timeline: PhonemeTimeline, n_frames: int, fps: float = FPS) -> np.ndarray:
    """(n_frames,) bool: frame i's span ``[i / fps, (i + 1) / fps)`` overlaps a spoken phone.

    Example:
        >>> tl = PhonemeTimeline.from_durations(["_", "AA", "_"], [0.1, 0.1, 0.1])
        >>> speaking_frames(tl, 8).astype(int).tolist()
        [0, 0, 1, 1, 1, 0, 0, 0]
    """
    out = np.zeros(n_frames, bool)
    for p in timeline.phones:
        if p.phoneme == SILENCE or p.end <= p.start:
            continue
        a = int(np.floor(p.start * fps + 1e-9))
        b = int(np.ceil(p.end * fps - 1e-9))
        out[max(a, 0) : min(b, n_frames)] = True
    return out


def _insightface_photo(name: str) -> Path:
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "insightface sample photos are absent: `pip install --no-deps insightface==2.1`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "images" / name


def face_image(ref: str, out_dir: Path) -> str:
    """An image ref :func:`avatar.companion.load_image` reads (``insightface:`` refs cut here).

    ``insightface:<file>#k`` takes the k-th face from the left (eye distance >= 35 px) and saves
    a square crop, 3 face-box sizes wide, resized to ``PORTRAIT_PX`` square (small faces would
    fall below the identity stage's minimum eye distance), as ``out_dir/<file>-<k>.png``.
    """
    if not ref.startswith("insightface:"):
        return ref
    from avatar.identity.search import detect_faces

    name, _, index = ref.removeprefix("insightface:").partition("#")
    dst = out_dir / f"{Path(name).stem}-{index or 0}.png"
    if dst.is_file():
        return str(dst)
    bgr = cv2.imread(str(_insightface_photo(name)))
    if bgr is None:
        raise FileNotFoundError(f"{ref}: no such sample photo")
    faces = [f for f in detect_faces(bgr[..., ::-1].copy(), max_faces=10) if f.eye_distance >= 35]
    faces.sort(key=lambda f: f.bbox[0])
    k = int(index or 0)
    if k >= len(faces):
        raise ValueError(f"{ref}: the photo has {len(faces)} usable faces")
    x0, y0, x1, y1 = faces[k].bbox
    side = 3.0 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    pad = int(side)
    padded = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    xa, ya = int(cx - side / 2) + pad, int(cy - side / 2) + pad
    crop = padded[ya : ya + int(side), xa : xa + int(side)]
    crop = cv2.resize(crop, (PORTRAIT_PX, PORTRAIT_PX), interpolation=cv2.INTER_CUBIC)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.part.png")
    cv2.imwrite(str(tmp), crop)
    os.replace(tmp, dst)
    return str(dst)


class PipelineMaker(Protocol):
    """Makes render pipelines in worker processes (:class:`avatar.config.PipelineFactory`)."""

    overrides: tuple[str, ...]

    def __call__(self, *, size: int | None = None) -> Pipeline: ...


_WORKER: dict[Any, Any] = {}


def _worker_init(make_pipeline: PipelineMaker) -> None:
    """Per process: the pipeline factory (pipelines are built per size on first use)."""
    logging.basicConfig(level=logging.WARNING)
    _WORKER["make"] = make_pipeline


def _pipeline(size: int) -> Pipeline:
    """This process's render pipeline at ``size`` pixels."""
    if size not in _WORKER:
        _WORKER[size] = _WORKER["make"](size=size)
    return _WORKER[size]


def _render_job(job: dict[str, Any]) -> dict[str, Any] | None:
    """Render, encode, decode, track and crop one clip (in a worker process)."""
    from avatar.audio import frame_count
    from avatar.companion import CompanionSpec
    from avatar.identity.landmarker import track_frames
    from avatar.media import read_mp4
    from avatar.motion.emotion import EmotionEvent
    from avatar.speech.tts import Speech

    pipe = _pipeline(job["size"])
    audio = np.asarray(job["audio"], np.float32)
    timeline = PhonemeTimeline.from_dict(job["timeline"])
    n = frame_count(len(audio) / SAMPLE_RATE, FPS)
    audio = np.pad(audio, (0, max(0, n * SAMPLES_PER_FRAME - len(audio))))[: n * SAMPLES_PER_FRAME]
    face_id = hashlib.sha256(job["image"].encode()).hexdigest()[:12]
    spec = CompanionSpec(id=f"sync-{face_id}", name="sync", images=[job["image"]])
    events = [EmotionEvent(job["emotion"], job["intensity"], 0.0)] if job["emotion"] else None
    encoder = dataclasses.replace(pipe.encoder, crf=job["crf"], audio_bitrate=48000)
    with tempfile.TemporaryDirectory(prefix="syncclip-") as tmp:
        path = Path(tmp) / "clip.mp4"
        speech = Speech(audio, SAMPLE_RATE, timeline, "")
        pipe.render_speech(spec, speech, path, emotions=events, seed=job["seed"], encoder=encoder)
        clip = read_mp4(path)
    landmarks = np.full((clip.n_frames, 478, 3), np.nan, np.float32)
    for i, face in enumerate(track_frames(clip.frames, FPS)):
        if face is not None:
            landmarks[i] = face.landmarks
    found = np.isfinite(landmarks[:, 0, 0]).mean()
    crops = mouth_crops(clip.frames, landmarks)
    if crops is None or found < 0.9:
        log.warning("clip %s: face found in %.0f%% of frames; dropped", job["name"], 100 * found)
        return None
    decoded = np.pad(clip.audio, (0, max(0, len(audio) - len(clip.audio))))[: len(audio)]
    return dict(
        crops=crops,
        audio=decoded.astype(np.float32),
        speaking=speaking_frames(timeline, len(crops)),
        found=float(found),
    )


class SyncClipCorpus:
    """Rendered clips (mouth crops + decoded audio) for training and testing the sync expert.

    Args:
        speech: the utterances (voices, texts, seed: its own, not the audio-to-motion corpus).
        faces: training faces (image refs, see the module docstring).
        heldout_faces: faces of the test split (spoken with ``speech.heldout_voices`` only).
        sizes: render sizes, pixels, drawn per clip (the crops are resampled to one size).
        crf_range: [low, high] libx264 CRF, drawn per clip.
        emotion_p: probability of a non-neutral emotion in a clip.
        val_fraction: share of the training voices' clips kept for validation.
        seed: seed of the per-clip draws (face, motion seed, CRF, emotion, split).
        workers: render processes.
        pipeline: makes the render pipeline (motion stage, renderer, encoder) in each worker;
            its ``overrides`` enter the cache key.
        cache_dir: parent directory of the cached corpora.
    """

    def __init__(
        self,
        *,
        speech: SpeechCorpus,
        faces: Sequence[str],
        heldout_faces: Sequence[str],
        sizes: Sequence[int],
        crf_range: Sequence[int],
        emotion_p: float,
        val_fraction: float,
        seed: int,
        workers: int,
        cache_dir: str | os.PathLike,
        pipeline: PipelineMaker,
    ) -> None:
        if not faces or not heldout_faces:
            raise ValueError("need at least one training face and one held-out face")
        if set(faces) & set(heldout_faces):
            both = set(faces) & set(heldout_faces)
            raise ValueError(f"faces both trained on and held out: {sorted(both)}")
        lo, hi = crf_range
        if not 0 <= lo <= hi <= 51:
            raise ValueError(f"crf_range must be 0 <= low <= high <= 51, got {crf_range}")
        self.speech, self.faces, self.heldout_faces = speech, list(faces), list(heldout_faces)
        if not sizes or min(sizes) < 64:
            raise ValueError(f"sizes must be a list of render sizes >= 64 px, got {sizes}")
        self.sizes, self.crf_range = [int(x) for x in sizes], (int(lo), int(hi))
        self.emotion_p = emotion_p
        self.val_fraction, self.seed, self.workers = val_fraction, int(seed), max(1, int(workers))
        self.make_pipeline, self.cache_dir = pipeline, Path(cache_dir)

    def key(self) -> str:
        """16 hex digits hashing every setting the stored clips depend on."""
        settings = dict(
            version=FORMAT_VERSION,
            speech=self.speech.key(),
            faces=self.faces,
            heldout_faces=self.heldout_faces,
            sizes=self.sizes,
            crf=self.crf_range,
            emotion_p=self.emotion_p,
            val_fraction=self.val_fraction,
            seed=self.seed,
            overrides=list(self.make_pipeline.overrides),
            crop=[STORED_SHAPE, CENTRE_BELOW, WIDTH_D],
        )
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def path(self) -> Path:
        return self.cache_dir / self.key()

    def _jobs(self, utterances: Sequence[Utterance], face_dir: Path) -> list[dict[str, Any]]:
        rng = np.random.default_rng(self.seed)
        train_imgs = [face_image(f, face_dir) for f in self.faces]
        test_imgs = [face_image(f, face_dir) for f in self.heldout_faces]
        jobs = []
        for i, u in enumerate(utterances):
            test = u.voice in self.speech.heldout_voices
            pool, refs = (test_imgs, self.heldout_faces) if test else (train_imgs, self.faces)
            k = int(rng.integers(len(pool)))
            emotional = rng.random() < self.emotion_p
            split = "test" if test else ("val" if rng.random() < self.val_fraction else "train")
            jobs.append(
                dict(
                    name=f"{u.voice}-{i}",
                    image=pool[k],
                    face=refs[k],
                    voice=u.voice,
                    split=split,
                    audio=u.audio,
                    timeline=u.timeline.to_dict(),
                    seed=self.seed * 100003 + zlib.crc32(f"{u.voice}{i}".encode()) % 100003,
                    crf=int(rng.integers(self.crf_range[0], self.crf_range[1] + 1)),
                    emotion=str(rng.choice(EMOTIONS)) if emotional else None,
                    intensity=float(rng.uniform(0.3, 1.0)),
                    size=int(rng.choice(self.sizes)),
                )
            )
        train = [j for j in jobs if j["split"] == "train"]
        if self.val_fraction > 0 and train and not any(j["split"] == "val" for j in jobs):
            train[-1]["split"] = "val"  # a tiny corpus still validates on one clip
        return jobs

    def _render(self, jobs: list[dict[str, Any]]) -> Iterator[tuple[dict, dict[str, Any]]]:
        """(job, rendered clip) in job order, from ``workers`` spawned processes; drops failures."""
        init = (self.make_pipeline,)
        with ProcessPoolExecutor(
            self.workers, mp_context=get_context("spawn"), initializer=_worker_init, initargs=init
        ) as pool:
            for n, (job, out) in enumerate(zip(jobs, pool.map(_render_job, jobs), strict=True)):
                if n % 50 == 0:
                    log.info("sync clips %s: %d/%d rendered", self.key(), n + 1, len(jobs))
                if out is not None:
                    yield job, out

    def prepare(self) -> Path:
        """Render the corpus unless cached; returns :attr:`path`."""
        if (self.path / "index.json").is_file():
            return self.path
        utterances = self.speech.load()
        if self.speech.sample_rate != SAMPLE_RATE:
            raise ValueError(f"the speech corpus must be at {SAMPLE_RATE} Hz")
        jobs = self._jobs(utterances, self.cache_dir / "faces")
        with build_dir(self.path) as tmp:
            crops, audio, speaking, index, offset = [], [], [], [], 0
            for job, out in self._render(jobs):
                crops.append(out["crops"])
                audio.append(out["audio"])
                speaking.append(out["speaking"])
                index.append(
                    dict(
                        name=job["name"],
                        face=job["face"],
                        voice=job["voice"],
                        split=job["split"],
                        crf=job["crf"],
                        emotion=job["emotion"],
                        size=job["size"],
                        offset=offset,
                        frames=len(out["crops"]),
                        found=out["found"],
                    )
                )
                offset += len(out["crops"])
            np.save(tmp / "crops.npy", np.concatenate(crops))
            np.save(tmp / "audio.npy", np.concatenate(audio))
            np.save(tmp / "speaking.npy", np.concatenate(speaking))
            meta = dict(key=self.key(), fps=FPS, sample_rate=SAMPLE_RATE, clips=index)
            (tmp / "index.json").write_text(json.dumps(meta))
        return self.path

    def load(self, split: str | None = None) -> list[SyncClip]:
        """The clips of ``split`` (None: all), rendering the corpus first if needed."""
        path = self.prepare()
        meta = json.loads((path / "index.json").read_text())
        crops = np.load(path / "crops.npy", mmap_mode="r")
        audio = np.load(path / "audio.npy", mmap_mode="r")
        speaking = np.load(path / "speaking.npy", mmap_mode="r")
        spf = SAMPLES_PER_FRAME
        return [
            SyncClip(
                np.array(crops[c["offset"] : c["offset"] + c["frames"]]),
                np.array(audio[c["offset"] * spf : (c["offset"] + c["frames"]) * spf]),
                np.array(speaking[c["offset"] : c["offset"] + c["frames"]]),
                c["face"],
                c["voice"],
                c["split"],
            )
            for c in meta["clips"]
            if split is None or c["split"] == split
        ]
