"""Long texts in segments (avatar.long_text): continuous motion at the boundaries, audio and
video of exactly equal length, one-segment texts as before, the text limit, cancellation,
errors that name the segment, determinism, even loudness.

The renders use small segments (a text of 3-4 segments) and the fake renderer at 64 px: the
motion, audio and MP4 lengths do not depend on the renderer.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from avatar.cancel import CancelToken
from avatar.config import compose, pipeline_from_config
from avatar.errors import Cancelled, ConfigValueError, TextInputError
from avatar.long_text import LongTextSettings, pad_to_frames
from avatar.media import read_mp4
from avatar.motion.track import EXPRESSION_CHANNELS, HEAD_CHANNELS
from avatar.speech.loudness import active_rms_dbfs
from avatar.speech.segments import split_segments
from avatar.speech.timeline import PhonemeTimeline
from avatar.speech.tts import Speech
from tests.fakes import CountingRenderer, FakeRenderer

TEXT = (
    "Hello there, it is good to see you again. I have been thinking about our last talk. "
    "[smile] It made me so happy to hear about your garden. The tomatoes sound wonderful! "
    "Tell me, did the roses bloom this year? I would love to see a picture of them soon."
)
SEGMENTS = ["long_text.segment_chars=90", "long_text.first_segment_chars=45"]


def _pipeline(cache: Path, *overrides: str, renderer=None):
    cfg = compose("render", [f"identity.cache_dir={cache}", "renderer.size=64", *overrides])
    return pipeline_from_config(cfg, renderer=renderer or FakeRenderer(size=64))


@pytest.fixture(scope="module")
def pipeline(identity_cache):
    return _pipeline(identity_cache, *SEGMENTS)


@pytest.fixture(scope="module")
def rendered(pipeline, tmp_path_factory):
    return pipeline.render_text("default", TEXT, tmp_path_factory.mktemp("long") / "long.mp4")


def _steps(values: np.ndarray, boundaries: list[int], reach: int) -> tuple[float, float]:
    """Largest |frame-to-frame change| within ``reach`` frames of a boundary, and elsewhere."""
    steps = np.abs(np.diff(values))  # steps[k]: frame k -> k + 1
    near = np.zeros(len(steps), bool)
    for b in boundaries:
        near[max(b - 1 - reach, 0) : b + reach] = True
    return float(steps[near].max()), float(steps[~near].max())


def test_the_text_goes_in_segments(rendered):
    assert len(rendered.boundaries) == 3  # 4 segments
    assert rendered.speech is None  # the audio is in the MP4 only


@pytest.fixture(scope="module")
def unblended(identity_cache, tmp_path_factory):
    """The same text with no blend: each segment's own motion, as made."""
    plain = _pipeline(identity_cache, *SEGMENTS, "long_text.blend_s=0")
    return plain.render_text("default", TEXT, tmp_path_factory.mktemp("cut") / "cut.mp4")


def test_head_pose_is_continuous_at_the_boundaries(rendered, unblended):
    assert rendered.boundaries == unblended.boundaries
    for name in HEAD_CHANNELS:
        at_boundary, elsewhere = _steps(rendered.motion[name], rendered.boundaries, reach=2)
        assert at_boundary <= elsewhere, f"{name}: {at_boundary:.3f} deg/frame at a boundary"
        # within a segment, the blend (all that differs from the unblended track) never moves
        # the head faster than it moves by itself away from the boundaries
        blend = np.abs(np.diff(rendered.motion[name] - unblended.motion[name]))
        blend[[b - 1 for b in rendered.boundaries]] = 0.0  # the jumps it takes away
        assert blend.max() <= elsewhere, name


def test_without_the_blend_the_head_would_jump(unblended):
    """The measure above sees jumps: with no blend the head jumps at the boundaries."""
    jumps = [
        _steps(unblended.motion[name], unblended.boundaries, reach=0) for name in HEAD_CHANNELS
    ]
    assert max(at / elsewhere for at, elsewhere in jumps) > 3


def test_expression_gaze_and_mouth_at_the_boundaries(rendered):
    motion, boundaries = rendered.motion, rendered.boundaries
    for name in (*EXPRESSION_CHANNELS, "gaze_x", "gaze_y"):
        at_boundary, _ = _steps(motion[name], boundaries, reach=0)
        assert at_boundary < 0.05, name
    # the [smile] of the second segment holds through the third and fourth
    smile = motion["smile"]
    assert smile[boundaries[1] :].min() > 0.9 * smile[boundaries[1] - 1] > 0.3
    for b in boundaries:  # silence between segments: the mouth is closed
        assert np.abs(motion["jaw_open"][b - 2 : b + 2]).max() < 0.05
        assert np.abs(motion["lip_open"][b - 2 : b + 2]).max() < 0.05


def test_audio_and_video_have_exactly_the_same_length(rendered):
    assert rendered.n_frames == round(rendered.audio_seconds * 25)
    assert rendered.audio_seconds * 25 == pytest.approx(rendered.n_frames, abs=1e-9)
    clip = read_mp4(rendered.path)
    assert len(clip.frames) == rendered.n_frames == round(len(clip.audio) / clip.sample_rate * 25)


def test_segments_never_drift_over_a_hundred_of_them():
    rng = np.random.default_rng(0)
    fps, rate = 30000 / 1001, Fraction(30000, 1001)
    samples = frames = 0
    for _ in range(100):
        n = int(rng.integers(4000, 90000))
        speech = Speech(
            np.ones(n, np.float32), 16000, PhonemeTimeline.from_durations(["a"], [n / 16000]), ""
        )
        padded, count = pad_to_frames(speech, samples_before=samples, frames_before=frames, fps=fps)
        pad = len(padded.audio) - n
        assert 0 <= pad < 16000 / fps and padded.timeline.duration * 16000 == pytest.approx(
            len(padded.audio)
        )
        samples, frames = samples + len(padded.audio), frames + count
        assert samples == round(frames * 16000 / rate)  # the writer's own rule, exactly


def test_loudness_is_even_across_segments(rendered):
    clip = read_mp4(rendered.path)
    edges = [0, *rendered.boundaries, rendered.n_frames]
    per = clip.sample_rate / 25
    levels = [
        active_rms_dbfs(clip.audio[int(a * per) : int(b * per)], clip.sample_rate)
        for a, b in zip(edges, edges[1:], strict=False)
    ]
    assert max(levels) - min(levels) < 1.0 and abs(np.mean(levels) + 20.0) < 1.0, levels


def test_the_same_text_renders_the_same(pipeline, rendered, tmp_path):
    again = pipeline.render_text("default", TEXT, tmp_path / "again.mp4")
    np.testing.assert_array_equal(again.motion.values, rendered.motion.values)
    a, b = read_mp4(rendered.path), read_mp4(again.path)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.audio, b.audio)


def test_a_text_of_one_segment_is_spoken_in_one_call_as_before(pipeline, tmp_path):
    text = "Hello there. [smile] Nice to meet you."
    result = pipeline.render_text("default", text, tmp_path / "one.mp4")
    speech = pipeline.speak("Hello there. Nice to meet you.")
    assert result.boundaries == [] and result.speech is not None
    np.testing.assert_array_equal(result.speech.audio, speech.audio)


def test_a_text_over_the_limit_is_refused_before_any_work(identity_cache, tmp_path, monkeypatch):
    pipeline = _pipeline(identity_cache, "long_text.max_text_chars=100")
    voice = pipeline.voices.get(None)
    monkeypatch.setattr(voice, "synthesize", lambda text: pytest.fail("spoke"))
    with pytest.raises(TextInputError, match=r"long_text\.max_text_chars") as info:
        pipeline.render_text("default", TEXT, tmp_path / "o.mp4")
    assert f"{len(TEXT) - len('[smile] ')} characters" in str(info.value)
    assert not list(tmp_path.iterdir())


def test_cancelling_mid_way_writes_nothing(identity_cache, rendered, tmp_path):
    token = CancelToken()
    middle = rendered.boundaries[1] + 10  # in the third segment
    counting = CountingRenderer(FakeRenderer(size=64), cancel_at=middle, token=token)
    pipeline = _pipeline(identity_cache, *SEGMENTS, renderer=counting)
    with pytest.raises(Cancelled):
        pipeline.render_text("default", TEXT, tmp_path / "o.mp4", cancel=token)
    # the frame that cancelled, and at most one the other render thread had started
    assert middle < counting.frames <= middle + 2 and counting.frames_after_cancel <= 1
    assert not list(tmp_path.iterdir())


def test_an_unspeakable_segment_names_its_place_and_writes_nothing(pipeline, tmp_path):
    text = f"Hello there, how are you today? {'你好' * 40}. I am fine, thank you very much!"
    with pytest.raises(TextInputError, match=r"segment 2 of 3 \(characters 33-113: '你好"):
        pipeline.render_text("default", text, tmp_path / "o.mp4")
    with pytest.raises(TextInputError, match=r"segment 2 of 3 .* nothing speakable"):
        pipeline.render_text("default", text.replace("你好", "?!"), tmp_path / "o.mp4")
    assert not list(tmp_path.iterdir())


def test_split_segments_keeps_sentences_whole_and_tags_with_their_words():
    text = "One two. Three four five, six seven eight nine. Ten."
    segments = split_segments(text, [(2, "happy", 1.0), (9, "sad", 0.5)], first_chars=9, chars=20)
    assert [s.text for s in segments] == [
        "One two.",
        "Three four five,",
        "six seven eight",
        "nine. Ten.",
    ]
    assert " ".join(s.text for s in segments) == text
    assert [s.tags for s in segments] == [[], [(0, "happy", 1.0)], [], [(1, "sad", 0.5)]]
    with pytest.raises(TextInputError, match="a word of 13 characters at character 5"):
        split_segments("One abcdefghijkl.", [], first_chars=9, chars=9)


def test_settings_are_checked():
    with pytest.raises(ConfigValueError, match="long_text.first_segment_chars"):
        LongTextSettings(max_text_chars=10, segment_chars=5, first_segment_chars=6, blend_s=1.0)
    with pytest.raises(ConfigValueError, match="long_text.blend_s"):
        LongTextSettings(max_text_chars=10, segment_chars=5, first_segment_chars=5, blend_s=-1)


def test_a_first_part_moves_as_a_plain_track(pipeline):
    speech = pipeline.speak("Hello there.")
    n = round(speech.duration * 25)
    args = (speech.timeline, speech.audio, speech.sample_rate, n)
    track, carry = pipeline.motion.continue_from(None, *args, blend_s=1.0)
    np.testing.assert_array_equal(track.values, pipeline.motion.generate(*args).values)
    later, _ = pipeline.motion.continue_from(carry, *args, blend_s=1.0, seed=5)
    yaw = np.r_[track["head_yaw"], later["head_yaw"]]
    assert abs(yaw[n] - yaw[n - 1]) <= np.abs(np.diff(track["head_yaw"])).max() + 1e-6


def test_a_long_text_streams_into_a_sink_as_into_a_file(pipeline, rendered, tmp_path):
    """The HTTP API's path: fragments into a sink, the same frames and audio as the file."""
    pieces: list[bytes] = []
    streamed = pipeline.render_text("default", TEXT, pieces.append)
    assert streamed.path is None and streamed.n_frames == rendered.n_frames
    (tmp_path / "s.mp4").write_bytes(b"".join(pieces))
    s, f = read_mp4(tmp_path / "s.mp4"), read_mp4(rendered.path)
    assert len(s.frames) == len(f.frames) and np.abs(s.frames.astype(int) - f.frames).mean() < 1
    assert np.corrcoef(s.audio[2048:], f.audio[2048:])[0, 1] > 0.99


def test_progress_counts_every_frame_and_learns_the_total_at_the_last_segment(
    pipeline, rendered, tmp_path
):
    seen: list[tuple[int, int | None]] = []
    again = pipeline.render_text("default", TEXT, tmp_path / "bar.mp4", progress=_append(seen))
    n = again.n_frames
    assert [done for done, _ in seen] == list(range(1, n + 1))  # each frame once, in order
    last_start = rendered.boundaries[-1]  # frames before the last segment: total unknown
    assert all(total is None for _, total in seen[:last_start])
    assert all(total == n for _, total in seen[last_start:])


def test_progress_of_a_one_segment_text_knows_its_total_from_the_first_frame(pipeline, tmp_path):
    seen: list[tuple[int, int | None]] = []
    result = pipeline.render_text(
        "default", "Hello there.", tmp_path / "a.mp4", progress=_append(seen)
    )
    assert seen == [(k, result.n_frames) for k in range(1, result.n_frames + 1)]


def _append(seen: list):
    return lambda done, total: seen.append((done, total))
