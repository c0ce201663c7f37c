"""Alembic environment for project databases. Run programmatically by ``conpet.store.schema``, which
passes an open connection (already inside a transaction) in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context

from conpet.store.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through conpet.store.schema (it passes the connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds the table
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
