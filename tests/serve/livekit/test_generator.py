"""The companion's VideoGenerator under livekit-agents' own AvatarRunner, in real time.

No LiveKit server runs here: :class:`~serve.livekit.local_room.LocalRoom` stands in for the
room (it only accepts the publications); the media path is LiveKit's real code
(``AudioSource``, ``VideoSource``, ``AVSynchronizer``, local tracks read back through
``rtc.VideoStream`` and ``rtc.AudioStream``). Timing figures are measured in publish time.
"""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from avatar.audio import Audio  # noqa: E402
from avatar.config import compose, pipeline_from_config  # noqa: E402
from serve.livekit.companion import RealtimeSettings, open_generator  # noqa: E402
from serve.livekit.simulation import simulate_call  # noqa: E402
from tests.fakes import FakeRenderer, decode_fake_frame, pipeline_with  # noqa: E402
from tests.serve.livekit.helpers import (  # noqa: E402
    audio_onsets,
    published_speech_span,
    tone_bursts,
    with_noise_floor,
)

FPS = 25
RATE = 24000
SETTINGS = RealtimeSettings(audio_sample_rate=RATE, idle_lead_s=0.04, listen=True, max_sessions=4)


@pytest.fixture(scope="module")
def pipeline(render_config_overrides):
    """The default pipeline (the trained audio-to-motion checkpoint) at 128 px."""
    return pipeline_from_config(compose("render", [*render_config_overrides, "renderer.size=128"]))


@pytest.fixture(scope="module")
def fake_pipeline(pipeline):
    """The same stages with FakeRenderer (frames carry their audio's RMS and mouth values),
    standing in for the face so that publish times can be read off the frames."""
    return pipeline_with(pipeline, FakeRenderer(size=64))


@pytest.fixture(scope="module")
def speech(pipeline) -> Audio:
    s = pipeline.speak("Hello there, it is lovely to see you. Shall we begin our walk?")
    return Audio(with_noise_floor(s.audio), s.sample_rate)


def _run(gen, speech, **kwargs):
    return asyncio.run(simulate_call(gen, speech, **kwargs))


def test_published_audio_and_video_are_in_sync_and_the_segment_end_is_exact(fake_pipeline):
    """Tone bursts at frame boundaries: the first frame whose audio is loud is captured when
    that audio is published (within 20 ms), and the reported position is the utterance."""
    bursts = [(0.4, 0.8), (1.2, 1.6), (2.0, 2.2)]
    speech = Audio(tone_bursts(bursts, 2.4, RATE), RATE)
    gen = open_generator(fake_pipeline, "default", SETTINGS)
    result = _run(gen, speech, lead_s=0.3, tail_s=0.3)
    rec = result.recording

    audio_on = audio_onsets(rec)
    loud = [decode_fake_frame(image)[1] > 0.05 for _, image in rec.video]
    video_on = [rec.video[k][0] for k in range(1, len(loud)) if loud[k] and not loud[k - 1]]
    assert len(audio_on) == len(video_on) == len(bursts)
    offsets_ms = [1000 * (v - a) for v, a in zip(video_on, audio_on, strict=True)]
    assert max(abs(o) for o in offsets_ms) <= 20, offsets_ms

    assert result.interrupted is False
    assert result.playback_position == pytest.approx(2.4, abs=1 / FPS)
    assert gen.stats.speech_frames == math.ceil(2.4 * FPS)
    assert gen.stats.speech_samples == len(speech.mono)
    assert gen.stats.segments == 1 and gen.stats.idle_frames > 0


def test_an_interruption_closes_the_mouth_within_two_frames_and_reports_what_was_heard(
    fake_pipeline, speech
):
    gen = open_generator(fake_pipeline, "default", SETTINGS)
    result = _run(gen, speech, lead_s=0.3, interrupt_at=1.0, tail_s=0.6)
    rec = result.recording
    assert result.interrupted is True

    start, end = published_speech_span(rec)
    heard = end - start
    assert result.playback_position == pytest.approx(heard, abs=1 / FPS)
    assert 0.8 <= heard <= 1.05, "about interrupt_at of speech was heard, then it stopped"

    jaw = np.array([decode_fake_frame(image)[0][0] for _, image in rec.video])
    times = np.array([t for t, _ in rec.video])
    talking = (times > start + 0.2) & (times < end - 0.1)
    assert np.abs(jaw[talking]).max() > 0.1, "the mouth moved while she spoke"
    after = times >= end + 2 / FPS
    assert after.sum() >= 10 and np.abs(jaw[after]).max() < 0.011, "closed two frames after"
    assert gen.stats.interruptions >= 1


def test_idle_keeps_25_fps_with_blinks_and_never_freezes(pipeline):
    """Ten seconds with nothing to say: frames at 25 fps, blinks, no two-second still run."""
    from evals.functional.blink import detect_blinks
    from evals.functional.mouth import eye_openness
    from evals.landmarks import track_video

    gen = open_generator(pipeline, "default", SETTINGS)
    rec = _run(gen, None, lead_s=10.0).recording
    times = np.array([t for t, _ in rec.video])
    assert len(times) == pytest.approx(10.0 * FPS, abs=5)
    gaps = np.diff(times)
    assert np.median(gaps) == pytest.approx(1 / FPS, abs=0.003)
    assert gaps.max() < 3 / FPS, "no frame deadline missed by more than two frames"

    frames = np.stack([image for _, image in rec.video])
    blinks = detect_blinks(eye_openness(track_video(frames, FPS).landmarks), FPS)
    assert len(blinks) >= 2, "a relaxed blink rate is 10-20 a minute"
    same = [np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False)]
    run = longest_true_run(same)
    assert run < 2 * FPS, f"{run} identical frames in a row"


def longest_true_run(flags: list[bool]) -> int:
    best = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        best = max(best, current)
    return best


def test_the_audio_rate_must_give_whole_samples_per_frame(fake_pipeline):
    from avatar.errors import ConfigValueError

    bad = RealtimeSettings(audio_sample_rate=16001, idle_lead_s=0.04, listen=False, max_sessions=1)
    with pytest.raises(ConfigValueError, match="16001"):
        open_generator(fake_pipeline, "default", bad)


def test_unknown_realtime_keys_are_refused():
    from avatar.errors import ConfigValueError

    with pytest.raises(ConfigValueError, match="sample_rate"):
        RealtimeSettings.from_config({"sample_rate": 24000})


class ListenerProbe:
    """Records what reaches a listener (a probe around the real one, which it calls)."""

    def __init__(self, inner) -> None:
        self.inner, self.samples, self.calls = inner, 0, []

    def push(self, audio, sample_rate) -> None:
        self.samples += len(audio)
        self.inner.push(audio, sample_rate)

    def apply(self, rows, speaking):
        self.calls.append((len(rows), speaking))
        return self.inner.apply(rows, speaking)


def test_the_users_microphone_drives_listening_between_utterances(fake_pipeline):
    user = Audio(tone_bursts([(0.1, 1.2)], 1.8, 16000), 16000)
    speech = Audio(tone_bursts([(0.0, 0.8)], 0.8, RATE), RATE)
    gen = open_generator(fake_pipeline, "default", SETTINGS)
    probe = ListenerProbe(gen.listener)
    gen.listener = gen.session.listener = probe
    result = _run(gen, speech, lead_s=0.2, listen=user, tail_s=0.2)
    assert probe.samples == pytest.approx(1.8 * RATE, abs=RATE * 0.02), "mic audio, resampled"
    idle = sum(n for n, speaking in probe.calls if not speaking)
    spoken = sum(n for n, speaking in probe.calls if speaking)
    assert spoken == gen.stats.speech_frames == math.ceil(0.8 * FPS)
    assert idle >= gen.stats.idle_frames > 1.8 * FPS, "every idle frame went through it"
    assert result.playback_position == pytest.approx(0.8, abs=1 / FPS)


def test_a_stalled_voice_agent_does_not_freeze_the_face(fake_pipeline):
    """The agent's audio stops for a second mid-utterance (a slow TTS): frames keep coming at
    25 fps (idle, mouth closed, the audio silent), then the utterance goes on."""
    from livekit.agents.voice.avatar import QueueAudioOutput

    from serve.livekit.frames import audio_frame, to_int16
    from serve.livekit.local_room import LocalRoom
    from serve.livekit.runner import CompanionAvatarRunner

    async def call():
        gen = open_generator(fake_pipeline, "default", SETTINGS)
        room = LocalRoom(audio_sample_rate=RATE)
        output = QueueAudioOutput(sample_rate=RATE, wait_playback_start=True)
        runner = CompanionAvatarRunner(
            room, audio_recv=output, video_gen=gen, options=gen.options(), _lazy_publish=False
        )
        await runner.start()
        pcm = to_int16(tone_bursts([(0.0, 0.8)], 0.8, RATE))
        await asyncio.sleep(0.3)
        for half in (pcm[: len(pcm) // 2], pcm[len(pcm) // 2 :]):
            for i in range(0, len(half), 480):
                await output.capture_frame(audio_frame(half[i : i + 480], RATE))
            await asyncio.sleep(1.0)
        output.flush()
        await asyncio.sleep(0.6)
        await gen.aclose()
        await runner.aclose()
        await room.aclose()
        return gen, room.recording

    gen, rec = asyncio.run(call())
    gaps = np.diff([t for t, _ in rec.video])
    assert gaps.max() < 3 / FPS, "the published video never froze"
    assert gen.stats.idle_frames > 1.5 * FPS and gen.stats.speech_frames == math.ceil(0.8 * FPS)
