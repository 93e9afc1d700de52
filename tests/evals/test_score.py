"""evals.score on clips whose audio was shifted by k frames reports an offset changed by k; bad
input (no audio, too short, too long, undecodable or truncated) is one line on stderr and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from avatar.config import compose
from avatar.media import EncoderSettings, write_mp4, write_wav
from evals.metrics import LipSyncOffset, MouthMotion
from evals.score import main, score_video
from evals.suite import Suite


def _suite() -> Suite:
    return Suite(
        {
            "lipsync": {
                "av": LipSyncOffset(max_offset=10, min_pairs=10),
                "motion": MouthMotion(silence_db=-35.0, floor_db=-60.0),
            }
        }
    )


def test_audio_file_shifted_by_k_frames_moves_the_offset_by_k(
    speech_clip, shift, tmp_path: Path
) -> None:
    cfg = compose("eval")
    features, limit = dict(cfg.features), float(cfg.score.max_seconds)
    base = score_video(speech_clip.path, _suite(), feature_options=features, max_seconds=limit)[
        "lipsync/av_offset"
    ]
    assert abs(base) <= 1
    for k in (-5, 3):
        wav = write_wav(
            tmp_path / f"shift{k}.wav",
            shift(speech_clip.audio, speech_clip.sample_rate, speech_clip.fps, k),
            speech_clip.sample_rate,
        )
        report = score_video(
            speech_clip.path, _suite(), audio=wav, feature_options=features, max_seconds=limit
        )
        assert report["media/audio_source"] == str(wav)
        # audio delayed by k frames: the video leads by k more, the offset (> 0: lags) falls by k
        assert abs(report["lipsync/av_offset"] - (base - k)) <= 1, (k, base, report)


def test_cli_on_a_clip_with_a_shifted_soundtrack(
    speech_clip, shift, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = 4
    moved = write_mp4(
        tmp_path / "moved.mp4",
        speech_clip.frames,
        fps=speech_clip.fps,
        audio=shift(speech_clip.audio, speech_clip.sample_rate, speech_clip.fps, k),
        sample_rate=speech_clip.sample_rate,
        encoder=EncoderSettings(
            crf=18, preset="veryfast", threads=1, tune=None, x264_params="", audio_bitrate=128000
        ),
    )
    assert main([f"video={speech_clip.path}"]) == 0
    base = json.loads(capsys.readouterr().out)
    assert main([f"video={moved}"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert abs(report["lipsync/av_offset"] - (base["lipsync/av_offset"] - k)) <= 1
    assert abs(report["lipsync/expert_offset"] - (base["lipsync/expert_offset"] - k)) <= 1
    assert report["face/detection_rate"] == 1.0 and report["media/video_codec"] == "h264"
    skipped = report["skipped"]
    assert "speed/realtime" in skipped and "identity/dlib" in skipped  # no timings, no images
    assert skipped["lipsync/lse"].startswith("skipped: weights syncnet_v2")


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    assert main([]) == 2  # no video
    assert main(["not_a_key=1"]) == 2
    assert main([f"video={tmp_path / 'absent.mp4'}"]) == 2


def _video_only(path: Path, frames: np.ndarray, fps: float) -> Path:
    """An H.264 MP4 with no audio stream."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=round(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode())
    return path


def _short(speech_clip, path: Path, n: int) -> Path:
    """The first ``n`` frames of the speech clip with their audio."""
    spf = speech_clip.sample_rate / speech_clip.fps
    return write_mp4(
        path,
        speech_clip.frames[:n],
        fps=speech_clip.fps,
        audio=speech_clip.audio[: round(n * spf)],
        sample_rate=speech_clip.sample_rate,
        encoder=EncoderSettings(
            crf=18, preset="veryfast", threads=1, tune=None, x264_params="", audio_bitrate=128000
        ),
    )


def _refused(args: list[str], capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    """Runs the CLI on bad input: exit 2, one line on stderr naming the problem, no report."""
    assert main(args) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    assert "Traceback" not in err and not out
    return lines[0]


def test_clip_without_audio_track_skips_lip_sync(
    speech_clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = _video_only(tmp_path / "silent.mp4", speech_clip.frames[:60], speech_clip.fps)
    assert main([f"video={silent}", "suite=stability"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["media/audio_codec"] is None and report["stability/jitter"] > 0
    suite = ["suite=lipsync"]
    reason = f"no audio track in {silent}"
    line = _refused([f"video={silent}", *suite], capsys, "UnscorableClip", reason)
    for key in ("lipsync/av", "lipsync/closure", "lipsync/motion", "lipsync/expert"):
        assert key in line
    # in a suite where other metrics apply: reported as skipped with the reason, not scored
    assert main([f"video={silent}", "suite=nightly", "~suite.identity"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (
        report["skipped"]["lipsync/av"] == f"skipped: {reason} (give audio=FILE to score lip sync)"
    )
    assert "lipsync/av_offset" not in report and "stability/flicker_static" in report
    # audio= naming a file without audio: the same, with that file named
    line = _refused(
        [f"video={speech_clip.path}", f"audio={silent}", *suite], capsys, f"audio={silent}"
    )
    assert "has no audio track" in line


def test_too_short_clips(speech_clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    three = _short(speech_clip, tmp_path / "three.mp4", 3)
    assert main([f"video={three}", "suite=lipsync"]) == 0  # mouth motion applies; others skip
    report = json.loads(capsys.readouterr().out)
    assert report["lipsync/motion_silence"] >= 0
    skipped = report["skipped"]
    assert skipped["lipsync/expert"] == (
        "skipped: clip too short: the sync expert needs at least 7 frames, got 3"
    )
    assert skipped["lipsync/av"] == (
        "skipped: clip too short: the A/V offset needs at least 10 frames, got 3"
    )
    assert "lipsync/expert_offset" not in report and "lipsync/av_offset" not in report
    assert main([f"video={three}", "suite=stability"]) == 0  # jitter and flicker apply
    report = json.loads(capsys.readouterr().out)
    assert report["stability/jitter"] >= 0 and report["stability/flicker_overall"] >= 0
    assert report["skipped"]["stability/blink"] == (
        "skipped: clip too short: a blink rate needs at least 1 s, got 0.12 s"
    )
    one = _short(speech_clip, tmp_path / "one.mp4", 1)  # no metric applies: one clear error
    line = _refused([f"video={one}"], capsys, "UnscorableClip", "no metric of the suite applies")
    assert "flicker needs at least 2 frames, got 1" in line
    assert "the sync expert needs at least 7 frames, got 1" in line


def test_over_long_clip_is_refused_before_decoding(
    speech_clip, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(
        [f"video={speech_clip.path}", "score.max_seconds=2"],
        capsys,
        "UnscorableClip",
        str(speech_clip.path),
        "over score.max_seconds=2",
    )
    _refused([f"video={speech_clip.path}", "score.max_seconds=0"], capsys, "score.max_seconds")


def test_undecodable_and_truncated_files(
    speech_clip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    _refused([f"video={garbage}"], capsys, "VideoFormatError", str(garbage), "not decodable")
    data = speech_clip.path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov box (faststart) is whole, mdat is cut
    _refused([f"video={cut}"], capsys, "VideoFormatError", str(cut), "truncated")
    _refused([f"video={tmp_path / 'absent.mp4'}"], capsys, "VideoFormatError", "absent.mp4")
    _refused([f"video={speech_clip.path}", f"audio={garbage}"], capsys, "AudioFormatError")
    _refused(["video=x.mp4", "not_a_key=1"], capsys, "ConfigCompositionException", "not_a_key")


def test_cli_process_exits_2_with_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\0" * 64)
    proc = subprocess.run(
        [sys.executable, "-m", "evals.score", f"video={garbage}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and not proc.stdout
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error: ")]
    assert "VideoFormatError" in line and str(garbage) in line
