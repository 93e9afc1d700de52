"""Bearer-key authentication: every route but health resolves its tenant here (401 otherwise).

The key is looked up by its sha256 (:meth:`serve.store.Store.tenant_for_key`); it is never
logged or echoed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from serve.problems import Problem
from serve.store import Tenant

__all__ = ["Caller", "tenant"]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="companion-avatar"'}


async def tenant(request: Request) -> Tenant:
    """FastAPI dependency: the tenant of the request's ``Authorization: Bearer <key>``."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(401, "send your API key as 'Authorization: Bearer <key>'", headers=_CHALLENGE)
    found = await run_in_threadpool(request.app.state.serve.store.tenant_for_key, key.strip())
    if found is None:
        raise Problem(401, "unknown or revoked API key", headers=_CHALLENGE)
    return found


Caller = Annotated[Tenant, Depends(tenant)]
"""A route argument ``who: Caller`` is the authenticated tenant."""
