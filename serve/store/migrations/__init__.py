"""Alembic migrations of the service's database (run at start by :func:`serve.store.migrate`)."""
