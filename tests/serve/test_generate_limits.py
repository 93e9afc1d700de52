"""Generate under pressure and bad input (in process, renders held or slowed by
``tests.fakes.SlowRenderer``): 503 when the queue is full, 429 past a tenant's concurrency or
rate (each with Retry-After), 504 past the request timeout, 413 for long text and big bodies
(declared or chunked), 422 for each bad field; and never an MP4, partial or whole, left behind
by a failure."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fakes import SlowRenderer
from tests.serve.conftest import auth, leftovers, opened

pytestmark = pytest.mark.anyio

TWO_SENTENCES = "Hello there, it is good to see you. I hope your day went well."


async def new_session(client: httpx.AsyncClient, tenant: str = "alpha") -> str:
    made = await client.post("/v1/sessions", json={"companion_id": "default"}, headers=auth(tenant))
    assert made.status_code == 201, made.text
    return made.json()["id"]


def held(gate: threading.Event, made: list[SlowRenderer]):  # noqa: ANN201
    """A renderer wrapper that holds every render at its first frame until ``gate`` is set."""

    def wrap(renderer):  # noqa: ANN001, ANN202
        made.append(SlowRenderer(renderer, gate=gate, hold_at=0))
        return made[-1]

    return wrap


async def until(condition, what: str) -> None:  # noqa: ANN001
    """Poll ``condition()`` (bounded: 30 s) while the app's tasks run."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"gave up waiting for {what}")


def assert_problem(response: httpx.Response, status: int, detail: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(body) == {"type", "title", "status", "detail"} and body["status"] == status
    assert detail in body["detail"], body["detail"]
    return body


async def test_a_full_queue_is_503_and_a_busy_tenant_429(make_wrapped_app):
    gate, made = threading.Event(), []
    app = make_wrapped_app(
        held(gate, made), limits={"workers": 1, "queue": 2, "tenant_concurrency": 2}
    )
    async with opened(app) as client:
        alpha, beta = await new_session(client, "alpha"), await new_session(client, "beta")
        pool = app.state.serve.pool

        def post(sid: str, tenant: str, text: str):  # noqa: ANN202
            url = f"/v1/sessions/{sid}/generate"
            return client.post(url, json={"text": text}, headers=auth(tenant))

        try:
            admitted = [asyncio.ensure_future(post(alpha, "alpha", "One."))]
            await until(lambda: made and made[0].holding.is_set(), "the first render to start")
            admitted.append(asyncio.ensure_future(post(alpha, "alpha", "Two.")))
            await until(lambda: pool.depth == 2, "the second render to wait")
            busy = await post(alpha, "alpha", "Three.")
            assert_problem(busy, 429, "this tenant has 2 renders running or waiting")
            assert int(busy.headers["retry-after"]) >= 1
            admitted.append(asyncio.ensure_future(post(beta, "beta", "Four.")))
            await until(lambda: pool.depth == 3, "the third render to wait")
            full = await post(beta, "beta", "Five.")
            body = assert_problem(full, 503, "the service is busy (3 renders running or waiting)")
            assert body["type"].endswith("/busy")
            assert full.headers["retry-after"] == "6", "2 s a render (none timed yet), 3 ahead"
        finally:
            gate.set()
        assert [(await a).status_code for a in admitted] == [200, 200, 200]
        assert pool.depth == 0 and pool.running == 0
        assert len(leftovers(app.state.serve.settings.var_dir)) == 3, "the admitted renders'"


async def test_a_tenant_over_its_rate_is_429_but_cache_hits_are_free(make_app):
    app = make_app("limits.tenant_rate_per_min=1")
    async with opened(app) as client:
        sid = await new_session(client)
        url = f"/v1/sessions/{sid}/generate"
        ok = await client.post(url, json={"text": "One."}, headers=auth("alpha"))
        assert ok.status_code == 200
        limited = await client.post(url, json={"text": "Two."}, headers=auth("alpha"))
        assert_problem(limited, 429, "over 1 requests a minute for this tenant")
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        hit = await client.post(url, json={"text": "One."}, headers=auth("alpha"))
        assert hit.status_code == 200 and hit.headers["etag"] == ok.headers["etag"]
        other = await client.post(
            f"/v1/sessions/{await new_session(client, 'beta')}/generate",
            json={"text": "Two."},
            headers=auth("beta"),
        )
        assert other.status_code == 200


async def test_past_the_request_timeout_504_and_nothing_left(make_wrapped_app):
    made: list[SlowRenderer] = []

    def slow(renderer):  # noqa: ANN001, ANN202
        made.append(SlowRenderer(renderer, delay_s=0.05))
        return made[-1]

    app = make_wrapped_app(slow, limits={"request_timeout_s": 0.5})
    async with opened(app) as client:
        sid = await new_session(client)
        late = await client.post(
            f"/v1/sessions/{sid}/generate", json={"text": TWO_SENTENCES}, headers=auth("alpha")
        )
        assert_problem(late, 504, "over 0.5 s (limits.request_timeout_s) and was stopped")
        state = app.state.serve
        assert state.pool.running == 0 and made[0].frames < 75, "stopped early"
        assert leftovers(state.settings.var_dir) == []
        assert state.store.outputs(sid) == []


async def test_long_text_and_big_bodies_are_413(make_app):
    app = make_app("limits.max_text_chars=40", "limits.max_upload_mb=0.01")  # 10485 bytes
    async with opened(app) as client:
        sid = await new_session(client)
        url = f"/v1/sessions/{sid}/generate"
        long_text = await client.post(url, json={"text": "x" * 41}, headers=auth("alpha"))
        assert_problem(long_text, 413, "text is 41 characters, over the limit of 40")
        big = {"text": "y" * 20000}
        declared = await client.post(url, json=big, headers=auth("alpha"))
        assert_problem(declared, 413, "over limits.max_upload_mb (0.01 MB)")

        async def chunked(data: bytes) -> AsyncIterator[bytes]:
            for at in range(0, len(data), 4096):
                yield data[at : at + 4096]

        body = httpx.Request("POST", url, json=big).content
        no_length = await client.post(
            url,
            content=chunked(body),
            headers={**auth("alpha"), "Content-Type": "application/json"},
        )
        assert "content-length" not in no_length.request.headers
        assert_problem(no_length, 413, "over limits.max_upload_mb (0.01 MB)")
        upload = httpx.Request("POST", url, files={"audio": ("a.wav", b"\0" * 20000)})
        multipart = await client.post(
            url,
            content=chunked(upload.read()),
            headers={**auth("alpha"), "Content-Type": upload.headers["content-type"]},
        )
        assert_problem(multipart, 413, "over limits.max_upload_mb")
        transcript = await client.post(
            url,
            files={"audio": ("a.wav", b"RIFF")},
            data={"transcript": "z" * 41},
            headers=auth("alpha"),
        )
        assert_problem(transcript, 413, "transcript is 41 characters")
        assert leftovers(app.state.serve.settings.var_dir) == []


BAD_FIELDS = [
    ({"text": ""}, "text is empty"),
    ({"text": "  \n\t "}, "text is empty"),
    ({"text": "[smile]"}, "text is empty"),
    ({"text": "Hi.", "emotion": "grumpy"}, "unknown emotion 'grumpy'; known: angry"),
    ({"text": "Hi [grumpy] there."}, "emotion tag '[grumpy]': unknown emotion"),
    ({"text": "Hi [sad 2] there."}, "emotion tag '[sad 2]': emotion intensity must be in"),
    ({"text": "Hi.", "emotion_intensity": 2}, "emotion_intensity: Input should be less"),
    ({"text": "Hi.", "colour": "red"}, "colour: Extra inputs are not permitted"),
    ({"emotion": "happy"}, "text: Field required"),
    (b'{"text": "Hi.', "Invalid JSON"),
]


async def test_bad_fields_are_422_naming_them(client, tmp_path):
    sid = await new_session(client)
    url = f"/v1/sessions/{sid}/generate"
    for body, detail in BAD_FIELDS:
        if isinstance(body, bytes):
            headers = {**auth("alpha"), "Content-Type": "application/json"}
            got = await client.post(url, content=body, headers=headers)
        else:
            got = await client.post(url, json=body, headers=auth("alpha"))
        assert_problem(got, 422, detail)
        assert leftovers(tmp_path / "var") == []  # the client fixture's var_dir
