"""evals.score on clips whose audio was shifted by k frames reports an offset changed by k."""

from __future__ import annotations

import json
from pathlib import Path

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
    features = dict(compose("eval").features)
    base = score_video(speech_clip.path, _suite(), feature_options=features)["lipsync/av_offset"]
    assert abs(base) <= 1
    for k in (-5, 3):
        wav = write_wav(
            tmp_path / f"shift{k}.wav",
            shift(speech_clip.audio, speech_clip.sample_rate, speech_clip.fps, k),
            speech_clip.sample_rate,
        )
        report = score_video(speech_clip.path, _suite(), audio=wav, feature_options=features)
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
        encoder=EncoderSettings(crf=18, preset="veryfast", audio_bitrate=128000),
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
