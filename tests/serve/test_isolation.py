"""Tenant isolation on every route: another tenant's companion, session or output is a 404 that
says nothing beyond the id the caller sent; no key, a wrong one or a revoked one is a 401.

The routes are walked from the app itself: a ``/v1`` route missing from :data:`ROUTES` fails
:func:`test_every_route_is_covered`, so a new route cannot ship without its isolation case.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from serve.settings import LiveKitSettings
from tests.serve.conftest import KEYS, auth
from tests.serve.fake_livekit import FakeLiveKit

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
"""Routes outside /v1 and without a key; any other route outside /v1 fails the coverage test."""
SECRET_NAME = "Alpha's secret Astra"


@dataclass(frozen=True)
class Ids:
    """Tenant alpha's resources."""

    companion: str
    session: str


Call = tuple[str, str, dict]  # method, url, httpx keyword arguments


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    return buf.getvalue()


def _generate(ids: Ids) -> list[Call]:
    url = f"/v1/sessions/{ids.session}/generate"
    audio = {"files": [("audio", ("reply.wav", _wav(), "audio/wav"))]}
    return [
        ("POST", url, {"json": {"text": "Hi."}}),
        ("POST", url + "?stream=true", {"json": {"text": "Hi."}}),
        ("POST", url, audio),
    ]


def _upload(_: Ids) -> list[Call]:
    image = ("astra.png", b"\x89PNG not really", "image/png")
    return [("POST", "/v1/companions", {"data": {"name": "Beta's"}, "files": [("images", image)]})]


ROUTES: dict[tuple[str, str], tuple[str, Callable[[Ids], list[Call]]]] = {
    # (method, path) -> (what tenant beta must see, the calls beta makes with alpha's ids)
    ("GET", "/v1/companions"): ("own-list", lambda i: [("GET", "/v1/companions", {})]),
    ("POST", "/v1/companions"): ("own-upload", _upload),
    ("GET", "/v1/companions/{companion_id}"): (
        "404",
        lambda i: [("GET", f"/v1/companions/{i.companion}", {})],
    ),
    ("DELETE", "/v1/companions/{companion_id}"): (
        "404",
        lambda i: [("DELETE", f"/v1/companions/{i.companion}", {})],
    ),
    ("POST", "/v1/sessions"): (
        "404",
        lambda i: [("POST", "/v1/sessions", {"json": {"companion_id": i.companion}})],
    ),
    ("GET", "/v1/sessions/{session_id}"): (
        "404",
        lambda i: [("GET", f"/v1/sessions/{i.session}", {})],
    ),
    ("DELETE", "/v1/sessions/{session_id}"): (
        "404",
        lambda i: [("DELETE", f"/v1/sessions/{i.session}", {})],
    ),
    ("POST", "/v1/sessions/{session_id}/generate"): ("404", _generate),
    ("POST", "/v1/sessions/{session_id}/token"): (
        "404",
        lambda i: [("POST", f"/v1/sessions/{i.session}/token", {"json": {"name": "Mallory"}})],
    ),
    ("POST", "/v1/sessions/{session_id}/avatar"): (
        "404",
        lambda i: [
            (
                "POST",
                f"/v1/sessions/{i.session}/avatar",
                {"json": {"room": "call-mallory", "agent_identity": "agent-mallory"}},
            )
        ],
    ),
    ("GET", "/v1/realtime"): ("same-for-all", lambda i: [("GET", "/v1/realtime", {})]),
}


def app_routes(app) -> set[tuple[str, str]]:  # noqa: ANN001 (FastAPI)
    """(method, path) of every API route of ``app``, included routers flattened."""
    found = set()
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            found |= {(method, context.path) for method in route.methods}
    return found


def test_every_route_is_covered(make_app) -> None:
    routes = app_routes(make_app())
    assert len(routes) > len(PUBLIC)  # the walk sees the included routers
    v1 = {r for r in routes if r[1].startswith("/v1/")}
    assert v1 == set(ROUTES), "add an isolation case to ROUTES for each new /v1 route"
    assert routes - v1 == PUBLIC, "a route outside /v1 must be public (PUBLIC) or move to /v1"


def _leaks(response: httpx.Response, secrets: list[str]) -> list[str]:
    text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    return [s for s in secrets if s in text]


async def test_another_tenants_resources_are_404_on_every_route(open_app, astronaut_png):
    with FakeLiveKit("APIkey", "secret-0123456789-0123456789-0123456789") as fake:
        lk = LiveKitSettings(fake.url, fake.api_key, fake.api_secret)
        async with open_app(livekit=lk) as (client, state):
            alpha = auth("alpha")
            made = await client.post(
                "/v1/companions",
                data={"name": SECRET_NAME, "voice": "flite-slt"},
                files=[("images", ("astra.png", astronaut_png, "image/png"))],
                headers=alpha,
            )
            assert made.status_code == 201, made.text
            cid = made.json()["id"]
            opened = await client.post(
                "/v1/sessions", json={"companion_id": cid, "emotion": "happy"}, headers=alpha
            )
            sid = opened.json()["id"]
            video = await client.post(
                f"/v1/sessions/{sid}/generate", json={"text": "Hi."}, headers=alpha
            )
            assert video.status_code == 200
            ids = Ids(companion=cid, session=sid)
            tenant_id = state.store.tenant_by_name("alpha").id
            secrets = [SECRET_NAME, tenant_id, KEYS["alpha"], video.headers["etag"].strip('"')]

            failures: list[str] = []
            for (method, path), (expect, calls) in sorted(ROUTES.items()):
                for verb, url, kwargs in calls(ids):
                    got = await client.request(verb, url, headers=auth("beta"), **kwargs)
                    sent = url + repr(kwargs)  # ids beta sent itself may be echoed back
                    leaked = _leaks(got, secrets + [s for s in (cid, sid) if s not in sent])
                    where = f"{verb} {url} ({method} {path})"
                    if leaked:
                        failures.append(f"{where}: echoes {leaked}")
                    if expect == "404":
                        ok = got.status_code == 404 and got.headers["content-type"] == PROBLEM
                    elif expect == "own-list":
                        ok = [c["id"] for c in got.json()] == ["default"]
                    elif expect == "own-upload":  # beta's own upload: never visible to alpha
                        ok = got.status_code in (201, 422)
                        if got.status_code == 201:
                            theirs = got.json()["id"]
                            seen = await client.get(f"/v1/companions/{theirs}", headers=alpha)
                            ok = seen.status_code == 404
                    else:  # same-for-all
                        mine = await client.request(verb, url, headers=alpha, **kwargs)
                        ok = got.status_code == 200 and got.json() == mine.json()
                    if not ok:
                        failures.append(f"{where}: {got.status_code} {got.text[:200]}")
            assert failures == []
            assert fake.requests == []  # beta's token call reached no LiveKit

            # alpha's resources are untouched by beta's deletes, generates and tokens
            assert (await client.get(f"/v1/companions/{cid}", headers=alpha)).status_code == 200
            assert (await client.get(f"/v1/sessions/{sid}", headers=alpha)).status_code == 200
            again = await client.post(
                f"/v1/sessions/{sid}/generate", json={"text": "Hi."}, headers=alpha
            )
            assert again.status_code == 200 and again.headers["etag"] == video.headers["etag"]
            assert len(state.store.outputs(sid)) == 1
            assert (state.companions_dir / tenant_id / cid).is_dir()


async def test_every_route_needs_a_valid_key(open_app):
    async with open_app() as (client, state):
        gamma = state.store.create_tenant("gamma")
        revoked = state.store.add_key(gamma.id)
        state.store.revoke_key(revoked)
        ids = Ids(companion="cmp_0123", session="ses_0123")
        keys = {
            "no key": {},
            "not bearer": {"Authorization": f"Basic {KEYS['alpha']}"},
            "unknown key": {"Authorization": "Bearer not-a-key-0123456789"},
            "revoked key": {"Authorization": f"Bearer {revoked}"},
        }
        failures = []
        for _, calls in ROUTES.values():
            for verb, url, kwargs in calls(ids):
                for label, headers in keys.items():
                    got = await client.request(verb, url, headers=headers, **kwargs)
                    challenge = got.headers.get("www-authenticate", "")
                    if not (
                        got.status_code == 401
                        and got.headers["content-type"] == PROBLEM
                        and challenge.startswith("Bearer ")
                    ):
                        failures.append(f"{verb} {url} with {label}: {got.status_code}")
        assert failures == []
