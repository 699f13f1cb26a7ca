"""Alembic environment: runs migrations on the connection scorer hands it."""

from __future__ import annotations

from alembic import context

from scorer.store.schema import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("scorer runs its migrations itself: use `scorer migrate`")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
