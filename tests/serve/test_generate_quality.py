"""A generated MP4 passes the demo's checks (``evals.check_clip``) at 256 px: lips within
+/-2 frames of the speech envelope, the mouth closed in pauses, ID-dlib identity distance under
0.4 (skipped, that key only, without dlib's weights) and equal A/V durations."""

from __future__ import annotations

import pytest

from evals.check_clip import check_clip
from tests.serve.conftest import auth, opened

pytestmark = pytest.mark.anyio

TEXT = "Hello there. ... Nice to meet you."


async def test_a_generated_mp4_passes_the_demo_checks(make_app, identity_settings, tmp_path):
    app = make_app()
    async with opened(app) as client:
        session = await client.post(
            "/v1/sessions",
            json={"companion_id": "default", "renderer": {"size": 256}},
            headers=auth("alpha"),
        )
        assert session.status_code == 201 and session.json()["size"] == 256
        made = await client.post(
            f"/v1/sessions/{session.json()['id']}/generate",
            json={"text": TEXT},
            headers=auth("alpha"),
        )
        assert made.status_code == 200, made.text
    path = tmp_path / "generated.mp4"
    path.write_bytes(made.content)
    report = check_clip(path, portrait=identity_settings, sample_every=10)
    assert report["media/width"] == report["media/height"] == 256
    assert report["face/detection_rate"] == 1.0
    assert abs(report["lipsync/av_offset_frames"]) <= 2
    assert report["lipsync/n_pauses"] >= 1 and report["lipsync/pauses_all_closed"] is True
    assert report["lipsync/aperture_speech"] > 2 * report["lipsync/aperture_silence"]
    assert report["media/duration_diff_frames"] == 0.0
    if "identity/skipped" not in report:  # dlib's weights are an optional install
        assert report["identity/metric"] == "ID-dlib"
        assert 0.0 <= report["identity/mean"] <= report["identity/max"] < 0.4
