"""One pipeline, many threads: the frames of concurrent requests are those of serial ones,
companions are resolved once, and a render stops within one frame of being cancelled."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from avatar.cancel import CancelToken
from avatar.companion import CompanionSpec
from avatar.config import compose, pipeline_from_config
from avatar.errors import Cancelled
from avatar.media import read_mp4
from avatar.renderers.meshwarp import MeshWarpRenderer
from tests.fakes import CountingRenderer
from tests.settings import image_limits

SIZE = 128


@pytest.fixture(scope="module")
def companions(tmp_path_factory) -> list[CompanionSpec]:
    """Two companions: the default portrait, and its mirror image speaking with a flite voice."""
    from avatar.companion import load_image

    folder = tmp_path_factory.mktemp("mirror")
    mirrored = folder / "mirrored.png"
    cv2.imwrite(str(mirrored), load_image("embedded:astronaut", **image_limits())[:, ::-1, ::-1])
    return [
        CompanionSpec(id="astra", name="Astra", images=["embedded:astronaut"]),
        CompanionSpec(id="mirror", name="Mirror", images=[str(mirrored)], voice="flite-slt"),
    ]


REQUESTS = [  # (companion index, text, emotion)
    (0, "Hello there.", None),
    (1, "Good morning to you.", None),
    (0, "I am so glad you came. [smile] Really!", None),
    (1, "That is sad news.", "sad"),
    (0, "What a surprise!", "surprised"),
    (1, "Let me think about it.", None),
    (0, "Yes. No. Maybe.", "angry"),
    (1, "See you tomorrow, then.", "happy"),
]


def _pipeline(render_config_overrides, **components):
    cfg = compose("render", [*render_config_overrides, f"renderer.size={SIZE}"])
    return pipeline_from_config(cfg, **components)


def _render(pipeline, companions, out_dir: Path, k: int):
    who, text, emotion = REQUESTS[k]
    result = pipeline.render_text(companions[who], text, out_dir / f"{k}.mp4", emotion=emotion)
    clip = read_mp4(result.path)
    return clip.frames, clip.audio


def test_eight_requests_on_four_threads_give_the_serial_frames(
    render_config_overrides, companions, tmp_path
):
    serial_pipe = _pipeline(render_config_overrides)
    serial = [_render(serial_pipe, companions, tmp_path, k) for k in range(len(REQUESTS))]
    shared = _pipeline(render_config_overrides)
    out = tmp_path / "threads"
    out.mkdir()
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(lambda k: _render(shared, companions, out, k), range(8)))
    for k, ((frames_a, audio_a), (frames_b, audio_b)) in enumerate(
        zip(serial, threaded, strict=True)
    ):
        assert frames_a.shape == frames_b.shape and len(frames_a) > 20, k
        np.testing.assert_array_equal(frames_a, frames_b, err_msg=f"request {k}")
        np.testing.assert_array_equal(audio_a, audio_b, err_msg=f"request {k}")
    assert len({f.shape[0] for f, _ in serial}) > 3, "the eight requests differ"
    assert shared.identities.derivations == 2, "each companion is resolved once"


def test_concurrent_first_requests_derive_a_companion_once(render_config_overrides, tmp_path):
    pipeline = _pipeline(
        render_config_overrides, renderer=MeshWarpRenderer(size=96, mouth_interior=True)
    )
    spec = CompanionSpec(id="astra", name="Astra", images=["embedded:astronaut"])
    start = threading.Barrier(4)

    def resolve(_: int):
        start.wait()
        return pipeline.resolve(spec)

    with ThreadPoolExecutor(max_workers=4) as pool:
        resolved = list(pool.map(resolve, range(4)))
    assert pipeline.identities.derivations == 1
    assert all(r is resolved[0] for r in resolved)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_render_stops_within_one_frame_of_its_cancellation(
    render_config_overrides, companions, tmp_path, threads
):
    token = CancelToken()
    probe = CountingRenderer(
        MeshWarpRenderer(size=SIZE, mouth_interior=True), cancel_at=5, token=token
    )
    overrides = [*render_config_overrides, f"render_threads={threads}"]
    pipeline = _pipeline(overrides, renderer=probe)
    out = tmp_path / "cancelled.mp4"
    with pytest.raises(Cancelled, match="the client left"):
        pipeline.render_text(
            companions[0], "This sentence is long enough for many frames.", out, cancel=token
        )
    # frame 5 was under way when the client left; with two render threads the frame beside it
    # may have been started too, but no frame is started after the cancel
    assert 6 <= probe.frames <= 5 + threads
    assert probe.frames_after_cancel <= threads - 1
    assert list(tmp_path.iterdir()) == [], "nothing written, no temporary file left"
    again = pipeline.render_text(companions[0], "Still here.", out)  # the pipeline serves on
    assert again.n_frames == len(read_mp4(out).frames) > 10


def test_cancelling_from_another_thread(render_config_overrides, companions, tmp_path):
    token = CancelToken()
    probe = CountingRenderer(MeshWarpRenderer(size=SIZE, mouth_interior=True), token=token)
    pipeline = _pipeline(render_config_overrides, renderer=probe)
    pipeline.resolve(companions[0])  # warm, so the render starts at once
    errors: list[BaseException] = []

    def render() -> None:
        try:
            pipeline.render_text(
                companions[0], "One. Two. Three. Four. Five. Six.", tmp_path / "x.mp4", cancel=token
            )
        except BaseException as exc:  # noqa: BLE001 (handed to the test thread)
            errors.append(exc)

    worker = threading.Thread(target=render)
    worker.start()
    while probe.frames < 3 and worker.is_alive():
        threading.Event().wait(0.005)
    token.cancel("closed the tab")
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)
    assert probe.frames_after_cancel <= 1, "at most the frame under way when cancel() came"
    assert not (tmp_path / "x.mp4").exists()


def test_render_mp4_builds_its_pipeline_once_for_all_threads(identity_cache, tmp_path):
    from avatar.render import render_mp4

    overrides = [f"renderer.size={SIZE}", f"identity.cache_dir={identity_cache}"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda k: render_mp4("Hi there.", tmp_path / f"{k}.mp4", overrides=overrides),
                range(2),
            )
        )
    a, b = (read_mp4(r.path).frames for r in results)
    np.testing.assert_array_equal(a, b)
    assert results[0].identity is results[1].identity  # one pipeline, one in-memory identity
