"""avatar.checkpoint: save/load round trips, Lightning checkpoints, export, clear errors, and
inference loaders that never import Lightning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avatar.checkpoint import (
    CONFIG_KEY,
    FORMAT_VERSION,
    export_checkpoint,
    load_network,
    net_config,
    read_net_config,
    save_network,
    store_net_config,
)
from avatar.errors import WeightsMissingError
from avatar.modules.audio2motion import Audio2Motion
from avatar.modules.sync_expert import SyncExpert

TARGET = "avatar.modules.sync_expert.SyncExpert"
KWARGS = dict(
    sample_rate=16000,
    win_length=400,
    hop_length=160,
    n_mels=64,
    f_min=50.0,
    f_max=8000.0,
    hops_per_frame=4,
    window=5,
    video_channels=(4, 8),
    crop_shape=(48, 96),
    audio_channels=8,
    hidden=8,
    embed_dim=6,
)


def _net(seed: int = 0) -> SyncExpert:
    """A tiny expert with random weights and non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = SyncExpert(**KWARGS).train()
    with torch.no_grad():
        net.embed_video(torch.rand(2, 8, 48, 96))
        net.embed_audio(torch.randn(2, 8 * 640) * 0.1)
    return net.eval()


def _outputs(net: SyncExpert) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    video, audio = torch.rand(2, 9, 48, 96, generator=g), torch.randn(2, 9 * 640, generator=g)
    with torch.no_grad():
        return net.embed_video(video), net.embed_audio(audio * 0.1)


def _assert_same(a: SyncExpert, b: SyncExpert) -> None:
    for x, y in zip(_outputs(a), _outputs(b), strict=True):
        assert x.shape == (2, 5, 6) and torch.equal(x, y)
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _lightning_checkpoint(net: SyncExpert, path: Path, *, compiled: bool = False) -> Path:
    """What Trainer.save_checkpoint writes for SyncExpertLitModule: net.* keys and loop state."""
    from avatar.lit.sync_expert_module import SyncExpertLitModule

    lit = SyncExpertLitModule(
        net=net,
        optimizer=torch.optim.Adam,
        scheduler=None,
        scheduler_interval="step",
        temperature=0.07,
        max_offset=2,
        segment_frames=10,
    )
    state = lit.state_dict()
    if compiled:  # torch.compile'd net: net._orig_mod.<key>
        state = {k.replace("net.", "net._orig_mod.", 1): v for k, v in state.items()}
    ckpt = {
        "epoch": 3,
        "global_step": 42,
        "pytorch-lightning_version": "2.6.6",
        "state_dict": state,
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3, "params": [0, 1]}]}],
        "loops": {"fit_loop": {"epoch_progress": {"total": {"completed": 3}}}},
    }
    lit.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


def test_net_config_names_the_class_and_its_kwargs() -> None:
    net = _net()
    config = net_config(net)
    assert config["_target_"] == TARGET
    assert config == {"_target_": TARGET, **net.config}
    assert config["video_channels"] == [4, 8] and config["embed_dim"] == 6
    with pytest.raises(TypeError, match="no `config` dict"):
        net_config(torch.nn.Linear(2, 2))


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    net = _net()
    path = save_network(tmp_path / "sub" / "expert.ckpt", net, epoch=5, global_step=99)
    assert path == tmp_path / "sub" / "expert.ckpt"
    assert [p.name for p in path.parent.iterdir()] == ["expert.ckpt"]  # no temporary left
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {CONFIG_KEY, "state_dict", "format_version", "epoch", "global_step"}
    assert (raw["format_version"], raw["epoch"], raw["global_step"]) == (FORMAT_VERSION, 5, 99)
    assert read_net_config(path) == net_config(net)
    loaded = load_network(path, expected=SyncExpert)
    assert type(loaded) is SyncExpert and not loaded.training
    _assert_same(net, loaded)
    assert type(load_network(path)) is SyncExpert  # no expected class: whatever it holds
    save_network(path, _net(seed=1))  # overwrites in place
    assert not torch.equal(_outputs(load_network(path))[0], _outputs(net)[0])


def test_round_trip_of_audio2motion(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = Audio2Motion(
        sample_rate=16000,
        win_length=400,
        hop_length=160,
        n_mels=16,
        f_min=50.0,
        f_max=8000.0,
        hops_per_frame=4,
        lookahead=2,
        channels=8,
        kernel_size=3,
        dilations=[1, 2],
        gru_hidden=8,
        dropout=0.0,
    ).eval()
    loaded = load_network(save_network(tmp_path / "a2m.ckpt", net), expected=Audio2Motion)
    audio = torch.randn(1, 16000) * 0.1
    with torch.no_grad():
        for x, y in zip(net(audio), loaded(audio), strict=True):
            assert x.shape[:2] == (1, 25) and torch.equal(x, y)


@pytest.mark.parametrize("compiled", [False, True])
def test_lightning_checkpoint_loads(tmp_path: Path, compiled: bool) -> None:
    net = _net()
    path = _lightning_checkpoint(net, tmp_path / "lit.ckpt", compiled=compiled)
    raw = torch.load(path, weights_only=True)
    assert raw[CONFIG_KEY] == net_config(net) and raw["format_version"] == FORMAT_VERSION
    assert "logit_scale" in raw["state_dict"]  # LitModule state beside the network's
    _assert_same(net, load_network(path, expected=SyncExpert))


def test_export_keeps_the_network_only(tmp_path: Path) -> None:
    net = _net()
    src = _lightning_checkpoint(net, tmp_path / "lit.ckpt", compiled=True)
    dst = export_checkpoint(src, tmp_path / "out" / "expert.ckpt")
    raw = torch.load(dst, weights_only=True)
    assert set(raw) == {CONFIG_KEY, "state_dict", "format_version", "epoch", "global_step"}
    assert (raw["epoch"], raw["global_step"]) == (3, 42)
    assert raw[CONFIG_KEY] == net_config(net)
    own = net.state_dict()
    assert list(raw["state_dict"]) == list(own)
    assert all(torch.equal(raw["state_dict"][k], own[k]) for k in own)
    _assert_same(net, load_network(dst, expected=SyncExpert))


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "none.ckpt"
    for call in (load_network, read_net_config):
        with pytest.raises(WeightsMissingError, match=f"{path} is absent"):
            call(path)
    with pytest.raises(WeightsMissingError, match="absent"):
        export_checkpoint(path, tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()


def test_not_a_checkpoint(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(WeightsMissingError, match=f"{text}: not a readable torch checkpoint"):
        load_network(text)
    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, other)  # e.g. a checkpoint of the old per-network layout
    with pytest.raises(WeightsMissingError, match=f"{other}: not a network checkpoint"):
        load_network(other)
    newer = save_network(tmp_path / "newer.ckpt", _net())
    raw = torch.load(newer, weights_only=True)
    torch.save({**raw, "format_version": FORMAT_VERSION + 1}, newer)
    with pytest.raises(WeightsMissingError, match="newer than this code"):
        load_network(newer)


def test_wrong_class_is_refused(tmp_path: Path) -> None:
    path = save_network(tmp_path / "expert.ckpt", _net())
    with pytest.raises(
        WeightsMissingError, match=f"{path}: holds a {TARGET}, not a .*Audio2Motion"
    ):
        load_network(path, expected=Audio2Motion)
    from avatar.motion.learned import LearnedMotion

    with pytest.raises(WeightsMissingError, match="not a avatar.modules.audio2motion.Audio2Motion"):
        LearnedMotion.load(path, streaming_runtime="torch")


@pytest.mark.parametrize(
    "target", ["collections.OrderedDict", "os.path.join", "no_such_pkg.Net", "torch.nn.nothing"]
)
def test_target_that_is_no_module_class_is_refused(tmp_path: Path, target: str) -> None:
    net = _net()
    path = save_network(tmp_path / "bad.ckpt", net, {**net_config(net), "_target_": target})
    with pytest.raises(WeightsMissingError, match=f"{target!r} is not a torch nn.Module class"):
        load_network(path)


def test_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    net = _net()
    path = save_network(tmp_path / "bad.ckpt", net, {**net_config(net), "embed_dim": 4})
    with pytest.raises(WeightsMissingError, match=f"{path}: weights do not fit the stored config"):
        load_network(path)
    path = save_network(tmp_path / "kw.ckpt", net, {**net_config(net), "nonsense": 1})
    with pytest.raises(WeightsMissingError, match="cannot build .*SyncExpert from its config"):
        load_network(path)


def test_store_net_config_unwraps_torch_compile() -> None:
    net = _net()
    ckpt: dict = {}
    store_net_config(ckpt, torch.compile(net))  # a lazy wrapper: nothing compiles until called
    assert ckpt == {CONFIG_KEY: net_config(net), "format_version": FORMAT_VERSION}


def test_inference_loaders_never_import_lightning() -> None:
    code = (
        "import sys, avatar.checkpoint, avatar.motion.learned, evals.functional.sync_expert; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('lightning', 'pytorch_lightning', 'hydra', 'omegaconf')); "
        "assert not bad, bad"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
