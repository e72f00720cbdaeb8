"""Alembic's environment: always given an open connection by fleet/server/migrate.py (so the
same code migrates SQLite and PostgreSQL, and under the caller's lock and transaction)."""

from alembic import context

from fleet.server.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through fleet.server.migrate, which passes a connection")
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things: later migrations rebuild tables in batch mode.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
