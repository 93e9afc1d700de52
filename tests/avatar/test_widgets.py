"""avatar.widgets built and driven without a kernel (ipywidgets objects are plain Python)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from avatar.companion import CompanionSpec  # noqa: E402
from avatar.motion.track import CHANNELS, MotionTrack  # noqa: E402
from avatar.render_result import RenderResult  # noqa: E402
from avatar.speech.timeline import PhonemeTimeline  # noqa: E402
from avatar.speech.tts import Speech  # noqa: E402
from avatar.widgets import (  # noqa: E402
    CompanionPicker,
    FrameScrubber,
    RenderPanel,
    built_in_companions,
    timeline_figure,
)

FPS, N, SIZE = 25.0, 10, 32


def _result(path=None) -> RenderResult:
    channels = (*CHANNELS, "viseme.sil", "viseme.aa")
    values = np.zeros((N, len(channels)), np.float32)
    values[:, channels.index("jaw_open")] = np.linspace(0, 1, N)
    values[:5, channels.index("viseme.sil")] = 1.0
    values[5:, channels.index("viseme.aa")] = 1.0
    rate = 16000
    timeline = PhonemeTimeline.from_durations(["_", "a"], [0.2, 0.2])
    speech = Speech(np.sin(np.arange(int(0.4 * rate)) / 9).astype(np.float32), rate, timeline, "a")
    # an identity stand-in: a 64 px portrait whose landmarks sit on its centre
    identity = SimpleNamespace(
        landmarks=np.full((478, 3), 32.0, np.float32), portrait=np.zeros((64, 64, 3), np.uint8)
    )
    motion = MotionTrack(values, channels, FPS)
    return RenderResult(path, N, FPS, 0.4, {"total": 0.1}, identity, motion, speech)


def _frames() -> np.ndarray:
    return np.stack([np.full((SIZE, SIZE, 3), 10 * i, np.uint8) for i in range(N)])


def test_scrubber_follows_its_slider():
    scrubber = FrameScrubber(_result(), frames=_frames())
    assert scrubber.slider.max == N - 1
    assert "frame 0</b>" in scrubber.label.value
    first = scrubber.image.value
    scrubber.slider.value = 7
    assert "frame 7</b>" in scrubber.label.value and "0.28 s" in scrubber.label.value
    assert scrubber.image.value != first
    assert scrubber.frame_image()[0, 0, 0] == 70
    assert scrubber.channel_values()["jaw_open"] == pytest.approx(7 / 9)
    assert "jaw_open" in scrubber.values.value and "+0.778" in scrubber.values.value
    # landmarks: portrait centre (32 of 64) lands on the frame centre (16 of 32), in green
    scrubber.show_landmarks.value = True
    assert tuple(scrubber.frame_image()[16, 16]) == (0, 255, 0)
    assert tuple(scrubber.frame_image()[2, 2]) == (70, 70, 70)


def test_timeline_figure_has_its_rows():
    fig = timeline_figure(_result())
    rows = ["audio", "viseme", "mouth", "blinks", "gaze", "head"]
    assert [ax.get_ylabel() for ax in fig.axes] == rows
    assert {t.get_text() for t in fig.axes[1].texts} == {"sil", "aa"}
    gaze = fig.axes[4]
    assert [line.get_label() for line in gaze.get_lines()] == ["gaze_x", "gaze_y"]
    # a track without eye or head channels has no such rows; no speech, no audio row
    mouth_only = MotionTrack(np.zeros((N, 1), np.float32), ("jaw_open",), FPS)
    fig = timeline_figure(SimpleNamespace(speech=None, motion=mouth_only))
    assert [ax.get_ylabel() for ax in fig.axes] == ["mouth"]
    with pytest.raises(ValueError, match="neither speech nor motion"):
        timeline_figure(SimpleNamespace(speech=None, motion=None))


def test_picker_built_ins_and_upload(tmp_path):
    picker = CompanionPicker(upload_dir=tmp_path)
    assert "default" in built_in_companions()
    assert picker.spec.name == "Astra" and "Astra" in picker.status.value
    data = b"not really a png"
    upload = {"name": "Me.PNG", "type": "image/png", "size": len(data), "content": memoryview(data)}
    upload["last_modified"] = datetime.now(UTC)  # what FileUpload serializes
    picker.upload.value = (upload,)
    spec = picker.spec
    assert isinstance(spec, CompanionSpec) and spec.name == "Me" and spec.id.startswith("upload-")
    assert open(spec.images[0], "rb").read() == b"not really a png"
    picker.clear.click()
    assert picker.spec.name == "Astra"


def test_render_panel_renders_and_tells_listeners(tmp_path):
    calls = []

    class FakePipeline:
        def render_text(self, companion, text, out, *, emotion, emotion_intensity, progress):
            calls.append((companion.name, text, emotion, emotion_intensity))
            for k in range(1, N + 1):
                progress(k, N)
            out.write_bytes(b"\x00\x00\x00\x18ftypmp42")
            return _result(out)

    made = []
    panel = RenderPanel(
        "default",
        make_pipeline=lambda *key: made.append(key) or FakePipeline(),
        out_dir=tmp_path,
        size=128,
    )
    seen = []
    panel.on_render(seen.append)
    panel.text.value, panel.emotion.value, panel.seed.value = "Hi.", "happy", 3
    panel.button.click()
    assert made == [(128, 3, "meshwarp")] and calls == [("Astra", "Hi.", "happy", 1.0)]
    assert (panel.progress.value, panel.progress.max) == (N, N)
    assert "meshwarp" in panel.renderer.options
    assert seen == [panel.result] and panel.result.path == tmp_path / "render-1.mp4"
    assert "data:video/mp4;base64," in panel.video.value and "10 frames" in panel.status.value
    panel.emotion.value = "neutral"
    panel.make_pipeline = lambda *key: (_ for _ in ()).throw(RuntimeError("no voice"))
    assert panel.render() is None and "RuntimeError: no voice" in panel.status.value
