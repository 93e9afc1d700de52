"""The neural (warp-and-refine) renderer: exact prior when untrained, batching, checkpoints,
load_renderer, the pipeline, clear errors, and a residual path that learns."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import avatar
from avatar.audio import Audio
from avatar.checkpoint import save_network
from avatar.companion import load_companion
from avatar.config import compose, pipeline_from_config
from avatar.errors import ConfigValueError, WeightsMissingError
from avatar.identity.derive import derive_identity
from avatar.media import probe_mp4
from avatar.modules.refine_unet import WarpRefineNet
from avatar.modules.sync_expert import SyncExpert
from avatar.motion.track import CHANNELS, MotionTrack
from avatar.renderers.meshwarp import MeshWarpRenderer
from avatar.renderers.meshwarp.renderer import effective_channels
from avatar.renderers.neural import NeuralRenderer, audio_features, region_mask

SIZE = 128


def _net(*, seed: int = 0, audio_dim: int = 0, depth: int = 2, perturb: bool = False):
    """A tiny net; ``perturb``: a random residual head, so its output is not the prior."""
    torch.manual_seed(seed)
    net = WarpRefineNet(motion_dim=len(CHANNELS), audio_dim=audio_dim, base_channels=4, depth=depth)
    if perturb:
        torch.nn.init.normal_(net.residual_head.weight, std=0.2)
    return net.eval()


def _values(**frames: dict[str, float]) -> np.ndarray:
    rows = np.zeros((len(frames), len(CHANNELS)), np.float32)
    for i, values in enumerate(frames.values()):
        for name, value in values.items():
            rows[i, CHANNELS.index(name)] = value
    return rows


VALUES = _values(
    rest={},
    ah={"jaw_open": 0.8, "lip_open": 0.6},
    blink={"blink_l": 1.0, "blink_r": 1.0, "head_yaw": 4.0},
    ee={"mouth_stretch": 0.7, "lip_open": 0.4, "smile": 0.5},
    oo={"lip_round": 0.9, "jaw_open": 0.3, "head_roll": -3.0},
    press={"lip_press": 1.0, "brow_raise": 0.6},
)


@pytest.fixture(scope="module")
def identity(identity_settings):
    return derive_identity(load_companion("default"), size=SIZE, settings=identity_settings)


@pytest.fixture(scope="module")
def warp(identity):
    plain = MeshWarpRenderer(size=SIZE, mouth_interior=False, eyelids=False)
    return plain, plain.prepare(identity)


@pytest.fixture(scope="module")
def perturbed(identity):
    renderer = NeuralRenderer(size=SIZE, net=_net(perturb=True), device="cpu", chunk_frames=4)
    return renderer, renderer.prepare(identity)


@pytest.fixture
def ckpt(tmp_path, perturbed):
    renderer = perturbed[0]
    return save_network(tmp_path / "neural.ckpt", renderer.net, renderer=renderer.renderer_config())


def _psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    a, b = (torch.as_tensor(np.asarray(x, np.float32) / 255.0) for x in (a, b))
    return float(10.0 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def test_an_untrained_net_renders_the_plain_warp_exactly(identity, warp):
    renderer = NeuralRenderer(size=SIZE, net=_net(), device="cpu", chunk_frames=4)
    frames = renderer.render_chunk(renderer.prepare(identity), VALUES)
    assert frames.dtype == np.uint8 and frames.shape == (len(VALUES), SIZE, SIZE, 3)
    plain, prepared = warp
    np.testing.assert_array_equal(frames, plain.render_chunk(prepared, VALUES))
    assert renderer.render_chunk(renderer.prepare(identity), VALUES[:0]).shape == (0, SIZE, SIZE, 3)


def test_batches_equal_frame_by_frame_and_the_stream(perturbed, warp):
    renderer, prepared = perturbed
    batched = renderer.render_chunk(prepared, VALUES)  # 4 + 2 frames per network batch
    single = np.concatenate([renderer.render_chunk(prepared, VALUES[i : i + 1]) for i in range(6)])
    assert np.abs(batched.astype(int) - single).max() <= 1  # float summation order only
    assert np.mean(batched == single) > 0.999
    assert np.abs(batched.astype(int) - warp[0].render_chunk(warp[1], VALUES)).mean() > 1.0

    stream = renderer.open_stream(prepared)
    track = MotionTrack(VALUES, CHANNELS, 25.0)
    frames = stream.push(track) + stream.push(track)
    assert [f.index for f in frames] == list(range(12))
    assert frames[7].timestamp == pytest.approx(7 / 25)
    np.testing.assert_array_equal(np.stack([f.image for f in frames[6:]]), batched)
    stream.reset()
    stream.close()


def test_the_region_mask_follows_the_opened_mouth(warp, identity):
    _, prepared = warp
    eye = prepared.eye_distance

    def mask(**values: float) -> np.ndarray:
        coeffs = effective_channels({c: values.get(c, 0.0) for c in CHANNELS})
        return region_mask(prepared.fields, coeffs, SIZE, eye)

    rest, opened = mask(), mask(jaw_open=1.0, lip_open=0.6)
    assert rest.dtype == np.float32 and rest.shape == (SIZE, SIZE)
    assert 0.0 <= rest.min() and rest.max() <= 1.0
    lm = identity.landmarks
    for point, inside in ((13, 0.9), (14, 0.9), (468, 0.6), (473, 0.6)):  # lips, irises
        x, y = np.round(lm[point, :2]).astype(int)
        assert rest[y, x] > inside
    assert rest[2, 2] == 0.0 and rest[SIZE - 3, SIZE // 2] < 0.05  # corner, neck: outside
    chin = opened.sum(axis=1)[int(lm[17, 1]) :].sum()  # below the lower lip's rest position
    assert chin > 1.5 * rest.sum(axis=1)[int(lm[17, 1]) :].sum()


def test_load_renderer_round_trip_renders_the_same_frames(ckpt, perturbed, identity):
    renderer, prepared = perturbed
    expected = renderer.render_chunk(prepared, VALUES)
    loaded = avatar.load_renderer(ckpt)
    assert isinstance(loaded, NeuralRenderer)
    assert (loaded.size, loaded.chunk_frames, loaded.device.type) == (SIZE, 4, "cpu")
    np.testing.assert_array_equal(loaded.render_chunk(loaded.prepare(identity), VALUES), expected)
    by_path = NeuralRenderer(size=SIZE, ckpt_path=ckpt, device="auto", chunk_frames=2)
    if by_path.device.type == "cpu":
        got = by_path.render_chunk(by_path.prepare(identity), VALUES)
        assert np.abs(got.astype(int) - expected).max() <= 1
    again = pickle.loads(pickle.dumps(renderer))  # render worker processes get a pickled copy
    np.testing.assert_array_equal(again.render_chunk(prepared, VALUES), expected)


def test_prepared_state_shares_mesh_warps_cache(perturbed, identity):
    renderer, prepared = perturbed
    assert renderer.cache_name == MeshWarpRenderer.cache_name
    restored = renderer.restore_prepared(identity, renderer.prepared_arrays(prepared))
    np.testing.assert_array_equal(
        renderer.render_chunk(restored, VALUES), renderer.render_chunk(prepared, VALUES)
    )


def test_the_pipeline_renders_an_mp4_with_renderer_neural(ckpt, render_config_overrides, tmp_path):
    cfg = compose(
        "render",
        [
            *render_config_overrides,
            "renderer=neural",
            f"renderer.ckpt_path={ckpt}",
            f"renderer.size={SIZE}",
            "renderer.device=cpu",
        ],
    )
    pipeline = pipeline_from_config(cfg)
    assert isinstance(pipeline.renderer, NeuralRenderer)
    result = pipeline.render_text("default", "Hi there.", tmp_path / "neural.mp4")
    info = probe_mp4(result.path)
    assert (info["width"], info["height"], info["video_codec"]) == (SIZE, SIZE, "h264")
    assert info["n_video_frames"] == result.n_frames > 10


def test_bad_inputs_are_named(tmp_path, identity, perturbed):
    with pytest.raises(ConfigValueError, match=r"renderer\.ckpt_path"):
        NeuralRenderer(size=SIZE)
    missing = tmp_path / "absent.ckpt"
    with pytest.raises(WeightsMissingError, match="absent.ckpt"):
        NeuralRenderer(size=SIZE, ckpt_path=missing)
    expert = SyncExpert(
        sample_rate=16000, win_length=400, hop_length=160, n_mels=64, f_min=50.0, f_max=8000.0,
        hops_per_frame=4, window=5, video_channels=(4,), crop_shape=(48, 96),
        audio_channels=4, hidden=4, embed_dim=4,
    )  # fmt: skip
    plain = save_network(tmp_path / "expert.ckpt", expert)
    with pytest.raises(WeightsMissingError, match="SyncExpert.*not a .*WarpRefineNet"):
        NeuralRenderer(size=SIZE, ckpt_path=plain)
    config = perturbed[0].renderer_config()
    posing = save_network(tmp_path / "posing.ckpt", expert, renderer=config)
    with pytest.raises(ConfigValueError, match="needs a WarpRefineNet, got SyncExpert"):
        avatar.load_renderer(posing)
    with pytest.raises(ConfigValueError, match="divisible by 2\\*\\*depth = 8"):
        NeuralRenderer(size=100, net=_net(depth=3))
    with pytest.raises(ConfigValueError, match="chunk_frames"):
        NeuralRenderer(size=SIZE, net=_net(), chunk_frames=0)
    with pytest.raises(ConfigValueError, match="renderer.device"):
        NeuralRenderer(size=SIZE, net=_net(), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigValueError, match="CUDA is not available"):
            NeuralRenderer(size=SIZE, net=_net(), device="cuda")
    renderer, prepared = perturbed
    with pytest.raises(ValueError, match=f"values must be \\(T, {len(CHANNELS)}\\)"):
        renderer.render_chunk(prepared, np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth"):
        _net().refine(*(torch.rand(1, c, 30, 30) for c in (3, 3, 1)), torch.rand(1, len(CHANNELS)))


def test_audio_features_feed_a_net_that_takes_audio(identity):
    tone = np.sin(2 * np.pi * 440.0 * np.arange(16000 * 6 // 25) / 16000).astype(np.float32)
    feats = audio_features(Audio(tone, 16000), len(VALUES), 8)
    silent = audio_features(None, len(VALUES), 8)
    assert feats.shape == silent.shape == (len(VALUES), 8)
    assert feats.max() > silent.max() + 3  # the tone's band stands out
    renderer = NeuralRenderer(size=SIZE, net=_net(audio_dim=8), device="cpu", chunk_frames=8)
    prepared = renderer.prepare(identity)
    assert renderer.inputs(prepared, VALUES, Audio(tone, 16000)).audio.shape == (len(VALUES), 8)
    frames = renderer.render_chunk(prepared, VALUES, Audio(tone, 16000))
    np.testing.assert_array_equal(frames, renderer.render_chunk(prepared, VALUES, None))


def test_the_residual_path_learns_what_the_warp_cannot_paint(identity):
    """One pair: prior = the plain warp of an open mouth and closed eyes, target = mesh-warp's
    painted look (mouth interior, lids). Adam on a crop around the eyes and mouth lifts the
    renderer's own output clearly above the prior."""
    renderer = NeuralRenderer(size=SIZE, net=_net(seed=0), device="cpu", chunk_frames=1)
    prepared = renderer.prepare(identity)
    values = _values(frame={"jaw_open": 0.8, "lip_open": 0.6, "blink_l": 1.0, "blink_r": 1.0})
    look = MeshWarpRenderer(size=SIZE, mouth_interior=True, eyelids=True)
    target = look.render_chunk(look.prepare(identity), values)
    crop = slice(SIZE // 4, 3 * SIZE // 4)
    inputs = renderer.inputs(prepared, values)
    args = [a[..., crop, crop] if a.ndim == 4 else a for a in inputs.args()]
    goal = torch.from_numpy(target).permute(0, 3, 1, 2).float()[..., crop, crop] / 255.0
    net = renderer.net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(120):
        loss = torch.nn.functional.mse_loss(net.refine(*args), goal)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    frames = renderer.render_chunk(prepared, values)
    prior = _psnr(inputs.prior.permute(0, 2, 3, 1)[:, crop, crop] * 255.0, target[:, crop, crop])
    refined = _psnr(frames[:, crop, crop], target[:, crop, crop])
    assert refined > prior + 3.0, f"PSNR {refined:.1f} dB vs the prior's {prior:.1f} dB"
