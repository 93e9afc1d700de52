"""The store on SQLite and on a real PostgreSQL server: migrations, tenants and keys, sessions,
cached outputs, deletes. Every test runs once per database (``database_url``)."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select, text

from avatar.errors import ConfigValueError
from serve.store import ApiKey, Companion, Conflict, Output, Session, Store, new_id, utc_now

TABLES = {"tenants", "api_keys", "companions", "sessions", "outputs", "alembic_version"}


@pytest.fixture
def store(database_url: str) -> Store:
    made = Store(database_url)
    made.migrate()
    yield made
    made.close()


def _rows(store: Store) -> list[str]:
    """Every value of every row of every table, as text."""
    out = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.extend(str(v) for v in row)
    return out


def _count(store: Store, model: type) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def _session(tenant_id: str, companion_id: str = "default", *, ttl_s: float = 60.0) -> Session:
    now = utc_now()
    return Session(
        id=new_id("ses"),
        tenant_id=tenant_id,
        companion_id=companion_id,
        voice="heart",
        emotion=None,
        size=128,
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )


def _companion(tenant_id: str) -> Companion:
    return Companion(
        id=new_id("cmp"),
        tenant_id=tenant_id,
        name="Astra",
        images=["/var/avatar/companions/0.png"],
        voice=None,
        identity_key="k" * 64,
        source_image=0,
        created_at=utc_now(),
    )


def _output(session_id: str, etag: str) -> Output:
    return Output(
        id=new_id("out"),
        session_id=session_id,
        etag=etag,
        path=f"/var/avatar/outputs/{etag}.mp4",
        size_bytes=1000,
        created_at=utc_now(),
    )


# -- migrations -------------------------------------------------------------------------------


def test_migrations_are_idempotent(store: Store) -> None:
    store.migrate()
    store.migrate()
    with store.engine.connect() as conn:
        assert TABLES <= set(inspect(conn).get_table_names())
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == ["0001"]
    tenant = store.create_tenant("alpha")
    store.migrate()  # data survives a re-run
    assert store.tenant_by_name("alpha").id == tenant.id


def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    stores = [Store(database_url) for _ in range(3)]
    errors: list[BaseException] = []

    def migrate(s: Store) -> None:
        try:
            s.migrate()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=migrate, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with stores[0].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    for s in stores:
        s.close()


# -- tenants and keys -------------------------------------------------------------------------


def test_keys_are_stored_as_digests_only(store: Store, database_url: str) -> None:
    tenant = store.create_tenant("alpha")
    key = store.add_key(tenant.id)
    chosen = store.add_key(tenant.id, "alpha-chosen-key-0123456789")
    assert key.startswith("ak_") and len(key) > 40
    assert store.tenant_for_key(key).id == tenant.id
    assert store.tenant_for_key(chosen).id == tenant.id
    assert store.tenant_for_key(key + "x") is None
    values = _rows(store)
    for plain in (key, chosen):
        assert not any(plain in v for v in values)
        assert not any(plain[8:] in v for v in values)  # only the 8-character prefix is kept
    if database_url.startswith("sqlite"):
        db = Path(database_url.removeprefix("sqlite:///"))
        files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]  # db, -wal, -shm
        assert db in files
        for path in files:
            data = path.read_bytes()
            assert key.encode() not in data and chosen.encode() not in data


def test_revoke_by_key_or_unique_prefix(store: Store) -> None:
    tenant = store.create_tenant("alpha")
    one = store.add_key(tenant.id, "shared-prefix-key-one")
    two = store.add_key(tenant.id, "shared-prefix-key-two")
    three = store.add_key(tenant.id)
    assert store.revoke_key(one) == 1  # the whole key: only itself, not its prefix-mates
    assert store.tenant_for_key(one) is None and store.tenant_for_key(two) is not None
    assert store.revoke_key(one) == 0  # already revoked
    assert store.revoke_key(three[:8]) == 1  # a unique prefix
    assert store.tenant_for_key(three) is None
    store.add_key(tenant.id, "shared-prefix-key-three")
    with pytest.raises(Conflict, match="2 active keys start with 'shared-p'"):
        store.revoke_key("shared-p")
    assert store.revoke_key("no-such-key-anywhere") == 0
    with pytest.raises(Conflict):  # a revoked key cannot be added again
        store.add_key(tenant.id, one)


def test_tenant_names(store: Store) -> None:
    store.create_tenant("alpha")
    with pytest.raises(Conflict, match="a tenant named 'alpha' exists already"):
        store.create_tenant("alpha")
    for bad in ("", " ", " alpha2", "a:b", "a,b", "x" * 101):
        with pytest.raises(ConfigValueError, match="tenant name"):
            store.create_tenant(bad)
    assert [t.name for t in store.list_tenants()] == ["alpha"]


def test_seed_is_idempotent_and_keeps_revocations(store: Store) -> None:
    keys = {"alpha": "alpha-key-0123456789", "beta": "beta-key-0123456789"}
    store.seed(keys)
    store.seed(keys)
    assert [t.name for t in store.list_tenants()] == ["alpha", "beta"]
    assert _count(store, ApiKey) == 2
    assert store.tenant_for_key(keys["beta"]).name == "beta"
    store.revoke_key(keys["alpha"])
    store.seed(keys)  # a restart does not bring a revoked key back
    assert store.tenant_for_key(keys["alpha"]) is None and _count(store, ApiKey) == 2


# -- sessions and outputs ---------------------------------------------------------------------


def test_sessions_expire_and_belong_to_their_tenant(store: Store) -> None:
    alpha, beta = store.create_tenant("alpha"), store.create_tenant("beta")
    live, old = _session(alpha.id), _session(alpha.id)
    store.add_session(live)
    store.add_session(old)
    store.add_output(_output(old.id, "e" * 64))
    assert store.session(alpha.id, live.id).voice == "heart"
    assert store.session(beta.id, live.id) is None
    later = utc_now() + timedelta(seconds=61)
    assert store.session(alpha.id, live.id, now=later) is None
    expires = store.touch_session(live.id, 120.0)
    touched = store.session(alpha.id, live.id, now=later)
    assert touched.expires_at == expires and touched.expires_at.tzinfo == UTC  # aware, both DBs
    assert touched.created_at == live.created_at
    store.touch_session(old.id, 1e-6)  # idle for longer than a tiny TTL
    assert store.session(alpha.id, old.id, now=utc_now() + timedelta(seconds=1)) is None
    assert [s.id for s in store.expired_sessions(utc_now() + timedelta(seconds=1))] == [old.id]
    deleted = store.delete_expired(utc_now() + timedelta(seconds=1))
    assert [s.id for s in deleted] == [old.id] and deleted[0].tenant_id == alpha.id
    assert store.outputs(old.id) == [] and store.existing_sessions([old.id, live.id]) == {live.id}
    assert store.delete_expired(utc_now() + timedelta(seconds=1)) == []


def test_outputs_are_unique_per_session_and_etag(store: Store) -> None:
    alpha = store.create_tenant("alpha")
    one, two = _session(alpha.id), _session(alpha.id)
    store.add_session(one)
    store.add_session(two)
    first = store.add_output(_output(one.id, "a" * 64))
    again = store.add_output(_output(one.id, "a" * 64))  # a concurrent identical render
    assert again.id == first.id
    other = store.add_output(_output(two.id, "a" * 64))
    assert other.id != first.id
    store.add_output(_output(one.id, "b" * 64))
    assert [o.etag for o in store.outputs(one.id)] == ["a" * 64, "b" * 64]
    assert store.output(one.id, "a" * 64).id == first.id and store.output(one.id, "c" * 64) is None
    store.delete_output(first.id)
    assert [o.etag for o in store.outputs(one.id)] == ["b" * 64]


def test_deletes_cascade_and_stay_in_the_tenant(store: Store) -> None:
    alpha, beta = store.create_tenant("alpha"), store.create_tenant("beta")
    companion, other = _companion(alpha.id), _companion(alpha.id)
    store.add_companion(companion)
    store.add_companion(other)
    on_it = [_session(alpha.id, companion.id), _session(alpha.id, companion.id)]
    on_other = _session(alpha.id, other.id)
    for row in (*on_it, on_other):
        store.add_session(row)
        store.add_output(_output(row.id, "a" * 64))
    assert store.delete_companion(beta.id, companion.id) is None  # not beta's
    assert store.companion(beta.id, companion.id) is None
    assert [c.id for c in store.companions(alpha.id)] == [companion.id, other.id]
    deleted, sessions = store.delete_companion(alpha.id, companion.id)
    assert deleted.id == companion.id
    assert sorted(s.id for s in sessions) == sorted(s.id for s in on_it)
    assert store.companion(alpha.id, companion.id) is None
    assert all(store.outputs(s.id) == [] for s in on_it)
    assert store.session(alpha.id, on_other.id) is not None and len(store.outputs(on_other.id)) == 1
    assert store.delete_session(beta.id, on_other.id) is None
    assert store.delete_session(alpha.id, on_other.id).id == on_other.id
    assert _count(store, Output) == 0 and _count(store, Session) == 0
    assert [c.id for c in store.companions(alpha.id)] == [other.id]
