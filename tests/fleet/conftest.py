"""Fleet test set-up: a throwaway PostgreSQL cluster (session-scoped) and the `db_url`
fixture that runs a test on SQLite and on PostgreSQL.

The cluster follows RECIPES.md: initdb into a temporary directory as the `postgres` user,
listen on 127.0.0.1 and a free port (never 5432), `pg_ctl -m immediate stop` at the end of
the session. Each PostgreSQL test gets a database of its own. Without PostgreSQL installed
the PostgreSQL half is skipped with the reason; CI installs it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresCluster:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self) -> None:
        pg = pwd.getpwnam("postgres")
        for sub, mode in (("data", 0o700), ("sock", 0o755)):
            path = self.root / sub
            path.mkdir(mode=mode)
            os.chown(path, pg.pw_uid, pg.pw_gid)
        os.chown(self.root, pg.pw_uid, pg.pw_gid)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                          "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        opts = f"-k {self.root / 'sock'} -h 127.0.0.1 -p {self.port} -c fsync=off"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l",
                          str(self.root / "log"), "-w", "-o", f"'{opts}'", "start")

    def stop(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = "t_" + uuid.uuid4().hex[:12]
        subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U",
                        "postgres", "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                       stdout=subprocess.DEVNULL, timeout=30)
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    if not (PG_BIN / "initdb").exists() or shutil.which("su") is None:
        pytest.skip("PostgreSQL 15 is not installed (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
    cluster = PostgresCluster(root, free_port())
    try:
        cluster.start()
        yield cluster
    finally:
        try:
            if (cluster.data / "postmaster.pid").exists():
                cluster.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """None (the server's default SQLite database) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres").create_database()
