"""Evaluate the learned audio-to-motion model on the held-out voice(s); prints JSON.

    python benchmarks/eval_audio2motion.py [--ckpt checkpoints/audio2motion.ckpt]
        [--config checkpoints/audio2motion.yaml] [--limit N]

Whole utterances go through :meth:`LearnedMotion.predict_all` (the offline path, equal to the
stream) and are compared with the coarticulated targets of their exact timelines:

* ``viseme_acc``: per-frame accuracy of argmax(predicted probabilities) vs argmax(target weights);
* ``pearson_*``: Pearson correlation over all frames of jaw_open, lip_open and their sum;
* ``mouth_l1``: mean absolute error over the 7 mouth channels;
* baselines: always-``sil`` accuracy, and the correlation of the frame RMS energy with the
  opening (what an energy-driven jaw would get);
* ``degraded``: the same after 20 dB pink noise and a 24 kbit/s opus round trip (seeded);
* latency: look-ahead + one 20 ms chunk, and the measured compute time per chunk.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

from avatar.data.audio2motion_datamodule import split_utterances
from avatar.data.augment import add_noise, codec_roundtrip
from avatar.motion.learned import LearnedMotion
from avatar.motion.visemes import VISEMES

log = logging.getLogger("eval_audio2motion")
CHUNK_S = 0.02


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def score(model: LearnedMotion, utterances: list, targets, degrade: bool = False) -> dict:
    """Metrics over ``utterances`` (see the module docstring)."""
    spf = int(model.sample_rate / model.fps)
    rng = np.random.default_rng(0)
    pm, pv, tm, tv, energy = [], [], [], [], []
    for u in utterances:
        audio = u.audio
        if degrade:
            audio = add_noise(audio, 20.0, "pink", rng)
            audio = codec_roundtrip(audio, model.sample_rate, "libopus", 24000)
        mouth, probs = model.predict_all(audio, model.sample_rate)
        weights, target = targets(u.timeline, len(mouth))
        padded = np.pad(audio, (0, len(mouth) * spf - len(audio)))
        energy.append(np.sqrt((padded.reshape(len(mouth), spf) ** 2).mean(1)))
        pm.append(mouth), pv.append(probs), tm.append(target), tv.append(weights)
    pm, pv, tm, tv = (np.concatenate(x) for x in (pm, pv, tm, tv))
    energy = np.concatenate(energy)
    t_open, p_open = tm[:, 0] + tm[:, 1], pm[:, 0] + pm[:, 1]
    true_cls = tv.argmax(1)
    return {
        "frames": int(len(pm)),
        "viseme_acc": float((pv.argmax(1) == true_cls).mean()),
        "pearson_jaw_open": _pearson(pm[:, 0], tm[:, 0]),
        "pearson_lip_open": _pearson(pm[:, 1], tm[:, 1]),
        "pearson_open": _pearson(p_open, t_open),
        "mouth_l1": float(np.abs(pm - tm).mean()),
        "baseline_always_sil_acc": float((true_cls == VISEMES.index("sil")).mean()),
        "baseline_energy_pearson_open": _pearson(energy, t_open),
    }


def streaming_check(model: LearnedMotion, audio: np.ndarray) -> dict:
    """Stream ``audio`` in 20 ms chunks: max difference to offline and compute time per chunk."""
    chunk = int(CHUNK_S * model.sample_rate)
    stream, frames, times = model.stream(), [], []
    for i in range(0, len(audio), chunk):
        t0 = time.perf_counter()
        frames += stream.push(audio[i : i + chunk])
        times.append(time.perf_counter() - t0)
    frames += stream.flush()
    offline = model.predict(audio, model.sample_rate)
    return {
        "stream_max_abs_diff": float(np.abs(np.stack(frames) - offline).max()),
        "compute_ms_per_20ms_chunk_mean": 1000 * float(np.mean(times)),
        "compute_ms_per_20ms_chunk_p95": 1000 * float(np.percentile(times, 95)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="checkpoints/audio2motion.ckpt")
    ap.add_argument("--config", default=None, help="resolved train config (default: ckpt .yaml)")
    ap.add_argument("--limit", type=int, default=0, help="at most N utterances per split")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    cfg = OmegaConf.load(args.config or Path(args.ckpt).with_suffix(".yaml"))
    corpus, targets = instantiate(cfg.data.corpus), instantiate(cfg.data.targets)
    splits = split_utterances(
        corpus.load(),
        heldout_voices=list(cfg.data.corpus.heldout_voices),
        val_fraction=cfg.data.val_fraction,
        seed=cfg.data.seed,
    )
    model = LearnedMotion.load(args.ckpt, streaming_runtime="torch")  # offline only
    test, val = splits["test"], splits["val"]
    if args.limit:
        test, val = test[: args.limit], val[: args.limit]
    n_params = sum(p.numel() for p in model.net.parameters())
    result = {
        "checkpoint": str(args.ckpt),
        "checkpoint_mb": round(Path(args.ckpt).stat().st_size / 1e6, 3),
        "params": n_params,
        "heldout_voices": sorted({u.voice for u in test}),
        "heldout": score(model, test, targets),
        "heldout_degraded_20db_opus24k": score(model, test, targets, degrade=True),
        "val_training_voices": score(model, val, targets),
        "latency": {
            "lookahead_ms": 1000 * model.latency_s,
            "chunk_ms": 1000 * CHUNK_S,
            "algorithmic_ms": 1000 * (model.latency_s + CHUNK_S),
            "note": "after the end of a 40 ms video frame; add compute time per chunk",
            **streaming_check(model, test[0].audio),
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
