"""Schema migrations (fleet/server/migrate.py): a fresh database upgraded to the head has
exactly the schema of fleet/server/schema.py (Alembic's own comparison finds no difference)
on SQLite and PostgreSQL; a database made by create_all before migrations existed is stamped
at the baseline, upgraded, and keeps its rows; `fleet-server migrate` says what it did."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from fleet.server import migrate as migrate_mod
from fleet.server.cli import main
from fleet.server.db import open_database
from fleet.server.schema import login_failures, metadata, sites


def _url(db_url, tmp_path):
    return db_url or f"sqlite+aiosqlite:///{tmp_path}/fleet.db"


def _differences(connection: sa.Connection) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


@pytest.mark.asyncio
async def test_a_fresh_database_gets_exactly_the_schema(db_url, tmp_path):
    db = open_database(_url(db_url, tmp_path))
    try:
        before, after = await migrate_mod.migrate(db)
        assert before is None and after == migrate_mod.head()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
        assert await migrate_mod.migrate(db) == (after, after)  # a second run does nothing
        assert await migrate_mod.status(db) == (after, after)
    finally:
        await db.dispose()


@pytest.mark.asyncio
async def test_a_database_from_before_migrations_is_upgraded_in_place(db_url, tmp_path):
    db = open_database(_url(db_url, tmp_path))
    baseline = [t for t in metadata.sorted_tables if t is not login_failures]
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: metadata.create_all(c, tables=baseline))
            await conn.execute(sites.insert().values(
                id="wx-post-07", site_type="post", name="无锡邮政", address="", region="320205",
                longitude=120.3, latitude=31.5, created_at=1.0))
        before, after = await migrate_mod.migrate(db)
        assert before == migrate_mod.BASELINE and after == migrate_mod.head()
        async with db.engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert (await conn.execute(sa.select(sites.c.name))).scalars().all() == ["无锡邮政"]
    finally:
        await db.dispose()


def test_the_migrate_command(tmp_path, capsys):
    state = str(tmp_path / "fleet")
    assert main(["migrate", "--state-dir", state]) == 0
    assert f"empty -> {migrate_mod.head()}" in capsys.readouterr().out
    assert main(["migrate", "--state-dir", state]) == 0
    assert "(the newest)" in capsys.readouterr().out
