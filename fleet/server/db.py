"""Database engines for the fleet server: SQLite (default) or PostgreSQL, one SQL layer.

The only dialect differences the rest of the server sees are behind `upsert()` and
`Database.is_sqlite`. SQLite runs in WAL mode with `synchronous=FULL`: an acknowledged
heartbeat must survive a power cut, and the heartbeat path commits in groups (ingest.py), so
the fsync is paid once per batch, not once per request.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine



class DatabaseUrlError(ValueError):
    """The database URL names an engine the fleet server does not support."""


def default_sqlite_url(state_dir: str) -> str:
    return f"sqlite+aiosqlite:///{state_dir}/fleet.db"


@dataclass
class Database:
    engine: AsyncEngine
    url: str
    # SQLite only: a synchronous engine on the same file for the heartbeat writer's own
    # thread (one thread hop per batch instead of one per statement; see ingest.py).
    sync_engine: sa.Engine | None = None
    _executor: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _lock_fd: int | None = field(default=None, init=False, repr=False)

    async def run_in_transaction(self, fn: Callable[[sa.Connection], T]) -> T:
        """Run `fn(connection)` in one transaction: on SQLite in the writer thread with the
        synchronous engine, on PostgreSQL through the async engine (greenlet bridge). The
        same SQLAlchemy Core statements either way."""
        if self.sync_engine is not None:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer(), self.run_blocking, fn)
        async with self.engine.begin() as conn:
            return await conn.run_sync(fn)

    def run_blocking(self, fn: Callable[[sa.Connection], T]) -> T:
        """SQLite only: `fn(connection)` in one transaction, in the calling thread (the writer
        process, whose event loop has nothing else to do, runs its batches this way)."""
        assert self.sync_engine is not None, "run_blocking is for SQLite"
        lock_fd = self.write_lock_fd()
        # Writers of several processes queue on a file lock (woken at once when it is
        # released) instead of SQLite's busy handler, which polls with sleeps of up to 100 ms
        # and would wreck the tail latency.
        if lock_fd is not None:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
        try:
            with self.sync_engine.begin() as conn:
                return fn(conn)
        finally:
            if lock_fd is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def write_lock_fd(self) -> int | None:
        """SQLite: the file lock writers of every process queue on (None: in-memory)."""
        database = self.engine.url.database or ""
        if self._lock_fd is None and database not in ("", ":memory:"):
            self._lock_fd = os.open(database + ".write.lock", os.O_RDWR | os.O_CREAT, 0o600)
        return self._lock_fd

    def _writer(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, "fleet-sqlite-writer")
        return self._executor

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def dispose(self) -> None:
        await self.engine.dispose()
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)
        if self.sync_engine is not None:
            self.sync_engine.dispose()


T = TypeVar("T")


def open_database(url: str, *, pool_size: int = 5) -> Database:
    sync_engine = None
    if url.startswith("sqlite+aiosqlite://"):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=4)
        sync_engine = sa.create_engine(url.replace("sqlite+aiosqlite://", "sqlite+pysqlite://"),
                                       poolclass=sa.pool.QueuePool, pool_size=1,
                                       max_overflow=0)
        for target in (engine.sync_engine, sync_engine):
            sa.event.listen(target, "connect", _sqlite_pragmas)

    elif url.startswith("postgresql+asyncpg://"):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=4,
                                     pool_pre_ping=True)
    else:
        raise DatabaseUrlError(
            f"unsupported database URL {url.split(':', 1)[0]!r}: "
            "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://..."
        )
    return Database(engine=engine, url=url, sync_engine=sync_engine)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed batch survives a power cut (an ack promises durability).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def upsert(db: Database, table: sa.Table, keys: list[str], add: tuple[str, ...] = (),
           replace: tuple[str, ...] = ()) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE, to execute with a list of rows: columns in
    `add` are summed with the existing value, columns in `replace` take the new value. Same
    statement shape on both engines."""
    dialect = sqlite_dialect if db.is_sqlite else pg_dialect
    stmt = dialect.insert(table)
    set_: dict[str, Any] = {c: table.c[c] + stmt.excluded[c] for c in add}
    set_.update({c: stmt.excluded[c] for c in replace})
    return stmt.on_conflict_do_update(index_elements=keys, set_=set_)
