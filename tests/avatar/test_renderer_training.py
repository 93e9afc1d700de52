"""Training the neural renderer (Lightning + Hydra) on the made-here corpus: items line up with
the renderer's inputs, a config run writes a checkpoint the renderer loads, the held-out loss
falls, one clip is overfit past 30 dB, and bad video folders fail naming the folder."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

import avatar
from avatar.config import compose
from avatar.data.renderer_samples import RendererFrames
from avatar.errors import ConfigValueError
from avatar.lit.renderer_module import RendererLitModule, psnr
from avatar.modules.refine_unet import WarpRefineNet
from avatar.motion.track import CHANNELS
from avatar.renderers.neural import NeuralRenderer

SIZE = 128


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("renderer-cache")


def _overrides(cache: Path, identity_cache: Path) -> list[str]:
    """A made-here corpus of 2 faces x 2 clips (cartoon: train + val; astronaut: test),
    128 px, a tiny net, no ST-LPIPS, no logger."""
    pipeline = [
        "render_processes=0",
        f"identity.cache_dir={identity_cache}",
        "identity.super_resolution=off",
    ]
    return [
        "experiment=renderer_neural",
        "~logger",
        f"data.cache_dir={cache}",
        f"data.size={SIZE}",
        "data.corpus.faces=[cartoon]",
        "data.corpus.heldout_faces=[embedded:astronaut]",
        "data.corpus.clips_per_face=2",
        "data.corpus.val_fraction=0.5",
        "data.pipeline.overrides=[" + ",".join(f'"{o}"' for o in pipeline) + "]",
        "data.batch_size=8",
        "data.crop=64",
        "data.val_frames=24",
        "model.net.base_channels=8",
        "model.net.depth=2",
        "model.lpips_weight=0",
        "model.log_lpips=false",
        "model.optimizer.lr=0.005",
        "torch_threads=2",
    ]


def _compose(tmp: Path, overrides: list[str]) -> DictConfig:
    return compose("train", [*overrides, f"paths.output_dir={tmp}"])


@pytest.fixture(scope="module")
def datamodule(cache, identity_cache, tmp_path_factory):
    cfg = _compose(tmp_path_factory.mktemp("dm"), _overrides(cache, identity_cache))
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup()
    return dm


def test_items_are_the_renderers_inputs_and_the_clips_frames(datamodule):
    splits = {k: [s.name.split("-")[0] for s in v] for k, v in datamodule.splits.items()}
    assert splits == {"train": ["cartoon"], "val": ["cartoon"], "test": ["embedded", "embedded"]}
    shard = datamodule.splits["train"][0]
    a = shard.arrays
    n = len(shard)
    assert a["target"].shape == a["prior"].shape == (n, SIZE, SIZE, 3)
    assert a["region"].shape == (n, SIZE, SIZE) and a["motion"].shape == (n, len(CHANNELS))
    assert a["motion"][:, CHANNELS.index("jaw_open")].max() > 0.2  # it speaks
    # the prior is the plain warp of the reference frame's identity: close to the target
    # (mesh-warp made the target with a painted mouth and lids) and equal where nothing moves
    prior, target = (
        torch.from_numpy(np.array(a[k][:8])).permute(0, 3, 1, 2) / 255.0
        for k in ("prior", "target")
    )
    assert 24.0 < float(psnr(prior, target).mean()) < 40.0
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["prior"].shape == batch["target"].shape == (8, 3, 64, 64)
    assert batch["region"].shape == (8, 1, 64, 64) and batch["motion"].shape == (8, len(CHANNELS))
    assert batch["region"].amax(dim=(1, 2, 3)).min() > 0.5  # crops sit on the mouth or an eye
    val = next(iter(datamodule.val_dataloader()))
    assert val["prior"].shape == (8, 3, SIZE, SIZE)  # validation: whole frames


@pytest.fixture(scope="module")
def trained(cache, identity_cache, datamodule, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = _compose(
        tmp,
        [
            *_overrides(cache, identity_cache),
            "trainer.max_steps=150",
            "trainer.val_check_interval=150",
            f"export_ckpt={tmp / 'neural.ckpt'}",
        ],
    )
    from avatar.train import train

    metrics, objects = train(cfg)
    return tmp, metrics, objects


def test_the_held_out_loss_falls(trained):
    _, m, _ = trained
    # before training the net returns the prior exactly (zero-initialised residual), so the
    # prior's validation L1 is the untrained net's
    assert m["val/l1"] < m["val/prior_l1"] - 5e-4, m
    assert m["val/psnr"] > m["val/prior_psnr"] + 0.2, m
    assert np.isfinite(m["test/l1"]) and m["test/prior_l1"] > 0  # the held-out face is scored


def test_the_checkpoint_loads_as_a_renderer_and_renders(trained, datamodule, identity_settings):
    tmp, _, objects = trained
    from avatar.companion import load_companion
    from avatar.identity.derive import derive_identity

    identity = derive_identity(load_companion("default"), size=SIZE, settings=identity_settings)
    values = np.zeros((3, len(CHANNELS)), np.float32)
    values[1, CHANNELS.index("jaw_open")] = 0.8
    best = objects["trainer"].checkpoint_callback.best_model_path
    for ckpt in (tmp / "neural.ckpt", Path(best)):
        renderer = avatar.load_renderer(ckpt, device="cpu")
        assert isinstance(renderer, NeuralRenderer) and renderer.size == SIZE
        frames = renderer.render_chunk(renderer.prepare(identity), values)
        assert frames.shape == (3, SIZE, SIZE, 3) and frames.dtype == np.uint8
    by_config = NeuralRenderer(size=SIZE, ckpt_path=tmp / "neural.ckpt", device="cpu")
    assert by_config.net.config == objects["model"].net.config


def test_overfit_one_clip_past_30_db(datamodule):
    """400 steps on 64 px crops of one clip's first 16 frames; PSNR on its whole frames."""
    L.seed_everything(0)
    torch.set_num_threads(2)
    shard = datamodule.splits["train"][0]
    train = RendererFrames([shard], crop=64, frames=16, seed=0)
    net = WarpRefineNet(motion_dim=len(CHANNELS), base_channels=8, depth=2)
    model = RendererLitModule(
        net=net,
        optimizer=lambda params: torch.optim.Adam(params, lr=5e-3),
        size=SIZE,
        log_lpips=False,
        sample_images=0,
    )
    trainer = L.Trainer(
        max_steps=400,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    loader = torch.utils.data.DataLoader(train, batch_size=8, shuffle=True)
    trainer.fit(model, train_dataloaders=loader)
    whole = RendererFrames([shard], frames=16)
    batch = torch.utils.data.default_collate([whole[i] for i in range(len(whole))])
    with torch.no_grad():
        out = model(batch)
    before = float(psnr(batch["prior"], batch["target"]).mean())
    after = float(psnr(out, batch["target"]).mean())
    assert after >= 30.0 and after > before + 1.5, (before, after)


def _data_error(tmp: Path, overrides: list[str]) -> str:
    """The ConfigValueError building ``cfg.data`` raises (Hydra wraps it), as text."""
    with pytest.raises(InstantiationException) as info:
        instantiate(_compose(tmp, overrides).data)
    assert isinstance(info.value.__cause__, ConfigValueError), info.value
    return str(info.value.__cause__)


def test_bad_video_folders_fail_naming_the_folder(tmp_path, cache, identity_cache):
    base = _overrides(cache, identity_cache)
    missing = tmp_path / "no-such-videos"
    got = _data_error(tmp_path, [*base, f"data.path={missing}"])
    assert got == f"data.path {missing}: no such folder"
    empty = tmp_path / "empty"
    (empty / "alice").mkdir(parents=True)
    (empty / "alice" / "notes.txt").write_text("not a video")
    got = _data_error(tmp_path, [*base, f"data.path={empty}"])
    assert got.startswith(f"data.path {empty}: no videos in it")
    got = _data_error(tmp_path, [*base, f"data.path={empty}", "data.motion=true"])
    assert "data.motion=true needs the made-here corpus" in got


def test_gan_and_lpips_terms_train_and_stay_out_of_the_checkpoint(datamodule, tmp_path):
    from avatar.checkpoint import load_network
    from avatar.modules.patch_discriminator import PatchDiscriminator

    L.seed_everything(0)
    net = WarpRefineNet(motion_dim=len(CHANNELS), base_channels=4, depth=2)
    model = RendererLitModule(
        net=net,
        optimizer=lambda params: torch.optim.Adam(params, lr=1e-3),
        size=SIZE,
        lpips_weight=0.1,
        gan_weight=0.05,
        discriminator=PatchDiscriminator(channels=4, layers=2),
    )
    batch = next(iter(datamodule.train_dataloader()))
    disc_before = [p.detach().clone() for p in model.disc.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = model.training_step(batch, 0)
    loss.backward()
    assert all(p.grad is not None for p in model.disc.parameters())
    assert model.net.residual_head.weight.grad.abs().sum() > 0
    opt.step()
    assert any((p != q).any() for p, q in zip(model.disc.parameters(), disc_before, strict=True))
    ckpt = tmp_path / "lit.ckpt"
    trainer = L.Trainer(logger=False, enable_progress_bar=False, max_steps=1)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert not any(k.startswith("_lpips") or "lpips" in k for k in state)
    assert isinstance(load_network(ckpt, expected=WarpRefineNet), WarpRefineNet)


def test_the_training_command_reports_a_missing_folder_in_one_line(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "nowhere"
    proc = subprocess.run(
        [sys.executable, "-m", "avatar.train", "experiment=renderer_neural", f"data.path={missing}"]
        + ["~logger", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: ConfigValueError: data.path {missing}: no such folder" in proc.stderr
    assert "Traceback" not in proc.stderr
