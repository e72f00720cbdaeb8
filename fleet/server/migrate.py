"""Schema migrations (Alembic) for the fleet server's database, SQLite or PostgreSQL.

Every server process brings the database to the newest revision when it starts (so a fresh
database is set up by the first one, and an upgraded server upgrades its database); several
processes starting together take turns on a lock: a PostgreSQL transaction-level advisory
lock, or on SQLite the same file lock the heartbeat writers queue on. `kiosk fleet-server
migrate` does the same on its own (before a rolling deploy) and reports the revisions.

A database created before migrations existed (tables made by `create_all` at revision 0001's
schema) has no `alembic_version` table: it is stamped at 0001 first, then upgraded.

Drafting a new revision (developers): `python -m fleet.server.migrate revision -m "..."`
compares schema.py with a scratch SQLite database at the current head and writes a draft
into versions/ to read and fix.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from fleet.server.db import Database, open_database

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"  # the schema create_all made before migrations existed
_PG_LOCK = 0x4B696F736B4D6967  # "KioskMig"


def _config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    heads = ScriptDirectory.from_config(_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations must have one head, not {heads}")
    return heads[0]


def current(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: sa.Connection) -> tuple[str | None, str]:
    """Bring the database on `connection` (in a transaction) to the head: (before, after)."""
    before = current(connection)
    if before is None and sa.inspect(connection).has_table("devices"):
        command.stamp(_config(connection), BASELINE)
        before = BASELINE
    command.upgrade(_config(connection), "head")
    return before, current(connection) or ""


async def migrate(db: Database) -> tuple[str | None, str]:
    """Upgrade to the head under a lock shared by every server process: (before, after)."""
    if db.is_sqlite:
        lock_fd = db.write_lock_fd()  # the heartbeat writers' lock
        if lock_fd is not None:
            await asyncio.to_thread(fcntl.flock, lock_fd, fcntl.LOCK_EX)
        try:
            async with db.engine.begin() as conn:
                return await conn.run_sync(upgrade)
        finally:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
    async with db.engine.begin() as conn:
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        return await conn.run_sync(upgrade)


async def status(db: Database) -> tuple[str | None, str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(current), head()


def draft_revision(message: str) -> None:
    """Write a draft revision: schema.py compared with a scratch SQLite database at head."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = sa.create_engine(f"sqlite:///{tmp}/scratch.db")
        with engine.begin() as conn:
            command.upgrade(_config(conn), "head")
            number = f"{int(head()) + 1:04d}"
            command.revision(_config(conn), message=message, autogenerate=True,
                             rev_id=number)
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.server.migrate")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("revision", help="draft a new revision from schema.py")
    p.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    if args.command == "revision":
        draft_revision(args.message)
    return 0


async def run_migrate(url: str) -> int:
    """`kiosk fleet-server migrate`: upgrade and say what happened."""
    db = open_database(url)
    try:
        before, after = await migrate(db)
    finally:
        await db.dispose()
    if before == after:
        print(f"database schema at revision {after} (the newest)")
    else:
        print(f"database schema upgraded: {before or 'empty'} -> {after}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
