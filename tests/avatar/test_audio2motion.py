"""Audio-to-motion: configs, Lightning smoke runs, streaming == offline, bounded look-ahead,
checkpoint loading without configs/, corpus determinism and the held-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, open_dict

from avatar.checkpoint import export_checkpoint, read_net_config, store_net_config
from avatar.companion import configs_dir
from avatar.data.augment import codec_roundtrip
from avatar.motion.learned import LearnedMotion

COMMITTED_CKPT = configs_dir().parent / "checkpoints" / "audio2motion.ckpt"
TOLERANCE = 1e-4  # max abs difference allowed between streamed and offline frames
BASE = ["model=tiny", "data=synthetic", "trainer=cpu", "~logger"]


def compose_train(tmp: Path, overrides: list[str]) -> DictConfig:
    """``configs/train.yaml`` with outputs in ``tmp`` (no Hydra app, so no run directory)."""
    with initialize_config_dir(config_dir=str(configs_dir()), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp)
    return cfg


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture
def cfg_tiny(tmp_path: Path, corpus_cache: Path) -> DictConfig:
    return compose_train(tmp_path, [*BASE, f"data.corpus.cache_dir={corpus_cache}"])


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    """A small random network with non-trivial normalisation statistics, in eval mode."""
    torch.manual_seed(0)
    cfg = compose_train(Path("/unused"), BASE)
    net = instantiate(cfg.model.net)
    net.train()
    with torch.no_grad():
        net(torch.randn(4, 16000) * 0.1)
    return net.eval()


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (configs_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option",
    [(g, o) for g in ("model", "data", "trainer", "callbacks", "logger") for o in _options(g)],
)
def test_every_option_composes_and_instantiates(group, option, tmp_path, corpus_cache):
    if group == "trainer" and option == "gpu" and not torch.cuda.is_available():
        pytest.skip("trainer=gpu needs CUDA")
    overrides = [*BASE[:3], f"{group}={option}", f"data.corpus.cache_dir={corpus_cache}"]
    cfg = compose_train(tmp_path, overrides)
    node = cfg[group]
    targets = [node] if "_target_" in node else list(node.values())
    # one object, or a named list of them (callbacks, loggers) with nothing else in it
    assert len(targets) >= 1 and all("_target_" in t for t in targets), node
    for target in targets:
        extra = {"logger": False} if group == "trainer" else {}
        assert isinstance(instantiate(target, **extra), get_class(target._target_))


def test_experiment_composes(tmp_path):
    cfg = compose_train(tmp_path, ["experiment=audio2motion"])
    assert cfg.export_ckpt and "audio2motion" in cfg.tags
    assert cfg.model.net.lookahead * cfg.model.net.hop_length / cfg.model.net.sample_rate <= 0.1


def test_fast_dev_run(cfg_tiny):
    from avatar.train import train

    with open_dict(cfg_tiny):
        cfg_tiny.trainer.fast_dev_run = True
    metrics, _ = train(cfg_tiny)
    assert np.isfinite(metrics["train/loss"]) and "test/viseme_acc" in metrics


def test_training_lowers_the_loss(cfg_tiny):
    import lightning as L

    L.seed_everything(0)
    dm, model = instantiate(cfg_tiny.data), instantiate(cfg_tiny.model)
    dm.augment = None  # the same items every step: the loss must fall
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(torch.utils.data.DataLoader(dm.dataset("train"), batch_size=2)))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        loss = model.model_step(batch)[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_streaming_equals_offline(net):
    lm = LearnedMotion(net, streaming_runtime="torch")
    audio = np.random.default_rng(1).standard_normal(16000 * 2 + 77).astype(np.float32) * 0.1
    offline = lm.predict(audio, 16000)
    stream, frames = lm.stream(), []
    for i in range(0, len(audio), 320):  # 20 ms chunks
        frames += stream.push(audio[i : i + 320])
    frames += stream.flush()
    streamed = np.stack(frames)
    assert streamed.shape == offline.shape == (51, 7)
    assert np.abs(streamed - offline).max() < TOLERANCE


def test_lookahead_is_bounded(net):
    spf, hop, la = net.samples_per_frame, net.features.hop_length, net.lookahead
    audio = torch.randn(1, 16000) * 0.1
    frame = 10
    horizon = (frame + 1) * spf + la * hop  # first sample frame 10 may not depend on
    changed = audio.clone()
    changed[:, horizon:] = torch.randn(1, audio.shape[1] - horizon)
    with torch.no_grad():
        a, b = net(audio)[0][0], net(changed)[0][0]
    assert torch.allclose(a[: frame + 1], b[: frame + 1], atol=1e-6)
    assert not torch.allclose(a[frame + 2], b[frame + 2], atol=1e-4)  # later frames do see it
    assert net.lookahead_s <= 0.1


def test_lookahead_over_100ms_is_refused():
    cfg = compose_train(Path("/unused"), [*BASE, "model.net.lookahead=11"])
    with pytest.raises(Exception, match="lookahead 11 hops"):  # Hydra wraps the ValueError
        instantiate(cfg.model.net)


def test_load_from_checkpoint_alone(net, tmp_path):
    """The committed checkpoint if present, else a tiny one: no configs/ needed to load."""
    if COMMITTED_CKPT.is_file():
        path = COMMITTED_CKPT
        assert path.stat().st_size <= 10e6
    else:
        from avatar.lit.audio2motion_module import Audio2MotionLitModule

        lit = Audio2MotionLitModule(
            net=net,
            optimizer=torch.optim.Adam,
            scheduler=None,
            scheduler_interval="step",
            mouth_weight=1.0,
            viseme_weight=0.1,
            velocity_weight=0.0,
            compile=False,
        )
        raw = tmp_path / "lit.ckpt"
        ckpt = {"state_dict": lit.state_dict()}
        store_net_config(ckpt, net)
        torch.save(ckpt, raw)
        path = export_checkpoint(raw, tmp_path / "a2m.ckpt")
    lm = LearnedMotion.load(path, streaming_runtime="torch")
    mouth = lm.predict(np.zeros(24000, np.float32), 24000)  # resampled to the model's rate
    assert mouth.shape == (25, 7) and np.isfinite(mouth).all()
    assert lm.fps == 25 and lm.latency_s <= 0.1
    config = read_net_config(path)
    assert config["_target_"] == "avatar.modules.audio2motion.Audio2Motion"
    assert {k: v for k, v in config.items() if k != "_target_"} == lm.net.config


def test_corpus_deterministic_and_contiguous(cfg_tiny, tmp_path):
    a = instantiate(cfg_tiny.data.corpus, cache_dir=tmp_path / "a").load()
    b = instantiate(cfg_tiny.data.corpus).load()  # the session cache
    assert len(a) == len(b) == 6
    for u, v in zip(a, b, strict=True):
        assert u.text == v.text and u.voice == v.voice
        np.testing.assert_array_equal(u.audio, v.audio)
        assert u.timeline.to_dict() == v.timeline.to_dict()
        phones = u.timeline.phones
        assert phones[0].start == 0.0
        assert all(abs(p.start - q.end) < 1e-9 for q, p in zip(phones, phones[1:], strict=False))
        assert abs(phones[-1].end - len(u.audio) / 16000) < 1e-6


def test_heldout_voice_never_in_training(cfg_tiny):
    dm = instantiate(cfg_tiny.data)
    dm.setup("fit")
    held = set(cfg_tiny.data.corpus.heldout_voices)
    assert {u.voice for u in dm.splits["test"]} == held
    assert not held & {u.voice for u in dm.splits["train"] + dm.splits["val"]}
    item = dm.dataset("train")[0]
    assert item["audio"].shape[0] == item["mouth"].shape[0] * 640


@pytest.mark.parametrize("codec", ["libopus", "aac"])
def test_codec_roundtrip_keeps_timing(codec):
    t = np.arange(16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 0.5)).astype(np.float32)  # onset at 0.5 s
    y = codec_roundtrip(x, 16000, codec, 32000)
    assert y.shape == x.shape
    onset = np.argmax(np.abs(y) > 0.1) / 16000
    assert abs(onset - 0.5) < 0.005
