"""FakeLiveKit: a stand-in for a LiveKit server's agent dispatch API (no LiveKit server can run
here). It is a fake: it answers only ``POST /twirp/livekit.AgentDispatchService/CreateDispatch``
and ``.../ListDispatch``, the Twirp calls ``livekit-api`` makes, in protobuf (what livekit-api
sends) or JSON, and keeps dispatches in memory.

Each request's ``Authorization: Bearer <JWT>`` is verified with the API secret
(``livekit.api.TokenVerifier``) and must grant ``roomAdmin`` on the request's room, as the real
server demands; otherwise the answer is Twirp's ``unauthenticated`` / ``permission_denied``
error. Every request is recorded (:attr:`FakeLiveKit.requests`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from livekit import api
from livekit.protocol import agent_dispatch

__all__ = ["FakeLiveKit", "Recorded"]

_PREFIX = "/twirp/livekit.AgentDispatchService/"


@dataclass
class Recorded:
    """One request as the fake understood it."""

    method: str  # "CreateDispatch" or "ListDispatch"
    content_type: str
    body: dict[str, Any]  # the request message, as JSON field names
    claims: api.Claims | None  # the verified token's claims (None: refused)
    headers: dict[str, str] = field(default_factory=dict)


class FakeLiveKit:
    """A fake LiveKit API server on ``127.0.0.1``; use as a context manager.

    Args:
        api_key, api_secret: the credentials it accepts.
    """

    def __init__(self, api_key: str, api_secret: str) -> None:
        self.api_key, self.api_secret = api_key, api_secret
        self.requests: list[Recorded] = []
        self.dispatches: list[agent_dispatch.AgentDispatch] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                fake._handle(self)

            def log_message(self, *_: object) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeLiveKit:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- the API ---------------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        length = int(http.headers.get("content-length") or 0)
        raw = http.rfile.read(length)
        method = http.path.removeprefix(_PREFIX) if http.path.startswith(_PREFIX) else ""
        kinds: dict[str, type[Message]] = {
            "CreateDispatch": agent_dispatch.CreateAgentDispatchRequest,
            "ListDispatch": agent_dispatch.ListAgentDispatchRequest,
        }
        if method not in kinds:
            return _error(http, 404, "bad_route", f"no route {http.path}")
        content_type = http.headers.get("content-type", "")
        as_json = content_type.startswith("application/json")
        request = kinds[method]()
        if as_json:
            json_format.Parse(raw.decode(), request)
        else:
            request.ParseFromString(raw)
        claims = self._verify(http.headers.get("authorization", ""))
        record = Recorded(
            method,
            content_type,
            json_format.MessageToDict(request, preserving_proto_field_name=True),
            claims,
            dict(http.headers.items()),
        )
        with self._lock:
            self.requests.append(record)
        if claims is None:
            return _error(http, 401, "unauthenticated", "invalid token")
        if not (claims.video and claims.video.room_admin and claims.video.room == request.room):
            return _error(http, 403, "permission_denied", "needs roomAdmin on the room")
        if method == "CreateDispatch":
            with self._lock:
                made = agent_dispatch.AgentDispatch(
                    id=f"AD_{len(self.dispatches) + 1:04d}",
                    agent_name=request.agent_name,
                    room=request.room,
                    metadata=request.metadata,
                )
                self.dispatches.append(made)
            answer: Message = made
        else:
            with self._lock:
                found = [d for d in self.dispatches if d.room == request.room]
            answer = agent_dispatch.ListAgentDispatchResponse(agent_dispatches=found)
        if as_json:
            _send(http, 200, "application/json", json_format.MessageToJson(answer).encode())
        else:
            _send(http, 200, "application/protobuf", answer.SerializeToString())

    def _verify(self, header: str) -> api.Claims | None:
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer" or not token:
            return None
        try:
            return api.TokenVerifier(self.api_key, self.api_secret).verify(token)
        except Exception:  # any invalid token: refused like the real server
            return None


def _send(http: BaseHTTPRequestHandler, status: int, content_type: str, body: bytes) -> None:
    http.send_response(status)
    http.send_header("Content-Type", content_type)
    http.send_header("Content-Length", str(len(body)))
    http.end_headers()
    http.wfile.write(body)


def _error(http: BaseHTTPRequestHandler, status: int, code: str, msg: str) -> None:
    _send(http, status, "application/json", json.dumps({"code": code, "msg": msg}).encode())
