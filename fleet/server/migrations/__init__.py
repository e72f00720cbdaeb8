"""Alembic migrations of the fleet server's database (fleet/server/migrate.py runs them).

`versions/` holds one file per schema change, applied in order at server start (or with
`kiosk fleet-server migrate`). To change the schema: edit fleet/server/schema.py, then write
the migration (`python -m fleet.server.migrate revision -m "what changed"` drafts it by
comparing schema.py with a database at the current head; read and fix the draft), and add a
test that upgrades a database from the previous head (tests/fleet/server/test_migrations.py).
"""
