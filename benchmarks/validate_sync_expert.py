"""Validates the sync expert on clips it never saw, against the landmark A/V offset.

    .venv/bin/python benchmarks/validate_sync_expert.py [--clips 12] [--size 256 512]

Clips: the held-out face (the astronaut, the default companion) speaking sentences the expert
was not trained on, rendered by the pipeline at each ``--size`` three ways: ``flite_timings``
(the held-out voice, flite slt, its exact phone timings driving the mouth), ``learned`` (the
same audio lip-synced by the learned audio-to-motion model: another mouth-motion style) and
``hibari_text`` (the default text path: hibari speaking, its own timeline driving the mouth).
Each clip's soundtrack is then shifted by k = -8..8 frames:

* ``within_1``: share of (clip, k) whose measured offset moved by k (+-1 frame);
* ``mean_abs_error``: mean |measured change - k|, frames;
* ``auc_shuffled``: how well the confidence tells an in-sync clip from the same clip with its
  audio cut into 0.4 s blocks and shuffled (ROC AUC: 0.5 = chance, 1 = always);
* ``offset_in_sync``: median offset of the unshifted clips (> 0: the video lags the audio).

Both the expert (:func:`evals.functional.sync_expert.expert_scores`) and the landmark method
(:func:`evals.functional.lipsync.av_offset`: mouth aperture vs speech envelope) are measured on
the same clips and the same MediaPipe track. Prints a JSON summary and a per-size table.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from avatar.audio import Audio
from avatar.config import compose, pipeline_from_config
from avatar.data.text_prompts import generated_sentences
from avatar.media import read_mp4
from evals.functional.lipsync import av_offset, speech_envelope
from evals.functional.mouth import mouth_aperture
from evals.functional.sync_expert import (
    audio_embeddings,
    load_sync_expert,
    offset_scores,
    video_embeddings,
)
from evals.landmarks import track_video
from evals.perturb import shift_audio, shuffle_blocks

log = logging.getLogger("validate_sync_expert")

SHIFTS = range(-8, 9)
TEXT_SEED = 4242  # neither corpus's seed: sentences the expert did not hear in training


def auc(positive: list[float], negative: list[float]) -> float:
    """P(a positive scores above a negative), ties counted half."""
    p, n = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def measure(frames: np.ndarray, audio: np.ndarray, rate: int, fps: float, expert) -> dict:
    """Per-method offsets at every shift and confidences in sync and shuffled, for one clip."""
    track = track_video(frames, fps)
    aperture = mouth_aperture(track.landmarks)

    def landmark(wav: np.ndarray) -> tuple[float, float]:
        env = speech_envelope(wav, rate, fps, len(frames))
        r = av_offset(aperture, env, max_offset=15)
        return float(r.offset_frames if r.offset_frames is not None else np.nan), r.confidence

    video = video_embeddings(frames, track.landmarks, expert)

    def by_expert(wav: np.ndarray) -> tuple[float, float]:
        r = offset_scores(video, audio_embeddings(wav, rate, len(frames), expert), 15)
        return r["offset"], r["confidence"]

    rng = np.random.default_rng(0)
    shuffled = shuffle_blocks(audio, int(0.4 * rate), rng)
    out = {}
    for name, fn in (("expert", by_expert), ("landmark", landmark)):
        scored = {k: fn(shift_audio(audio, rate, fps, k)) for k in SHIFTS}  # k = 0: in sync
        out[name] = dict(
            offsets={k: o for k, (o, _) in scored.items()},
            conf_sync=scored[0][1],
            conf_shuffled=fn(shuffled)[1],
        )
    return out


def summarise(rows: list[dict], method: str) -> dict:
    errors, base = [], []
    for r in rows:
        offsets = r[method]["offsets"]
        base.append(offsets[0])
        # audio delayed by k frames: the video leads by k more, so the offset falls by k
        errors += [abs((offsets[k] - offsets[0]) + k) for k in SHIFTS]
    errors = np.nan_to_num(np.asarray(errors, float), nan=99.0)
    return {
        "within_1": round(float((errors <= 1).mean()), 3),
        "mean_abs_error": round(float(errors.mean()), 2),
        "auc_shuffled": round(
            auc([r[method]["conf_sync"] for r in rows], [r[method]["conf_shuffled"] for r in rows]),
            3,
        ),
        "offset_in_sync": float(np.nanmedian(base)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12, help="sentences per size")
    parser.add_argument("--size", type=int, nargs="+", default=[256, 512], help="render sizes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("avatar", "evals"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    expert = load_sync_expert()
    texts = generated_sentences(args.clips, TEXT_SEED)
    started, report = time.perf_counter(), {}
    with tempfile.TemporaryDirectory(prefix="validate-sync-") as tmp:
        for size in args.size:
            pipe = pipeline_from_config(compose("render", [f"renderer.size={size}"]))
            voice = pipe.voices.get("flite-slt")  # exact phone timings, a voice held out
            rows: dict[str, list[dict]] = {"flite_timings": [], "learned": [], "hibari_text": []}
            for i, text in enumerate(texts):
                speech = voice.synthesize(text)
                out = Path(tmp) / f"{size}-{i}.mp4"
                pipe.render_speech("default", speech, out)
                clip = read_mp4(out)
                rows["flite_timings"].append(
                    measure(clip.frames, clip.audio, clip.sample_rate, clip.fps, expert)
                )
                pipe.render_audio(
                    "default", Audio(speech.audio, speech.sample_rate), out, mouth_source="learned"
                )
                clip = read_mp4(out)
                rows["learned"].append(
                    measure(clip.frames, clip.audio, clip.sample_rate, clip.fps, expert)
                )
                pipe.render_text("default", text, out)
                clip = read_mp4(out)
                rows["hibari_text"].append(
                    measure(clip.frames, clip.audio, clip.sample_rate, clip.fps, expert)
                )
                log.info("size %d: clip %d/%d done", size, i + 1, len(texts))
            report[str(size)] = {
                src: {m: summarise(r, m) for m in ("expert", "landmark")} for src, r in rows.items()
            }
    report["seconds"] = round(time.perf_counter() - started, 1)
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(
        "\n| size | mouth from | method | within +-1 | mean abs err | AUC shuffled "
        "| offset in sync |\n|---|---|---|---|---|---|---|\n"
    )
    for size in args.size:
        for src, methods in report[str(size)].items():
            for m, s in methods.items():
                sys.stdout.write(
                    f"| {size} | {src} | {m} | {s['within_1']} | "
                    f"{s['mean_abs_error']} | {s['auc_shuffled']} | "
                    f"{s['offset_in_sync']:+g} |\n"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
