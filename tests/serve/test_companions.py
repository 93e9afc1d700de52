"""``/v1/companions``: uploads (all or nothing), the default companion, deletes that take the
companion's sessions and files with them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.serve.conftest import auth

pytestmark = pytest.mark.anyio

PROBLEM = "application/problem+json"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares ``width`` x ``height`` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )


def wall_png() -> bytes:
    """A flat grey 256 x 256 image: readable, no face."""
    return cv2.imencode(".png", np.full((256, 256, 3), 128, np.uint8))[1].tobytes()


def files(*named: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("images", (name, data, "application/octet-stream")) for name, data in named]


def stored_files(var_dir: Path) -> list[Path]:
    """Every file the service keeps in ``var_dir`` but its database."""
    return sorted(p for p in var_dir.rglob("*") if p.is_file() and "avatar.db" not in p.name)


async def test_upload_list_get_then_delete_takes_sessions_and_files(open_app, astronaut_png):
    jpeg = cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(astronaut_png, np.uint8), 1))[1]
    async with open_app() as (client, state):
        made = await client.post(
            "/v1/companions",
            data={"name": "Astra"},
            files=files(("astra.png", astronaut_png), ("astra-2.jpg", jpeg.tobytes())),
            headers=auth("alpha"),
        )
        assert made.status_code == 201, made.text
        body = made.json()
        cid = body["id"]
        assert (body["name"], body["images"]) == ("Astra", 2) and body["source_image"] in (0, 1)
        tenant = state.store.tenant_by_name("alpha")
        folder = state.companions_dir / tenant.id / cid
        assert sorted(p.name for p in folder.iterdir()) == ["0.png", "1.jpg"]
        assert (folder / "0.png").read_bytes() == astronaut_png

        listed = await client.get("/v1/companions", headers=auth("alpha"))
        assert [c["id"] for c in listed.json()] == ["default", cid]
        other = await client.get("/v1/companions", headers=auth("beta"))
        assert [c["id"] for c in other.json()] == ["default"]
        got = await client.get(f"/v1/companions/{cid}", headers=auth("alpha"))
        assert got.json() == body

        session = await client.post(
            "/v1/sessions", json={"companion_id": cid}, headers=auth("alpha")
        )
        sid = session.json()["id"]
        video = await client.post(
            f"/v1/sessions/{sid}/generate", json={"text": "Hi."}, headers=auth("alpha")
        )
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        session_dir = state.outputs_dir / tenant.id / sid
        assert len(list(session_dir.glob("*.mp4"))) == 1

        gone = await client.delete(f"/v1/companions/{cid}", headers=auth("alpha"))
        assert gone.status_code == 204
        assert not folder.exists() and not session_dir.exists()
        assert (await client.get(f"/v1/sessions/{sid}", headers=auth("alpha"))).status_code == 404
        again = await client.get(f"/v1/companions/{cid}", headers=auth("alpha"))
        assert again.status_code == 404 and again.headers["content-type"] == PROBLEM
        assert (
            await client.delete(f"/v1/companions/{cid}", headers=auth("alpha"))
        ).status_code == 404
        assert stored_files(state.settings.var_dir) == []


async def test_default_is_everyones_and_cannot_be_deleted(client):
    for tenant in ("alpha", "beta"):
        listed = await client.get("/v1/companions", headers=auth(tenant))
        assert listed.json()[0]["id"] == "default"
        refused = await client.delete("/v1/companions/default", headers=auth(tenant))
        assert refused.status_code == 409 and refused.headers["content-type"] == PROBLEM
        assert "default companion cannot be deleted" in refused.json()["detail"]
    got = await client.get("/v1/companions/default", headers=auth("beta"))
    assert got.status_code == 200 and got.json()["id"] == "default"


BAD_UPLOADS = {
    # case: (the uploaded files, the file the 422 names, what it says about it)
    "no-face": ([("wall.png", wall_png)], "wall.png", "no face found (256x256 image)"),
    "not-an-image": (
        [("notes.png", lambda: b"hello, not an image\n")],
        "notes.png",
        "not a recognised image format",
    ),
    "bomb": ([("bomb.png", png_bomb)], "bomb.png", "100000x100000 pixels (10000.0 megapixels)"),
    "empty": ([("empty.png", lambda: b"")], "empty.png", "is empty"),
    "one-bad-of-two": (
        [("astra.png", None), ("bomb.png", png_bomb)],
        "bomb.png",
        "100000x100000 pixels",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
async def test_a_bad_image_is_a_422_naming_it_and_leaves_nothing(
    case, open_app, tmp_path, astronaut_png
):
    uploads, culprit, reason = BAD_UPLOADS[case]
    named = [(n, astronaut_png if make is None else make()) for n, make in uploads]
    cache = tmp_path / "fresh-identity-cache"
    async with open_app(f"render_overrides=['identity.cache_dir={cache}']") as (client, state):
        before = sorted(cache.rglob("*")) if cache.exists() else []
        refused = await client.post(
            "/v1/companions", data={"name": "Nobody"}, files=files(*named), headers=auth("alpha")
        )
        assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM
        detail = refused.json()["detail"]
        assert repr(culprit) in detail and reason in detail, detail
        assert str(state.settings.var_dir) not in detail and "cmp_" not in detail
        assert stored_files(state.settings.var_dir) == []
        listed = await client.get("/v1/companions", headers=auth("alpha"))
        assert [c["id"] for c in listed.json()] == ["default"]
        assert (sorted(cache.rglob("*")) if cache.exists() else []) == before


async def test_uploads_over_the_limit_are_413_and_leave_nothing(open_app, astronaut_png):
    assert len(astronaut_png) > 100_000
    async with open_app("limits.max_upload_mb=0.05") as (client, state):
        declared = await client.post(
            "/v1/companions",
            data={"name": "Big"},
            files=files(("big.png", astronaut_png)),
            headers=auth("alpha"),
        )
        assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM
        assert "limits.max_upload_mb" in declared.json()["detail"]

        boundary = "avatar-test-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nBig\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="images"; '
                f'filename="big.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            + astronaut_png
            + f"\r\n--{boundary}--\r\n".encode()
        )

        async def chunked():  # no Content-Length: the size is only known while reading
            for start in range(0, len(body), 16384):
                yield body[start : start + 16384]

        streamed = await client.post(
            "/v1/companions",
            content=chunked(),
            headers={**auth("alpha"), "Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        assert streamed.status_code == 413 and streamed.headers["content-type"] == PROBLEM
        assert stored_files(state.settings.var_dir) == []
        listed = await client.get("/v1/companions", headers=auth("alpha"))
        assert [c["id"] for c in listed.json()] == ["default"]


@pytest.mark.parametrize(
    ("data", "count", "needle"),
    [
        ({"name": "  "}, 1, "name: must not be blank"),
        ({"name": "Astra", "voice": "nobody"}, 1, "voice: unknown voice 'nobody'"),
        ({"name": "Astra"}, 9, "images: send 1 to 8 images (limits.max_images), got 9"),
    ],
)
async def test_bad_fields_are_422_naming_them(client, data, count, needle):
    one = wall_png()
    refused = await client.post(
        "/v1/companions",
        data=data,
        files=files(*[(f"{k}.png", one) for k in range(count)]),
        headers=auth("alpha"),
    )
    assert refused.status_code == 422 and needle in refused.json()["detail"]
    missing = await client.post("/v1/companions", data={"name": "Astra"}, headers=auth("alpha"))
    assert missing.status_code == 422 and "images" in missing.json()["detail"]
