"""Metrics on user-supplied weights (ArcFace ONNX, SyncNet): the real loading path with tiny
stand-in files built here in a temporary weights directory, and the skip path without them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avatar.errors import WeightsMissingError
from evals.functional.arcface import FIVE_POINTS, ArcFaceEmbedder, align_face, five_points
from evals.metrics import ArcFaceCSIM
from evals.suite import Suite
from evals.weights import WeightsRegistry

ARC_DIM, POOL = 512, 8


def _registry(tmp_path: Path, name: str, file: str, pinned: bool) -> WeightsRegistry:
    path = tmp_path / file
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if pinned else "0" * 64
    entry = {
        "file": file,
        "sha256": digest,
        "licence": "test",
        "used_by": "test",
        "source": "weights_dir",
    }
    return WeightsRegistry(directory=tmp_path, entries={name: entry}, strict=False)


def _tiny_arcface(path: Path) -> np.ndarray:
    """An ONNX 'ArcFace': 8x8 average pool, flatten, a fixed random (588, 512) matmul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((3 * 14 * 14, ARC_DIM)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node(
                "AveragePool", ["input"], ["p"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]
            ),
            helper.make_node("Flatten", ["p"], ["f"], axis=1),
            helper.make_node("MatMul", ["f", "w"], ["embedding"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", ARC_DIM])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return w


def _face(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A (160, 160, 3) uint8 image and (478, 3) landmarks whose 5 points sit on a face box."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (160, 160, 3)).astype(np.uint8)
    lm = np.zeros((478, 3))
    lm[list(FIVE_POINTS), :2] = [[60, 70], [100, 70], [80, 90], [64, 112], [96, 112]]
    return img, lm


def test_arcface_csim_with_a_model_in_the_weights_directory(tmp_path: Path) -> None:
    w = _tiny_arcface(tmp_path / "arcface" / "w600k_r50.onnx")
    reg = _registry(tmp_path, "arcface", "arcface/w600k_r50.onnx", pinned=True)
    (img, lm), (other, _) = _face(0), _face(1)
    # the embedder: normalisation, NCHW, the graph, L2 norm
    crop = align_face(img, five_points(lm))
    emb = ArcFaceEmbedder(tmp_path / "arcface" / "w600k_r50.onnx").embed(crop[None])
    x = ((crop.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)
    want = x.reshape(3, 14, POOL, 14, POOL).mean((2, 4)).reshape(-1) @ w
    np.testing.assert_allclose(emb[0], want / np.linalg.norm(want), atol=1e-5)
    assert np.linalg.norm(emb, axis=1) == pytest.approx(1.0)
    # the metric, loading the model through the registry
    video = torch.from_numpy(np.stack([img, other])).permute(0, 3, 1, 2)[None]  # (1, 2, 3, H, W)
    lms = torch.from_numpy(np.stack([lm, lm]))[None]
    out = ArcFaceCSIM(sample_every=1, registry=reg)(video, lms, [img], reference_landmarks=[lm])
    sims = (
        emb
        @ ArcFaceEmbedder(tmp_path / "arcface" / "w600k_r50.onnx")
        .embed(align_face(other, five_points(lm))[None])
        .T
    )
    assert out["csim"].item() == pytest.approx((1.0 + sims.item()) / 2, abs=1e-6)
    assert out["no_face"].item() == 0.0


def test_arcface_csim_skips_without_its_model(tmp_path: Path) -> None:
    (tmp_path / "arcface").mkdir()
    reg = WeightsRegistry(
        directory=tmp_path,
        entries={
            "arcface": {
                "file": "arcface/w600k_r50.onnx",
                "sha256": None,
                "licence": "x",
                "used_by": "x",
                "source": "weights_dir",
            }
        },
        strict=False,
    )
    img, lm = _face(0)
    video = torch.from_numpy(img).permute(2, 0, 1)[None, None]
    with pytest.raises(WeightsMissingError, match="weights arcface absent"):
        ArcFaceCSIM(registry=reg, sample_every=10)(video, torch.from_numpy(lm)[None, None], [img])
    suite = Suite({"identity": {"arcface": ArcFaceCSIM(registry=reg, sample_every=10)}})
    _, skipped = suite.score_clip(
        {"video": video, "landmarks": torch.from_numpy(lm)[None, None], "references": [img]}
    )
    assert skipped["identity/arcface"].startswith("skipped: weights arcface absent")


def test_arcface_hash_mismatch_is_a_skip_reason(tmp_path: Path) -> None:
    _tiny_arcface(tmp_path / "arcface.onnx")
    reg = _registry(tmp_path, "arcface", "arcface.onnx", pinned=False)
    img, lm = _face(0)
    with pytest.raises(WeightsMissingError, match="sha256"):
        ArcFaceCSIM(registry=reg, sample_every=10)(
            torch.from_numpy(img).permute(2, 0, 1)[None, None],
            torch.from_numpy(lm)[None, None],
            [img],
        )


def _sync_clip(n: int = 12) -> dict[str, object]:
    """A tiny 25 fps clip: (1, n, 3, 64, 64) uint8 video, a face box of landmarks, 16 kHz audio."""
    rng = np.random.default_rng(0)
    video = torch.from_numpy(rng.integers(0, 256, (1, n, 3, 64, 64)).astype(np.uint8))
    lm = np.zeros((1, n, 478, 3))
    lm[..., 0] = np.linspace(20, 44, 478)
    lm[..., 1] = np.linspace(16, 48, 478)
    audio = torch.from_numpy(rng.uniform(-0.3, 0.3, (1, n * 640)).astype(np.float32))
    return {
        "video": video,
        "landmarks": torch.from_numpy(lm),
        "audio": audio,
        "sample_rate": 16000,
        "fps": 25.0,
    }


def test_syncnet_v2_state_dict_loads_and_scores(tmp_path: Path) -> None:
    from evals.functional.syncnet import SyncNetModel, face_crops, load_syncnet, lse
    from evals.metrics import SyncNetLSE

    torch.manual_seed(0)
    net = SyncNetModel()
    state = net.state_dict()
    assert {k.split(".")[0] for k in state} == {"netcnnaud", "netfcaud", "netcnnlip", "netfclip"}
    torch.save(state, tmp_path / "syncnet_v2.model")
    reg = _registry(tmp_path, "syncnet_v2", "syncnet_v2.model", pinned=True)
    loaded = load_syncnet(registry=reg)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())
    clip = _sync_clip()
    out = SyncNetLSE(registry=reg, vshift=15)(**clip)
    assert set(out) == {"d", "c", "offset", "offset_abs", "dist_at_0"}
    # the metric is the functional form on the clip's crops (its audio is at 16 kHz already)
    frames = clip["video"][0].permute(0, 2, 3, 1).numpy()  # (T, H, W, 3) uint8
    crops = face_crops(frames, clip["landmarks"][0].numpy())
    ref = lse(crops, clip["audio"][0].numpy(), loaded, vshift=15)
    assert {k: v.item() for k, v in out.items()} == pytest.approx(
        {
            "d": ref["lse_d"],
            "c": ref["lse_c"],
            "offset": ref["offset"],
            "offset_abs": abs(ref["offset"]),
            "dist_at_0": ref["dist_at_0"],
        },
        rel=1e-5,
    )
    assert out["c"].item() >= 0 and -15 <= out["offset"].item() <= 15
    assert out["dist_at_0"].item() >= out["d"].item()
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "bad.model")
    with pytest.raises(WeightsMissingError, match="not a syncnet_v2 state dict"):
        load_syncnet(tmp_path / "bad.model")


def test_syncnet_skips_without_weights(tmp_path: Path) -> None:
    from evals.metrics import MetricNotApplicable, SyncNetLSE

    reg = WeightsRegistry(
        directory=tmp_path,
        entries={
            "syncnet_v2": {
                "file": "syncnet_v2.model",
                "sha256": None,
                "licence": "x",
                "used_by": "x",
                "source": "weights_dir",
            }
        },
        strict=False,
    )
    suite = Suite({"lipsync": {"lse": SyncNetLSE(registry=reg, vshift=15)}})
    _, skipped = suite.score_clip(_sync_clip())
    assert skipped["lipsync/lse"].startswith("skipped: weights syncnet_v2 absent")
    with pytest.raises(MetricNotApplicable, match="25 fps"):
        SyncNetLSE(model=object(), vshift=15)(**(_sync_clip() | {"fps": 30.0}))


def test_mfcc_rate_and_shape() -> None:
    from evals.functional.syncnet import mfcc

    feats = mfcc(np.random.default_rng(0).standard_normal(16000) * 1000)
    assert feats.shape == (13, 99) and np.isfinite(feats).all()


def test_mfcc_matches_python_speech_features() -> None:
    psf = pytest.importorskip("python_speech_features")  # optional: only for this cross-check
    from evals.functional.syncnet import mfcc

    x = (np.random.default_rng(1).standard_normal(7777) * 3000).astype(np.int16)
    want = np.stack([np.array(c) for c in zip(*psf.mfcc(x, 16000), strict=True)])
    np.testing.assert_allclose(mfcc(x.astype(np.float64)), want, rtol=1e-9, atol=1e-9)
