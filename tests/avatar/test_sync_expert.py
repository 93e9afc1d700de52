"""The sync expert's pieces: mouth crops, the network, the contrastive loss, the rendered-clip
corpus and a Lightning smoke run (tiny network, seconds-long corpus) that exports a checkpoint
the evals load."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch.nn import functional as F  # noqa: N812

from avatar.config import compose
from avatar.data.mouth_crops import CROP_SHAPE, LEFT_EYE, RIGHT_EYE, center_crop, mouth_crops
from avatar.data.sync_datamodule import SyncWindows, augment_crops, window_speaking
from avatar.lit.sync_expert_module import segment_offsets
from avatar.modules.sync_expert import SyncExpert, offset_distances

BASE = [
    "model=sync_expert_tiny",
    "data=sync_synthetic",
    "trainer=cpu",
    "~logger",
    "callbacks.model_checkpoint.monitor=val/loss",
]


def compose_train(tmp: Path, overrides: list[str]) -> DictConfig:
    """``configs/train.yaml`` with outputs in ``tmp`` (no Hydra app, so no run directory)."""
    return compose("train", [*overrides, f"paths.output_dir={tmp}"])


def _face(size: int = 256, roll_deg: float = 0.0, jaw: float = 0.0):
    """A drawn face and landmarks at the eye corners, nose and lips (the rest NaN-free zeros)."""
    img = np.full((size, size, 3), 90, np.uint8)
    cx, cy, d = size / 2, size * 0.42, size * 0.25
    pts = np.zeros((478, 3), np.float32)
    pts[:, 0], pts[:, 1] = cx, cy + 0.8 * d
    pts[RIGHT_EYE[0], :2], pts[RIGHT_EYE[1], :2] = (cx - 0.75 * d, cy), (cx - 0.25 * d, cy)
    pts[LEFT_EYE[1], :2], pts[LEFT_EYE[0], :2] = (cx + 0.25 * d, cy), (cx + 0.75 * d, cy)
    mouth_y = cy + 1.3 * d
    cv2.ellipse(
        img,
        (int(cx), int(mouth_y)),
        (int(0.5 * d), int(4 + jaw * 0.3 * d)),
        0,
        0,
        360,
        (20, 20, 20),
        -1,
    )
    cv2.circle(img, (int(cx - 0.5 * d), int(cy)), 6, (250, 250, 250), -1)
    cv2.circle(img, (int(cx + 0.5 * d), int(cy)), 6, (250, 250, 250), -1)
    m = cv2.getRotationMatrix2D((cx, cy), roll_deg, 1.0)
    img = cv2.warpAffine(img, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
    xy = np.c_[pts[:, :2], np.ones(478)] @ m.T
    pts[:, :2] = xy
    return img, pts


def test_crop_is_placed_by_the_eyes_and_follows_roll() -> None:
    upright, lm0 = _face()
    rolled, lm1 = _face(roll_deg=20)
    a = mouth_crops(upright[None], lm0[None], smooth=1)
    b = mouth_crops(rolled[None], lm1[None], smooth=1)
    assert a.shape == (1, 56, 112) and a.dtype == np.uint8
    # the mouth (the dark ellipse) sits in the middle of the crop either way
    for crop in (a[0], b[0]):
        ys, xs = np.nonzero(crop < 50)
        assert abs(xs.mean() - 56) < 4 and 10 < ys.mean() < 46
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 12


def test_mouth_landmarks_do_not_move_the_crop() -> None:
    img, lm = _face()
    moved = lm.copy()
    moved[[13, 14, 17, 61, 291], 1] += 30  # lips and chin landmarks drop (jaw opens)
    assert np.array_equal(mouth_crops(img[None], lm[None]), mouth_crops(img[None], moved[None]))


def test_frames_without_a_face_take_the_nearest_placement() -> None:
    img, lm = _face()
    lms = np.stack([lm, np.full_like(lm, np.nan), lm])
    crops = mouth_crops(np.stack([img] * 3), lms, smooth=1)
    assert np.array_equal(crops[0], crops[1])
    assert mouth_crops(img[None], np.full((1, 478, 3), np.nan)) is None
    with pytest.raises(ValueError, match="landmark rows"):
        mouth_crops(np.stack([img] * 2), lm[None])


def test_center_crop_and_augmentation_shapes() -> None:
    stored = np.random.default_rng(0).integers(0, 255, (7, 56, 112), np.uint8)
    assert center_crop(stored).shape == (7, *CROP_SHAPE)
    out = augment_crops(stored, np.random.default_rng(1))
    assert out.shape == (7, *CROP_SHAPE) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    with pytest.raises(ValueError, match="smaller"):
        center_crop(stored[:, :40, :80])


def test_window_speaking() -> None:
    speaking = np.zeros(12, bool)
    speaking[6] = True
    flags = window_speaking(speaking)
    assert flags.shape == (8,) and flags.tolist() == [
        False,
        False,
        True,
        True,
        True,
        True,
        True,
        False,
    ]


def test_offset_distances_sign_and_shape() -> None:
    g = torch.Generator().manual_seed(0)
    e = F.normalize(torch.randn(60, 16, generator=g), dim=-1)
    for k in (-4, 0, 3):
        video = e[10 - k : 50 - k]  # video frame i shows what the audio had at i - k
        audio = e[10:50]
        d = offset_distances(video, audio, 6)
        assert d.shape == (13,)
        assert 6 - int(d.argmin()) == k  # reported offset: > 0 when the video lags
    with pytest.raises(ValueError, match="max_offset"):
        offset_distances(e[:5], e[:5], 5)


def test_segment_offsets_skip_silence() -> None:
    e = F.normalize(torch.randn(120, 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    speaking = torch.ones(100, dtype=torch.bool)
    speaking[50:] = False
    out = segment_offsets(e[:100], e[2:102], speaking, segment=46, max_offset=8)
    assert [o for o, _ in out] == [2]  # one stretch with speech, the video lagging by 2
    assert out[0][1] > 0.5


def test_network_embeds_unit_vectors_per_window() -> None:
    net = SyncExpert(
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
    ).eval()
    v = net.embed_video(torch.rand(3, 12, 48, 96))
    a = net.embed_audio(torch.randn(3, 12 * 640) * 0.1)
    assert v.shape == a.shape == (3, 8, 6)
    assert torch.allclose(v.norm(dim=-1), torch.ones(3, 8), atol=1e-5)
    with pytest.raises(ValueError, match="crops must be"):
        net.embed_video(torch.rand(1, 12, 40, 96))
    with pytest.raises(ValueError, match="at least 5"):
        net.embed_audio(torch.zeros(1, 4 * 640))


def test_contrastive_loss_prefers_the_matching_window(tmp_path: Path) -> None:
    model = instantiate(compose_train(tmp_path, BASE).model)
    e = F.normalize(torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(2)), dim=-1)
    speaking = torch.ones(2, 6, dtype=torch.bool)
    good, acc = model.contrastive_loss(e, e, speaking)
    bad, _ = model.contrastive_loss(e, e.roll(1, dims=1), speaking)
    assert acc == 1.0 and good < bad


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, DictConfig]:
    """A 6-step run of the tiny expert on the seconds-long rendered corpus, exported."""
    from avatar.train import train

    tmp = tmp_path_factory.mktemp("sync-train")
    cfg = compose_train(
        tmp,
        [
            *BASE,
            f"data.corpus.cache_dir={tmp / 'clips'}",
            "trainer.max_steps=6",
            f"data.corpus.speech.cache_dir={tmp / 'speech'}",
            f"export_ckpt={tmp / 'expert.ckpt'}",
        ],
    )
    metrics, objects = train(cfg)
    return metrics, tmp / "expert.ckpt", cfg


def test_fast_training_run_scores_val_and_test_and_exports(trained) -> None:
    from evals.functional.sync_expert import load_sync_expert

    metrics, ckpt, _ = trained
    assert np.isfinite(metrics["train/loss"])
    for key in ("val/offset_acc", "test/offset_acc", "test/confidence", "test/loss"):
        assert key in metrics and np.isfinite(metrics[key]), key
    net = load_sync_expert(ckpt)
    assert isinstance(net, SyncExpert) and not net.training
    assert ckpt.with_suffix(".yaml").is_file()


def test_corpus_splits_faces_and_voices(trained) -> None:
    _, _, cfg = trained
    corpus = instantiate(cfg.data.corpus)
    clips = corpus.load()
    assert {c.split for c in clips} == {"train", "val", "test"}
    for c in clips:
        assert (c.split == "test") == (c.voice in corpus.speech.heldout_voices)
        assert (c.split == "test") == (c.face in corpus.heldout_faces)
        assert len(c.audio) == 640 * len(c.crops) == 640 * len(c.speaking)
        assert c.speaking.any() and not c.speaking.all()  # speech with silence at the ends
    train = SyncWindows([c for c in clips if c.split == "train"], window=8, length=3, augment=True)
    item = train[0]
    assert item["video"].shape == (8, 48, 96) and item["audio"].shape == (8 * 640,)
    assert item["speaking"].shape == (4,) and item["speaking"].sum() >= 3


def test_corpus_refuses_bad_settings(tmp_path: Path) -> None:
    from avatar.data.sync_clips import face_image

    cfg = compose_train(tmp_path, BASE)
    with pytest.raises(InstantiationException, match="both trained on and held out"):
        instantiate(cfg.data.corpus, heldout_faces=list(cfg.data.corpus.faces))
    with pytest.raises(InstantiationException, match="crf_range"):
        instantiate(cfg.data.corpus, crf_range=[30, 20])
    with pytest.raises(ValueError, match="usable faces"):
        face_image("insightface:t1.jpg#9", tmp_path)


def test_experiment_composes(tmp_path: Path) -> None:
    cfg = compose_train(tmp_path, ["experiment=sync_expert"])
    assert cfg.export_ckpt == "checkpoints/sync_expert.ckpt"
    assert cfg.seed != compose_train(tmp_path, ["experiment=audio2motion"]).seed
    assert cfg.data.corpus.speech.seed != compose_train(tmp_path, []).data.corpus.seed
    assert "embedded:astronaut" in cfg.data.corpus.heldout_faces
