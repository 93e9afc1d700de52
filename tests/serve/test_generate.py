"""``POST /v1/sessions/{id}/generate`` in process (128 px): both bodies (JSON text, multipart
audio) on one route and in the OpenAPI schema, bad audio, the ETag cache (304, eviction, other
emotion, restart), streams cached for files, and the render metrics."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

from avatar.media import probe_mp4, write_wav
from avatar.media.mp4_reader import mp4_boxes
from tests.serve.conftest import auth, leftovers, opened

pytestmark = pytest.mark.anyio

SPOKEN = "Nice to meet you."


async def new_session(client, tenant: str = "alpha", **body: object) -> str:  # noqa: ANN001
    made = await client.post(
        "/v1/sessions", json={"companion_id": "default", **body}, headers=auth(tenant)
    )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def encoded(samples: np.ndarray, rate: int, fmt: str, tmp_path: Path) -> bytes:
    """Mono float speech as a file of ``fmt`` (wav, mp3, ogg with opus)."""
    path = tmp_path / f"speech.{fmt}"
    if fmt == "wav":
        write_wav(path, samples, rate)
        return path.read_bytes()
    codec, out_rate = {"mp3": ("libmp3lame", 24000), "ogg": ("libopus", 48000)}[fmt]
    from avatar.audio import resample

    pcm = resample(samples, rate, out_rate).astype(np.float32)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=out_rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="flt", layout="mono")
        frame.sample_rate = out_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path.read_bytes()


def metric(text: str, name: str) -> float:
    """The value of one sample line of a Prometheus exposition (0 when absent)."""
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_one_route_two_bodies_both_in_the_schema(client):
    schema = (await client.get("/openapi.json")).json()
    op = schema["paths"]["/v1/sessions/{session_id}/generate"]["post"]
    content = op["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    assert content["application/json"]["schema"]["required"] == ["text"]
    assert set(content["multipart/form-data"]["schema"]["properties"]) == {"audio", "transcript"}
    assert [p["name"] for p in op["parameters"]] == ["session_id", "stream"]
    assert {"200", "304", "413", "415", "422", "429", "503", "504"} <= set(op["responses"])
    sid = await new_session(client)
    for headers in ({"Content-Type": "text/plain"}, {}):
        refused = await client.post(
            f"/v1/sessions/{sid}/generate", content=b"Hello", headers={**auth("alpha"), **headers}
        )
        assert refused.status_code == 415
        assert refused.headers["content-type"] == "application/problem+json"
        assert "application/json" in refused.json()["detail"]


async def test_uploaded_speech_is_lip_synced(make_app, tmp_path):
    app = make_app()
    async with opened(app) as client:
        speech = app.state.serve.pipeline(128).speak(SPOKEN)
        sid = await new_session(client)
        url = f"/v1/sessions/{sid}/generate"
        for fmt in ("wav", "mp3", "ogg"):
            data = encoded(speech.audio, speech.sample_rate, fmt, tmp_path)
            made = await client.post(
                url,
                files={"audio": (f"hello.{fmt}", data, "application/octet-stream")},
                data={"transcript": SPOKEN},
                headers=auth("alpha"),
            )
            assert made.status_code == 200, made.text
            assert made.headers["content-type"] == "video/mp4"
            (tmp_path / "got.mp4").write_bytes(made.content)
            info = probe_mp4(tmp_path / "got.mp4")
            assert (info["video_codec"], info["audio_codec"]) == ("h264", "aac")
            assert info["faststart"] and info["width"] == 128
            slack = 0.04 if fmt == "wav" else 0.07  # a frame; codecs pad the end a little
            assert abs(info["video_duration"] - speech.duration) <= slack
            assert abs(info["video_duration"] - info["audio_duration"]) <= 0.04
        again = await client.post(
            url,
            files={"audio": ("other-name.ogg", data, "application/octet-stream")},
            data={"transcript": SPOKEN},
            headers={**auth("alpha"), "If-None-Match": made.headers["etag"]},
        )
        assert again.status_code == 304, "the ETag hashes the audio bytes, not the file name"
        untranscribed = await client.post(
            url,
            files={"audio": ("hello.ogg", data, "application/octet-stream")},
            headers={**auth("alpha"), "If-None-Match": made.headers["etag"]},
        )
        assert untranscribed.status_code == 200
        assert untranscribed.headers["etag"] != made.headers["etag"]
        counts = (await client.get("/metrics")).text
        assert metric(counts, 'avatar_render_seconds_count{kind="audio"}') == 4
        var = app.state.serve.settings.var_dir
        assert len(leftovers(var)) == 4 and all(p.endswith(".mp4") for p in leftovers(var))
        assert not list(var.rglob(".upload*")), "uploads are removed after the request"


async def test_bad_audio_is_a_4xx_naming_it_and_leaves_nothing(make_app, tmp_path):
    app = make_app("limits.max_audio_seconds=1")
    async with opened(app) as client:
        sid = await new_session(client)
        url = f"/v1/sessions/{sid}/generate"
        two_seconds = write_wav(tmp_path / "long.wav", np.zeros(32000, np.float32), 16000)
        cases = [
            ({"audio": ("empty.wav", b"", "audio/wav")}, {}, 422, "'empty.wav' is empty"),
            (
                {"audio": ("notes.wav", b"these are not samples", "audio/wav")},
                {},
                422,
                "'notes.wav': not a readable audio file",
            ),
            (
                {"audio": ("long.wav", two_seconds.read_bytes(), "audio/wav")},
                {},
                422,
                "'long.wav': 2.0 s of audio is over the limit of 1 s (config key "
                "limits.max_audio_seconds)",
            ),
            ({"transcript": (None, "hi")}, {}, 422, "form field `audio`"),
            (
                {"audio": ("a.wav", b"x", "audio/wav")},
                {"emotion": "happy"},
                422,
                "unknown form field(s) ['emotion']",
            ),
        ]
        for files, data, status, detail in cases:
            got = await client.post(url, files=files, data=data, headers=auth("alpha"))
            assert got.status_code == status, (files, got.text)
            assert got.headers["content-type"] == "application/problem+json"
            assert detail in got.json()["detail"], got.json()["detail"]
            assert str(app.state.serve.settings.var_dir) not in got.json()["detail"]
        assert leftovers(app.state.serve.settings.var_dir) == []


async def test_cache_304_other_emotion_eviction_and_restart(make_app):
    app = make_app("sessions.cache_entries=2")
    async with opened(app) as client:
        sid = await new_session(client)
        url = f"/v1/sessions/{sid}/generate"

        async def generate(text: str, **more: object):  # noqa: ANN202
            return await client.post(url, json={"text": text, **more}, headers=auth("alpha"))

        first = await generate("One.")
        assert first.status_code == 200 and re.fullmatch(r'"[0-9a-f]{64}"', first.headers["etag"])
        for match in (first.headers["etag"], f'W/{first.headers["etag"]}, "other"', "*"):
            hit = await client.post(
                url, json={"text": "One."}, headers={**auth("alpha"), "If-None-Match": match}
            )
            assert hit.status_code == 304 and hit.headers["etag"] == first.headers["etag"]
            assert hit.content == b""
        happy = await generate("One.", emotion="happy")
        assert happy.status_code == 200 and happy.headers["etag"] != first.headers["etag"]
        third = await generate("Three.")
        rows = app.state.serve.store.outputs(sid)
        assert [f'"{r.etag}"' for r in rows] == [happy.headers["etag"], third.headers["etag"]]
        folder = Path(rows[0].path).parent
        assert sorted(p.name for p in folder.iterdir()) == sorted(Path(r.path).name for r in rows)
        again = await generate("One.")  # evicted: rendered again, under the same ETag
        assert again.status_code == 200 and again.headers["etag"] == first.headers["etag"]
        exposition = (await client.get("/metrics")).text
        assert metric(exposition, 'avatar_render_seconds_count{kind="text"}') == 4
    restarted = make_app("sessions.cache_entries=2")  # the same var_dir and database
    async with opened(restarted) as client:
        rows = restarted.state.serve.store.outputs(sid)
        assert third.headers["etag"].strip('"') in {r.etag for r in rows}
        assert all(Path(r.path).is_file() for r in rows)
        cached = await client.post(url, json={"text": "Three."}, headers=auth("alpha"))
        assert cached.status_code == 200 and cached.headers["etag"] == third.headers["etag"]
        assert cached.content == third.content
        exposition = (await client.get("/metrics")).text
        assert metric(exposition, 'avatar_render_seconds_count{kind="text"}') == 0, "a hit"


async def test_a_stream_is_a_fragmented_mp4_then_a_cache_hit(make_app, tmp_path):
    app = make_app()
    async with opened(app) as client:
        sid = await new_session(client)
        url = f"/v1/sessions/{sid}/generate"
        streamed = await client.post(
            f"{url}?stream=true", json={"text": "Hello there."}, headers=auth("alpha")
        )
        assert streamed.status_code == 200 and streamed.headers["content-type"] == "video/mp4"
        boxes = mp4_boxes(streamed.content)
        assert boxes[:2] == ["ftyp", "moov"] and "moof" in boxes and boxes[-1] == "mfra"
        (tmp_path / "s.mp4").write_bytes(streamed.content)
        info = probe_mp4(tmp_path / "s.mp4")
        assert (info["video_codec"], info["audio_codec"], info["width"]) == ("h264", "aac", 128)
        assert info["video_duration"] == info["audio_duration"]
        file = await client.post(url, json={"text": "Hello there."}, headers=auth("alpha"))
        assert file.headers["etag"] == streamed.headers["etag"]
        assert file.content == streamed.content, "the completed stream was cached"
        exposition = (await client.get("/metrics")).text
        assert metric(exposition, 'avatar_render_seconds_count{kind="stream"}') == 1
        assert metric(exposition, 'avatar_render_seconds_count{kind="text"}') == 0
        assert metric(exposition, "avatar_stream_first_byte_seconds_count") == 1
        assert metric(exposition, "avatar_render_queue_depth") == 0
