"""Fragmented MP4 streaming (avatar.media.mp4_stream): the same frames and audio as a file, in
fragments that leave as they are cut, cut short (never finished) on abort, and a pipeline
render into a sink."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from avatar.cancel import CancelToken
from avatar.config import compose, pipeline_from_config
from avatar.errors import Cancelled, VideoFormatError
from avatar.media import (
    FRAGMENT_SECONDS,
    EncoderSettings,
    Mp4StreamWriter,
    Mp4Writer,
    check_mp4_output,
    open_mp4,
    probe_mp4,
    read_mp4,
)
from avatar.media.mp4_reader import mp4_boxes
from tests.fakes import CountingRenderer, FakeRenderer

FPS, SIZE, SR, N = 25, 64, 24000, 60
ENC = EncoderSettings(
    crf=18, preset="veryfast", threads=1, tune=None, x264_params="", audio_bitrate=128000
)


def _frames(n: int) -> np.ndarray:
    """(n, SIZE, SIZE, 3) uint8: a gradient drifting a pixel per frame."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for t in range(n):
        out[t, ..., 0] = (xx + t) * 255 // (SIZE + n)
        out[t, ..., 1] = yy * 255 // SIZE
        out[t, ..., 2] = 128
    return out


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


class Collect:
    """A sink that keeps the pieces and how many frames were written when each arrived."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.at_frame: list[int] = []
        self.writer: Mp4StreamWriter | None = None

    def __call__(self, data: bytes) -> None:
        self.pieces.append(data)
        self.at_frame.append(self.writer.n_frames if self.writer else -1)

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)


def _stream(frames: np.ndarray, audio: np.ndarray) -> Collect:
    sink = Collect()
    with Mp4StreamWriter(sink, fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC) as w:
        sink.writer = w
        w.write_audio(audio)
        w.write_frames(frames)
    return sink


def test_a_stream_carries_what_a_file_carries(tmp_path: Path) -> None:
    frames, audio = _frames(N), _tone(N / FPS)
    streamed = tmp_path / "s.mp4"
    streamed.write_bytes(_stream(frames, audio).data)
    with Mp4Writer(
        tmp_path / "f.mp4", fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC
    ) as w:
        w.write_audio(audio)
        w.write_frames(frames)
    info, file_info = probe_mp4(streamed), probe_mp4(tmp_path / "f.mp4")
    assert (info["video_codec"], info["audio_codec"], info["fps"]) == ("h264", "aac", 25.0)
    assert info["n_video_frames"] == file_info["n_video_frames"] == N
    assert info["video_duration"] == info["audio_duration"] == N / FPS
    s, f = read_mp4(streamed), read_mp4(tmp_path / "f.mp4")
    for clip in (s, f):  # both within H.264's loss of the frames given (crf 18)
        assert np.abs(clip.frames.astype(int) - frames).mean() < 2.0
    # the AAC priming lies over the first 1024 samples; after it the audio is in sync
    n = min(len(s.audio), len(audio))
    assert len(s.audio) == len(f.audio) == round(N / FPS * SR)
    assert np.corrcoef(s.audio[2048:n], audio[2048:n])[0, 1] > 0.99
    assert np.abs(s.audio[:900]).max() < 0.05


def test_fragments_leave_as_they_are_cut() -> None:
    sink = _stream(_frames(N), _tone(N / FPS))
    keyint = round(FRAGMENT_SECONDS * FPS)
    assert keyint == 12
    assert mp4_boxes(sink.pieces[0] + sink.pieces[1])[:2] == ["ftyp", "moov"]
    assert sink.at_frame[:2] == [-1, -1], "the header goes out when the writer opens"
    boxes = mp4_boxes(sink.data)
    assert boxes[:2] == ["ftyp", "moov"] and boxes[-1] == "mfra"
    assert boxes.count("moof") == boxes.count("mdat") == N // keyint
    # every fragment but the last left while frames were still being written
    during = [f for f in sink.at_frame if 0 <= f < N]
    assert len(set(during)) >= N // keyint - 1 and min(during) <= 2 * keyint


def test_keyframes_every_fragment(tmp_path: Path) -> None:
    path = tmp_path / "s.mp4"
    path.write_bytes(_stream(_frames(N), _tone(N / FPS)).data)
    with av.open(str(path)) as container:
        keys = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert [i for i, k in enumerate(keys) if k] == list(range(0, N, 12))


def test_abort_cuts_the_stream_short() -> None:
    sink = Collect()
    w = Mp4StreamWriter(sink, fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC)
    w.write_audio(_tone(2.0))
    w.write_frames(_frames(40))
    sent = len(sink.pieces)
    w.abort()
    w.abort()  # idempotent
    assert len(sink.pieces) == sent, "nothing reaches the sink after abort"
    assert "mfra" not in mp4_boxes(sink.data)
    with pytest.raises(RuntimeError, match="closed"):
        w.write_frame(_frames(1)[0])


def test_an_error_inside_the_block_aborts_and_a_failing_sink_stops_the_writer() -> None:
    sink = Collect()
    with pytest.raises(ValueError, match="boom"):
        with Mp4StreamWriter(sink, fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC) as w:
            w.write_frames(_frames(30))
            raise ValueError("boom")
    assert "mfra" not in mp4_boxes(sink.data)

    def gone(_: bytes) -> None:
        raise BrokenPipeError("the reader went away")

    with pytest.raises(OSError, match="reader went away"):
        with Mp4StreamWriter(gone, fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC) as w:
            w.write_frames(_frames(N))


def test_no_frames_is_an_error_and_bad_frames_are_named() -> None:
    sink = Collect()
    with pytest.raises(VideoFormatError, match="no frames"):
        with Mp4StreamWriter(sink, fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC):
            pass
    with pytest.raises(VideoFormatError, match=r"MP4 stream: frame 0 must be uint8 \(64, 64, 3\)"):
        with Mp4StreamWriter(sink, fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC) as w:
            w.write_frame(np.zeros((32, 32, 3), np.uint8))


def test_open_mp4_picks_the_writer(tmp_path: Path) -> None:
    sink = Collect()
    kwargs = dict(fps=FPS, size=(SIZE, SIZE), sample_rate=SR, encoder=ENC)
    with open_mp4(tmp_path / "a.mp4", **kwargs) as file_writer:
        assert isinstance(file_writer, Mp4Writer)
        file_writer.write_frames(_frames(2))
    with open_mp4(sink, **kwargs) as stream_writer:
        assert isinstance(stream_writer, Mp4StreamWriter)
        stream_writer.write_frames(_frames(2))
    assert (tmp_path / "a.mp4").is_file() and mp4_boxes(sink.data)[:2] == ["ftyp", "moov"]
    assert check_mp4_output(sink) is sink
    assert check_mp4_output(str(tmp_path / "b.mp4")) == tmp_path / "b.mp4"


def _fake_pipeline(cache: Path, renderer: object):
    cfg = compose("render", [f"identity.cache_dir={cache}", "renderer.size=64"])
    return pipeline_from_config(cfg, renderer=renderer)


@pytest.fixture(scope="module")
def pipeline(identity_cache: Path):
    return _fake_pipeline(identity_cache, FakeRenderer(size=64))


def test_a_render_into_a_sink_is_the_render_into_a_file(pipeline, tmp_path: Path) -> None:
    sink = Collect()
    streamed = pipeline.render_text("default", "Hello there.", sink)
    saved = pipeline.render_text("default", "Hello there.", tmp_path / "f.mp4")
    assert streamed.path is None and saved.path == tmp_path / "f.mp4"
    assert streamed.n_frames == saved.n_frames
    (tmp_path / "s.mp4").write_bytes(sink.data)
    s, f = read_mp4(tmp_path / "s.mp4"), read_mp4(saved.path)
    assert s.n_frames == f.n_frames == saved.n_frames
    assert np.abs(s.frames.astype(int) - f.frames).mean() < 1.0
    assert np.corrcoef(s.audio[2048:], f.audio[2048:])[0, 1] > 0.99
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.mp4", "s.mp4"]


def test_a_cancelled_render_into_a_sink_stops_within_a_frame(identity_cache: Path) -> None:
    token, sink = CancelToken(), Collect()
    counting = CountingRenderer(FakeRenderer(size=64), cancel_at=20, token=token)
    with pytest.raises(Cancelled):
        _fake_pipeline(identity_cache, counting).render_text(
            "default", "Hello there. Nice to meet you.", sink, cancel=token
        )
    assert counting.frames == 21 and counting.frames_after_cancel == 0
    assert mp4_boxes(sink.data)[:2] == ["ftyp", "moov"] and "mfra" not in mp4_boxes(sink.data)
