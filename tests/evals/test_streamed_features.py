"""Streamed scoring: features of a file decoded frame by frame, and metrics reading a streamed
clip, equal the whole-clip ones on a rendered clip (same values, not close ones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.config import compose
from avatar.data.mouth_crops import mouth_crops
from avatar.errors import VideoFormatError
from avatar.media import read_mp4
from avatar.media.mp4_reader import VideoStream
from evals.features import extract_features, features_from_file
from evals.functional._clips import StreamedVideo
from evals.functional.sync_expert import (
    audio_embeddings,
    band_offset_scores,
    iter_mouth_crops,
    load_sync_expert,
    offset_scores,
    video_embeddings,
)
from evals.functional.syncnet import SyncNetModel, face_crops, iter_face_crops, lse
from evals.metrics import (
    ArcFaceCSIM,
    Flicker,
    HeadMotionStats,
    IdentityDistance,
    IdentityDrift,
    LandmarkJitter,
    LipSyncOffset,
    SyncExpertScore,
    SyncNetLSE,
)
from evals.suite import Suite


class MeanCrop:
    """A stand-in ArcFace: the unit mean colour of each aligned crop."""

    def embed(self, crops: np.ndarray) -> np.ndarray:
        e = crops.reshape(len(crops), -1, 3).mean(1) + 1.0
        return e / np.linalg.norm(e, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def streamed(speech_clip):
    return features_from_file(speech_clip.path, **compose("eval").features)


@pytest.fixture(scope="module")
def whole(speech_clip):
    return extract_features(
        speech_clip.frames,
        speech_clip.fps,
        speech_clip.audio,
        speech_clip.sample_rate,
        **compose("eval").features,
    )


def test_video_stream_is_read_mp4_one_frame_at_a_time(speech_clip, tmp_path: Path) -> None:
    stream = VideoStream(speech_clip.path)
    with pytest.raises(RuntimeError, match="iterate"):
        stream.audio()
    frames = np.stack(list(stream))
    assert np.array_equal(frames, speech_clip.frames)
    assert np.array_equal(stream.audio(), speech_clip.audio)
    assert (stream.n_frames, stream.sample_rate, stream.fps) == (
        len(speech_clip.frames),
        speech_clip.sample_rate,
        speech_clip.fps,
    )
    part = VideoStream(speech_clip.path, max_frames=10)
    first = read_mp4(speech_clip.path, max_frames=10)
    assert np.array_equal(np.stack(list(part)), first.frames)
    assert np.array_equal(part.audio(), first.audio)
    data = speech_clip.path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(VideoFormatError, match="truncated file: its 'mdat' box runs"):
        VideoStream(cut)


def test_streamed_features_equal_whole_clip_features(speech_clip, streamed, whole) -> None:
    assert streamed.n_frames == whole.n_frames == len(speech_clip.frames)
    for name in ("landmarks", "found", "blendshapes", "pose"):
        a, b = getattr(streamed.track, name), getattr(whole.track, name)
        assert np.array_equal(a, b, equal_nan=True), name
    assert streamed.track.blendshape_names == whole.track.blendshape_names
    for name in ("audio", "aperture", "envelope", "level_db", "eye_openness", "static_mask"):
        a, b = getattr(streamed, name), getattr(whole, name)
        assert np.array_equal(a, b, equal_nan=True), name
    assert streamed.sample_rate == whole.sample_rate and streamed.fps == whole.fps
    (video,) = streamed.inputs()["video"]
    assert isinstance(video, StreamedVideo) and video.shape == (
        len(speech_clip.frames),
        3,
        128,
        128,
    )
    with pytest.raises(TypeError, match="streamed"):
        np.asarray(video)  # never held whole
    first = next(iter(video))
    assert np.array_equal(first, speech_clip.frames[0].transpose(2, 0, 1))
    assert streamed.missing() == {} and whole.missing() == {}


def test_streamed_clip_scores_equal_in_memory_scores(
    streamed, whole, fake_embedder, speech_clip
) -> None:
    def suite() -> Suite:
        return Suite(
            {
                "lipsync": {
                    "av": LipSyncOffset(max_offset=8, min_pairs=10),
                    "expert": SyncExpertScore(load_sync_expert(), ckpt_path=None, max_offset=15),
                },
                "identity": {
                    "dlib": IdentityDistance(embedder=fake_embedder, sample_every=7, threshold=0.6),
                    "drift": IdentityDrift(embedder=fake_embedder, sample_every=7, min_faces=3),
                    "arcface": ArcFaceCSIM(MeanCrop(), sample_every=5),
                },
                "stability": {
                    "jitter": LandmarkJitter(points="rigid"),
                    "flicker": Flicker(),
                    "head": HeadMotionStats(),
                },
            }
        )

    refs = [speech_clip.frames[0]]
    ref_lm = [whole.track.landmarks[0]]
    values = []
    for feats in (streamed, whole):
        inputs = feats.inputs() | {"references": refs, "reference_landmarks": ref_lm}
        got, skipped = suite().score_clip(inputs)
        assert not skipped, skipped
        values.append(got)
    assert values[0] == values[1]
    assert values[0]["stability/flicker_static"] > 0 and values[0]["identity/arcface_csim"] > 0.9


def test_syncnet_on_a_streamed_clip(speech_clip, whole) -> None:
    torch.manual_seed(0)
    net = SyncNetModel().eval()
    n = 12
    lm = torch.from_numpy(whole.track.landmarks[:n])[None]
    audio = torch.from_numpy(speech_clip.audio[: round(n * speech_clip.sample_rate / 25)])[None]
    common = {"landmarks": lm, "audio": audio, "sample_rate": speech_clip.sample_rate, "fps": 25.0}
    clip = StreamedVideo(speech_clip.path, n_frames=n, height=128, width=128)
    video = torch.from_numpy(speech_clip.frames[:n]).permute(0, 3, 1, 2)[None]
    streamed = SyncNetLSE(net, vshift=3)(video=[clip], **common)
    in_memory = SyncNetLSE(net, vshift=3)(video=video, **common)
    assert {k: v.item() for k, v in streamed.items()} == {k: v.item() for k, v in in_memory.items()}
    crops = face_crops(speech_clip.frames[:n], whole.track.landmarks[:n])
    stream = iter_face_crops(iter(speech_clip.frames[:n]), whole.track.landmarks[:n])
    assert np.array_equal(np.stack(list(stream)), crops)
    wav = np.zeros(16000, np.float32)
    whole_clip = lse(crops, wav, net, vshift=3)
    assert lse(iter(crops), wav, net, vshift=3, n_frames=n) == whole_clip
    small_batches = lse(iter(crops), wav, net, vshift=3, batch=2, n_frames=n)
    assert small_batches == pytest.approx(whole_clip, rel=1e-4)  # batch size: float rounding


def test_crops_chunks_and_bands_match_the_whole_clip(speech_clip, whole) -> None:
    lm = whole.track.landmarks.copy()
    lm[:3] = lm[40:55] = np.nan  # gaps take the nearest face's placement
    ref = mouth_crops(speech_clip.frames, lm)
    assert np.array_equal(np.stack(list(iter_mouth_crops(iter(speech_clip.frames), lm))), ref)
    expert = load_sync_expert()
    one = video_embeddings(speech_clip.frames, lm, expert, chunk=10_000)
    chunked = video_embeddings(iter(speech_clip.frames), lm, expert, chunk=16)
    assert one.shape == chunked.shape == (len(lm) - 4, 128)
    torch.testing.assert_close(chunked, one, rtol=0, atol=1e-5)  # batch size: float rounding
    audio = audio_embeddings(speech_clip.audio, speech_clip.sample_rate, len(lm), expert)
    chunked = audio_embeddings(
        speech_clip.audio, speech_clip.sample_rate, len(lm), expert, chunk=40
    )
    torch.testing.assert_close(chunked, audio, rtol=0, atol=1e-5)  # margins cover the context
    exact = offset_scores(one, audio, 15)
    assert band_offset_scores(one, audio, 15) == exact  # one block: the expert's own form
    banded = band_offset_scores(one, audio, 15, block=32)
    assert banded == pytest.approx(exact, rel=1e-5, abs=1e-6)
    assert banded["offset"] == exact["offset"]
