"""The video-folder dataset's bookkeeping: which videos, which speaker and split, which are
skipped and why (variable frame rate, unreadable), resumable builds, shards written whole."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from avatar.data.video_folder import (
    ShardSettings,
    SkipVideo,
    build_shards,
    frame_rate_problem,
    scan_videos,
    speaker_split,
)
from avatar.errors import VideoFormatError


def _video(path: Path, steps: list[int], *, rate: int = 25) -> Path:
    """A tiny H.264 file whose frame k has pts sum(steps[:k]) in 1/rate s ticks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, rate)
        pts = 0
        for k, step in enumerate([0, *steps]):
            pts += step
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 8 * k, np.uint8), "rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_scan_finds_videos_and_names_speakers(tmp_path):
    _video(tmp_path / "ann" / "a.mp4", [1] * 5)
    _video(tmp_path / "ann" / "sub" / "b.MOV", [1] * 5)
    _video(tmp_path / "solo.mp4", [1] * 5)
    _video(tmp_path / ".hidden" / "c.mp4", [1] * 5)
    (tmp_path / "notes.txt").write_text("not a video")
    found = [(e.path, e.speaker) for e in scan_videos(tmp_path)]
    assert found == [("ann/a.mp4", "ann"), ("ann/sub/b.MOV", "ann"), ("solo.mp4", "solo")]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        scan_videos(tmp_path / "nowhere")


def test_variable_frame_rate_is_found(tmp_path):
    assert frame_rate_problem(_video(tmp_path / "cfr.mp4", [1] * 10)) is None
    vfr = frame_rate_problem(_video(tmp_path / "vfr.mp4", [1, 1, 3, 1, 1, 2, 1, 1, 1, 1]))
    assert vfr is not None and vfr.startswith("variable frame rate")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    assert frame_rate_problem(tmp_path / "junk.mp4").startswith("unreadable")


def test_split_is_by_speaker_stable_and_keeps_each_split_fed():
    speakers = [f"s{k}" for k in range(20)]
    split = speaker_split(speakers, heldout=["s3"], val_fraction=0.2)
    assert split["s3"] == "test"
    assert split == speaker_split(list(reversed(speakers)), ["s3"], 0.2)  # order-free
    n_val = sum(v == "val" for v in split.values())
    assert 1 <= n_val <= 10 and sum(v == "train" for v in split.values()) >= 9
    two = speaker_split(["a", "b"], heldout=[], val_fraction=0.1)
    assert sorted(two.values()) == ["train", "val"]
    assert speaker_split(["a"], heldout=[], val_fraction=0.5) == {"a": "train"}


def _shard_for_test(path: Path, settings: ShardSettings) -> dict[str, np.ndarray]:
    """A stand-in shard maker (the real one, video_shard.make_shard, tracks faces): this test
    is about the bookkeeping, so it makes small arrays and refuses files named 'noface'."""
    if "noface" in path.name:
        raise SkipVideo("no face in 100% of frames")
    return {"frames": np.zeros((3, 4, 4, 3), np.uint8)}


def test_build_skips_with_reasons_and_resumes(tmp_path):
    root = tmp_path / "videos"
    _video(root / "ann" / "a.mp4", [1] * 10)
    _video(root / "ann" / "noface.mp4", [1] * 10)
    _video(root / "bob" / "vfr.mp4", [1, 1, 3, 1, 1, 2, 1, 1, 1, 1])
    _video(root / "cat" / "c.mp4", [1] * 10)
    calls: list[str] = []

    def counting(path, settings):
        calls.append(path.name)
        return _shard_for_test(path, settings)

    out = build_shards(root, tmp_path / "cache", counting, heldout_speakers=["cat"], progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    shards = {s["video"]: s for s in manifest["shards"]}
    assert set(shards) == {"ann/a.mp4", "cat/c.mp4"} and shards["cat/c.mp4"]["split"] == "test"
    reasons = {s["video"]: s["reason"] for s in manifest["skipped"]}
    assert reasons["ann/noface.mp4"] == "no face in 100% of frames"
    assert reasons["bob/vfr.mp4"].startswith("variable frame rate")
    assert all(np.load(out / s["shard"])["frames"].shape == (3, 4, 4, 3) for s in shards.values())
    assert not list(out.glob(".*"))  # no temporary files left
    calls.clear()  # a rerun does nothing more; a new video is the only work
    _video(root / "dan" / "d.mp4", [1] * 10)
    again = build_shards(root, tmp_path / "cache", counting, progress=False)
    assert again == out and calls == ["d.mp4"]


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(VideoFormatError, match="no videos"):
        build_shards(tmp_path, tmp_path / "cache", _shard_for_test, progress=False)
