"""The made-here renderer corpus: a video folder with the true motion beside each clip, split by
speaker, built once per settings and renderer, written whole or not at all."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avatar.config import compose, pipeline_from_config
from avatar.data.renderer_corpus import RendererCorpusSpec, build_renderer_corpus, read_manifest
from avatar.media import probe_mp4
from avatar.motion.track import MotionTrack

SPEC = RendererCorpusSpec(
    faces=("cartoon",), heldout_faces=("embedded:astronaut",), clips_per_face=2, size=256
)


@pytest.fixture(scope="module")
def pipeline(render_config_overrides):
    return pipeline_from_config(compose("render", render_config_overrides))


@pytest.fixture(scope="module")
def corpus(pipeline, tmp_path_factory):
    return build_renderer_corpus(pipeline, SPEC, tmp_path_factory.mktemp("corpus"))


def test_clips_have_their_true_motion_and_are_split_by_speaker(corpus):
    clips = read_manifest(corpus)
    assert [(c.speaker, c.split) for c in clips] == [
        ("cartoon", "train"),
        ("cartoon", "val"),
        ("embedded-astronaut", "test"),
        ("embedded-astronaut", "test"),
    ]
    for clip in clips:
        info = probe_mp4(corpus / clip.path)
        truth = MotionTrack.load(corpus / clip.motion)
        assert info["n_video_frames"] == len(truth) == clip.n_frames
        assert (info["width"], info["audio_codec"]) == (256, "aac")
        assert truth["jaw_open"].max() > 0.2  # it speaks
    assert len({c.text for c in clips}) == 4 and len({c.seed for c in clips}) == 4
    assert read_manifest(corpus, splits=["test"]) == clips[2:]
    manifest = json.loads((corpus / "manifest.json").read_text())
    assert manifest["speakers"] == ["cartoon", "embedded-astronaut"]


def test_built_once_per_settings_and_renderer(pipeline, corpus, tmp_path):
    again = build_renderer_corpus(pipeline, SPEC, corpus.parent)
    assert again == corpus  # reused, not rendered again
    plain = pipeline_from_config(
        compose("render", ["renderer.size=256", "renderer.mouth_interior=false"])
    )
    assert SPEC.key(plain.renderer) != SPEC.key(pipeline.renderer)
    other = RendererCorpusSpec(**{**SPEC.__dict__, "seed": 1})
    assert other.key(pipeline.renderer) != SPEC.key(pipeline.renderer)


def test_bad_settings_fail_before_any_work(pipeline, tmp_path):
    with pytest.raises(ValueError, match="renders 256 px, the spec asks for 128 px"):
        build_renderer_corpus(pipeline, RendererCorpusSpec(size=128), tmp_path)
    with pytest.raises(ValueError, match="at least one face"):
        build_renderer_corpus(pipeline, RendererCorpusSpec(clips_per_face=0), tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="not a renderer corpus"):
        read_manifest(tmp_path)


def test_a_failed_build_leaves_nothing(pipeline, tmp_path):
    broken = RendererCorpusSpec(faces=("/no/such/face.png",), heldout_faces=(), clips_per_face=1)
    with pytest.raises(Exception, match="face.png"):
        build_renderer_corpus(pipeline, broken, tmp_path)
    assert [p for p in tmp_path.iterdir()] == []


def test_truth_values_are_finite(corpus):
    for clip in read_manifest(corpus):
        assert np.isfinite(MotionTrack.load(corpus / clip.motion).values).all()
