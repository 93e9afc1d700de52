"""The service's database: tables, migrations and the :class:`Store` that reads and writes them."""

from serve.store.models import ApiKey, Companion, Output, Session, Tenant
from serve.store.store import Conflict, Store, hash_key, new_id, utc_now

__all__ = [
    "ApiKey",
    "Companion",
    "Conflict",
    "Output",
    "Session",
    "Store",
    "Tenant",
    "hash_key",
    "new_id",
    "utc_now",
]
