"""The three ways to drive the mouth from given speech, measured on the held-out voice.

    .venv/bin/python benchmarks/compare_motion_sources.py [--limit 40]

For each utterance of the held-out voice(s) of the trained model's corpus (exact phone timings
known), the mouth comes from (a) forced alignment with the transcript, (b) phone recognition
without it (both pocketsphinx, then coarticulation) and (c) the learned audio-to-motion model.
Each is compared with the coarticulated truth:

* ``viseme_acc``: per-frame accuracy of the dominant viseme;
* ``pearson_open``: correlation of the opening (jaw_open + lip_open) over all frames;
* ``boundary_error_ms``: median distance from each true change of dominant viseme to the
  nearest predicted change;
* ``latency_ms``: how long after a sound the mouth can show it: the whole utterance for the
  aligner paths (they need it all), look-ahead + one chunk + compute for the learned model.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from omegaconf import OmegaConf

from avatar.companion import configs_dir
from avatar.data.audio2motion_datamodule import split_utterances
from avatar.errors import AvatarError
from avatar.motion.learned import LearnedMotion

FPS = 25


def boundaries(cls: np.ndarray) -> np.ndarray:
    """Frame indices where the dominant class changes."""
    return np.flatnonzero(np.diff(cls)) + 1


def boundary_error(true_cls: np.ndarray, pred_cls: np.ndarray) -> list[float]:
    tb, pb = boundaries(true_cls), boundaries(pred_cls)
    if not len(tb) or not len(pb):
        return []
    return [float(np.abs(pb - b).min()) * 1000 / FPS for b in tb]


def summarise(rows: list[dict], latency_ms: float) -> dict:
    t_cls = np.concatenate([r["t_cls"] for r in rows])
    p_cls = np.concatenate([r["p_cls"] for r in rows])
    t_open = np.concatenate([r["t_open"] for r in rows])
    p_open = np.concatenate([r["p_open"] for r in rows])
    errors = [e for r in rows for e in boundary_error(r["t_cls"], r["p_cls"])]
    return {
        "viseme_acc": round(float((t_cls == p_cls).mean()), 3),
        "pearson_open": round(float(np.corrcoef(t_open, p_open)[0, 1]), 3),
        "boundary_error_ms": round(float(np.median(errors)), 1),
        "latency_ms": round(latency_ms, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", default="checkpoints/audio2motion.ckpt")
    ap.add_argument("--limit", type=int, default=40)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cfg = OmegaConf.load(Path(args.ckpt).with_suffix(".yaml"))
    corpus, targets = instantiate(cfg.data.corpus), instantiate(cfg.data.targets)
    test = split_utterances(
        corpus.load(),
        heldout_voices=list(cfg.data.corpus.heldout_voices),
        val_fraction=cfg.data.val_fraction,
        seed=cfg.data.seed,
    )["test"][: args.limit]
    model = LearnedMotion.load(args.ckpt, streaming_runtime="torch")  # offline only
    aligner = instantiate(OmegaConf.load(configs_dir() / "aligner" / "pocketsphinx.yaml"))
    rows: dict[str, list[dict]] = {
        "aligner+transcript": [],
        "phone recognition": [],
        "learned model": [],
    }
    compute: dict[str, list[float]] = {k: [] for k in rows}
    failures = dict.fromkeys(rows, 0)
    audio_s = 0.0
    for u in test:
        sr = model.sample_rate
        n = int(round(len(u.audio) / sr * FPS))  # frame_count, as the pipeline renders
        t_w, t_m = targets(u.timeline, n)
        truth = {"t_cls": t_w.argmax(1), "t_open": t_m[:, 0] + t_m[:, 1]}
        for name in rows:
            t0 = time.perf_counter()
            if name == "learned model":
                mouth, probs = model.predict_all(u.audio, sr)
                pad = max(n - len(mouth), 0)  # (ceil vs round of the duration)
                mouth = np.pad(mouth, ((0, pad), (0, 0)), mode="edge")[:n]
                probs = np.pad(probs, ((0, pad), (0, 0)), mode="edge")[:n]
                pred = {"p_cls": probs.argmax(1), "p_open": mouth[:, 0] + mouth[:, 1]}
            else:
                text = u.text if name == "aligner+transcript" else None
                try:
                    timeline = aligner.timeline(u.audio, sr, text)
                except AvatarError:  # transcript did not fit: counted, then recognised
                    failures[name] += 1
                    timeline = aligner.timeline(u.audio, sr, None)
                w, m = targets(timeline, n)
                pred = {"p_cls": w.argmax(1), "p_open": m[:, 0] + m[:, 1]}
            compute[name].append(time.perf_counter() - t0)
            rows[name].append({**truth, **pred})
        audio_s += len(u.audio) / model.sample_rate
    mean_utt = 1000 * audio_s / len(test)
    chunk_ms, lookahead_ms = 20.0, 1000 * model.latency_s
    report = {
        "heldout_voices": sorted({u.voice for u in test}),
        "utterances": len(test),
        "audio_seconds": round(audio_s, 1),
    }
    for name, r in rows.items():
        compute_ms = 1000 * sum(compute[name]) / len(test)
        if name == "learned model":
            per_chunk_ms = sum(compute[name]) / audio_s * chunk_ms  # compute for 20 ms of audio
            latency = lookahead_ms + chunk_ms + per_chunk_ms
        else:
            latency = mean_utt + compute_ms
        report[name] = summarise(r, latency)
        report[name]["compute_x_realtime"] = round(sum(compute[name]) / audio_s, 4)
        report[name]["failed_alignments"] = failures[name]
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
