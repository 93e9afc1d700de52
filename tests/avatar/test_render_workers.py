"""Render worker processes (avatar.render_workers): the same frames as render threads, in order,
with cancellation, errors, crashes and shutdown handled."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import pytest

from avatar.cancel import CancelToken
from avatar.config import compose, pipeline_from_config
from avatar.errors import AvatarError, Cancelled
from avatar.render_ahead import RenderAhead
from avatar.render_workers import ProcessRenderAhead, RenderAheadFactory, RenderPool
from avatar.renderers.meshwarp.renderer import MeshWarpRenderer
from avatar.speech.tts import silence_speech
from tests.fakes import CountingRenderer, TrippingRenderer, motion_ramp

SIZE = 128


@pytest.fixture(scope="module")
def prepared(identity_settings):
    from avatar.companion import load_companion
    from avatar.identity.derive import derive_identity

    identity = derive_identity(load_companion("default"), size=SIZE, settings=identity_settings)
    return MeshWarpRenderer(size=SIZE, mouth_interior=True).prepare(identity)


def _motion(n_frames: int = 30):
    """Jaw ramp plus head and blink motion, so every frame differs."""
    track = motion_ramp(n_frames)
    t = np.arange(n_frames) / 25.0
    track.set("head_yaw", 0.5 * np.sin(2 * t))
    track.set("blink_l", (np.arange(n_frames) % 10 == 3).astype(np.float32))
    return track


@pytest.fixture
def pool():
    pools: list[RenderPool] = []

    def make(renderer, processes: int = 2) -> RenderPool:
        pools.append(RenderPool(renderer, processes=processes, window=4))
        return pools[-1]

    yield make
    for p in pools:
        p.close()
    assert mp.active_children() == []


def test_frames_equal_render_threads_in_order_and_the_pool_is_reused(prepared, pool):
    renderer = MeshWarpRenderer(size=SIZE, mouth_interior=True)
    motion = _motion()
    expected = list(RenderAhead(renderer, prepared, motion, threads=2))
    workers = pool(renderer)
    first = ProcessRenderAhead(renderer, prepared, motion, threads=2, pool=workers)
    frames = list(first)
    pids = workers.pids
    assert len(frames) == len(expected) == 30
    assert all(f.shape == (SIZE, SIZE, 3) and f.dtype == np.uint8 for f in frames)
    for k, (got, want) in enumerate(zip(frames, expected, strict=True)):
        assert np.array_equal(got, want), f"frame {k} differs from the threaded render"
    assert len({f.tobytes() for f in frames}) == len(frames)  # distinct, so order is checked
    assert first.busy_s > 0
    again = list(ProcessRenderAhead(renderer, prepared, motion, threads=2, pool=workers))
    assert workers.pids == pids, "a second render reuses the worker processes"
    assert all(np.array_equal(a, b) for a, b in zip(again, expected, strict=True))


def test_cancellation_and_a_consumer_that_stops_early(prepared, pool):
    renderer = MeshWarpRenderer(size=SIZE, mouth_interior=True)
    workers = pool(renderer, processes=1)
    token = CancelToken()
    got = []
    with pytest.raises(Cancelled, match="the client left"):
        for k, frame in enumerate(
            ProcessRenderAhead(renderer, prepared, _motion(), threads=2, cancel=token, pool=workers)
        ):
            got.append(frame)
            if k == 5:
                token.cancel("the client left")
    assert 6 <= len(got) < 30
    frames = iter(ProcessRenderAhead(renderer, prepared, _motion(), threads=2, pool=workers))
    next(frames)
    frames.close()  # the consumer stops early; its slots come back once the workers finish
    assert len(list(ProcessRenderAhead(renderer, prepared, _motion(), threads=2, pool=workers)))


def test_a_worker_exception_surfaces_with_its_message(prepared, pool):
    renderer = TrippingRenderer(
        MeshWarpRenderer(size=SIZE, mouth_interior=True), at=0.5, how="raise"
    )
    workers = pool(renderer)
    with pytest.raises(RuntimeError, match="jaw_open reached 0.5"):
        list(ProcessRenderAhead(renderer, prepared, _motion(), threads=2, pool=workers))
    assert workers.started, "a renderer error leaves the workers running"


def test_a_worker_that_dies_gives_a_clear_error_and_the_next_render_works(prepared, pool):
    renderer = TrippingRenderer(
        MeshWarpRenderer(size=SIZE, mouth_interior=True), at=0.5, how="exit"
    )
    workers = pool(renderer)
    with pytest.raises(
        AvatarError, match=r"render worker process \d+ (died \(exit code 3\)|is gone)"
    ):
        list(ProcessRenderAhead(renderer, prepared, _motion(), threads=2, pool=workers))
    old = workers.pids
    quiet = motion_ramp(12)
    quiet.set("jaw_open", np.zeros(12))  # never trips
    frames = list(ProcessRenderAhead(renderer, prepared, quiet, threads=2, pool=workers))
    assert len(frames) == 12 and set(workers.pids).isdisjoint(old)


def test_factory_picks_threads_or_processes(prepared):
    renderer = MeshWarpRenderer(size=SIZE, mouth_interior=True)
    assert RenderAheadFactory(renderer, 2, 0, 0).pool is None
    factory = RenderAheadFactory(renderer, 2, 2, 50)
    try:
        assert factory.pool is not None and not factory.pool.started
        assert factory.min_frames == 50
        long_clip, short_clip = _motion(60), _motion(10)
        assert isinstance(factory(prepared, short_clip), RenderAhead)
        assert not factory.pool.started, "a short clip does not start the workers"
        first = factory(prepared, long_clip)
        assert isinstance(first, RenderAhead), "the clip that starts them does not wait for them"
        assert factory.pool.started
        _wait_until_ready(factory.pool)
        assert isinstance(factory(prepared, short_clip), ProcessRenderAhead)
        unpicklable = RenderAheadFactory(CountingRenderer(renderer), 2, 2, 0)
        assert unpicklable.pool is None, "a renderer that does not pickle renders on threads"
    finally:
        factory.close()
    with pytest.raises(AvatarError, match="render_threads must be at least 1"):
        RenderAheadFactory(renderer, 0, 0, 0)


def _wait_until_ready(pool, limit_s: float = 60.0) -> None:
    """Wait (not a timing check: a generous limit for a slow machine) for the workers."""
    deadline = time.monotonic() + limit_s
    while not pool.ready:
        assert time.monotonic() < deadline, "the render workers never said they were running"
        time.sleep(0.05)


def test_pipeline_renders_in_processes_and_close_leaves_no_children(
    render_config_overrides, tmp_path
):
    overrides = [*render_config_overrides, "render_processes=2", "render_processes_min_frames=0"]
    pipeline = pipeline_from_config(compose("render", overrides))
    reference = pipeline_from_config(compose("render", render_config_overrides))
    try:
        speech = silence_speech(1.0, 16000)
        motion = pipeline.motion_for(speech, seed=1)
        # the first clip renders on threads and starts the workers in the background
        first = pipeline.render_speech("default", speech, tmp_path / "a.mp4", motion=motion)
        pool = pipeline.render_ahead.pool
        pids = pool.pids
        assert len(pids) == 2 and first.n_frames == 25
        _wait_until_ready(pool)
        prepared = pipeline.resolve("default").prepared
        assert isinstance(pipeline.render_ahead(prepared, motion), ProcessRenderAhead)
        pipeline.render_speech("default", speech, tmp_path / "b.mp4", motion=motion)
        pipeline.render_speech("default", speech, tmp_path / "d.mp4", motion=motion)
        assert pool.pids == pids, "renders in a row share the workers"
        threaded = reference.render_speech("default", speech, tmp_path / "c.mp4", motion=motion)
        assert threaded.n_frames == first.n_frames
        for name in ("a.mp4", "b.mp4", "d.mp4"):
            assert (tmp_path / name).read_bytes() == (tmp_path / "c.mp4").read_bytes()
    finally:
        pipeline.close()
        reference.close()
    assert mp.active_children() == []
