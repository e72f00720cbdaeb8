"""A real fleet server for tests: `async with running_fleet_server(tmp_path) as srv:`.

Starts the real application in-process on 127.0.0.1 and a free port, with a fresh CA and a
fresh SQLite database under `tmp_path` (or the database at `db_url`, e.g. a throwaway
PostgreSQL), and offers the ops actions tests need without going through HTTP. Everything is
stopped when the block ends. The agent's tests enrol against it exactly as a kiosk would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from fleet.server import ops
from fleet.server import users as users_mod
from fleet.server.app import create_app
from fleet.server.context import CA, CLOCK, DB, EVALUATOR, INGEST, KEYS
from fleet.server.db import Database
from fleet.server.evaluator import PassReport
from fleet.server.settings import ServerSettings
from fleet.server.writer import serve_writer
from fleet.server.writer_link import remove_stale_socket, socket_path_for
from fleet.wire import Site
from provisioning.ca import FleetCA

ADMIN = "admin"


@dataclass
class RunningFleetServer:
    url: str
    app: web.Application
    settings: ServerSettings

    @property
    def db(self) -> Database:
        return self.app[DB]

    @property
    def ca(self) -> FleetCA:
        return self.app[CA]

    def now(self) -> float:
        return self.app[CLOCK]()

    async def create_site(self, **fields: Any) -> str:
        """Create a site; fields are wire `Site` fields (defaults fill the rest)."""
        values = {"site_id": f"site-{len(fields)}-{int(time.time() * 1e6) % 10**9}",
                  "site_type": "bank", "name": "测试网点", "address": "", "region": "320205",
                  "longitude": 120.3, "latitude": 31.57}
        values.update(fields)
        return await ops.create_site(self.db, Site(**values), now=self.now())

    async def create_enrolment_token(self, site_id: str, ttl_s: float = 3600) -> str:
        token, _ = await ops.create_enrolment_token(self.db, site_id, ttl_s=ttl_s,
                                                    now=self.now(), created_by=ADMIN)
        return token

    async def add_user(self, name: str, password: str, role: str,
                       regions: tuple[str, ...] | list[str] = ()) -> None:
        await users_mod.add_user(self.db, name, password, role, tuple(regions), now=self.now())

    async def login(self, name: str, password: str) -> str:
        """A bearer token for `name` (without HTTP; the login endpoint is tested separately)."""
        user = await users_mod.check_credentials(self.db, name, password)
        if user is None:
            raise PermissionError(f"bad credentials for {name}")
        token, _ = await users_mod.issue_token(self.db, user, "bearer", ttl_s=3600,
                                               now=self.now())
        return token

    async def issue_command(self, device_id: str, name: str, args: dict[str, Any] | None = None,
                            ttl_s: float = 3600) -> str:
        command = await ops.issue_command(self.db, device_id, name, args or {},
                                          issued_by=ADMIN, now=self.now(), ttl_s=ttl_s)
        return command.id

    async def revoke(self, device_id: str) -> None:
        await ops.revoke_device(self.db, device_id, by=ADMIN, now=self.now())
        self.app[KEYS].mark_revoked(device_id)

    async def evaluate(self, now: float | None = None) -> PassReport:
        """Run one alert evaluation pass now (tests that do not wait for the loop)."""
        return await self.app[EVALUATOR].run_once(now)

    @property
    def ingest_stats(self) -> Any:
        return self.app[INGEST].stats


@contextlib.asynccontextmanager
async def running_fleet_server(tmp_path: Path, db_url: str | None = None, *,
                               clock: Callable[[], float] = time.time,
                               writer_process: bool = False,
                               **settings: Any) -> AsyncIterator[RunningFleetServer]:
    """Start a fleet server; `settings` overrides `ServerSettings` fields (e.g.
    `heartbeat_interval_s=5`, `evaluate_every_s=0.2`, `run_evaluator=False`).
    `writer_process`: heartbeats go over the writer link (writer_link.py) to the SQLite
    writer's code (writer.py), run here as a task instead of a process of its own."""
    state_dir = Path(tmp_path) / "fleet-server"
    state_dir.mkdir(parents=True, exist_ok=True)
    server_settings = dataclasses.replace(ServerSettings(state_dir=state_dir, db_url=db_url or ""),
                                          **settings)
    async with _writer(server_settings, clock, writer_process) as socket_path:
        if socket_path:
            server_settings = dataclasses.replace(server_settings, ingest_socket=socket_path)
        ca_dir = server_settings.ca_dir
        ca = FleetCA.load(ca_dir) if (ca_dir / "ca.crt").exists() else FleetCA.create(ca_dir)
        app = create_app(server_settings, clock=clock, ca=ca)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            yield RunningFleetServer(f"http://127.0.0.1:{port}", app, server_settings)
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def _writer(settings: ServerSettings, clock: Callable[[], float],
                  wanted: bool) -> AsyncIterator[str]:
    if not wanted:
        yield ""
        return
    socket_path = socket_path_for(settings.state_dir)
    stop = asyncio.Event()
    task = asyncio.create_task(serve_writer(settings, socket_path, stop, clock=clock))
    try:
        for _ in range(200):
            if Path(socket_path).exists() or task.done():
                break
            await asyncio.sleep(0.02)
        if task.done():
            task.result()  # its exception, if it failed to start
        yield socket_path
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        remove_stale_socket(socket_path, final=True)
