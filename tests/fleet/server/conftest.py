"""Fixtures for the fleet server tests: a running server (SQLite and PostgreSQL), an HTTP
session, a clock the test moves, and an enrolled kiosk."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from fleet.server.testing import RunningFleetServer, running_fleet_server
from tests.fleet.server.simkiosk import SimKiosk

ADMIN_PASSWORD = "admin-password"


class MovableClock:
    """Wall-clock time plus whatever the test adds (the signature check needs real-ish time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's default cost (~0.25 s a hash here) is right for production and wrong for a
    test suite that creates users in every test; the algorithm and code path stay the same."""
    from argon2 import PasswordHasher

    from fleet.server import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))


@pytest.fixture
def fleet_clock() -> MovableClock:
    return MovableClock()


@pytest.fixture(params=["sqlite", "sqlite-writer", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """The server tests run on SQLite with heartbeats written in the server's own process,
    on SQLite through the writer link to the writer (as `serve --workers N` does), and on a
    fresh PostgreSQL database."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres").create_database()
    return None


@pytest.fixture
def writer_process(request: pytest.FixtureRequest, db_url: str | None) -> bool:
    callspec = getattr(request.node, "callspec", None)
    return callspec is not None and callspec.params.get("db_url") == "sqlite-writer"


@pytest_asyncio.fixture
async def srv(tmp_path: Path, db_url: str | None, writer_process: bool,
              fleet_clock: MovableClock) -> AsyncIterator[RunningFleetServer]:
    async with running_fleet_server(tmp_path, db_url, clock=fleet_clock,
                                    writer_process=writer_process,
                                    run_evaluator=False) as server:
        await server.add_user("admin", ADMIN_PASSWORD, "admin")
        yield server


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest_asyncio.fixture
async def kiosk(srv: RunningFleetServer, http: aiohttp.ClientSession,
                fleet_clock: MovableClock) -> SimKiosk:
    site = await srv.create_site(site_id="wx-icbc-01", region="320205", site_type="bank",
                                 name="工商银行无锡分行营业部")
    return await SimKiosk.enrol(srv.url, http, await srv.create_enrolment_token(site),
                                clock=fleet_clock)


class Ops:
    """An ops user's HTTP client."""

    def __init__(self, srv: RunningFleetServer, http: aiohttp.ClientSession, token: str) -> None:
        self.srv, self.http, self.token = srv, http, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.srv.url + path, json=body,
                                     headers={"Authorization": f"Bearer {self.token}"}) as r:
            return r.status, await r.json(content_type=None)

    async def get(self, path: str) -> Any:
        status, body = await self.call("GET", path)
        assert status == 200, body
        return body


@pytest_asyncio.fixture
async def admin(srv: RunningFleetServer, http: aiohttp.ClientSession) -> Ops:
    return Ops(srv, http, await srv.login("admin", ADMIN_PASSWORD))


async def as_user(srv: RunningFleetServer, http: aiohttp.ClientSession, name: str, role: str,
                  regions: tuple[str, ...] = ()) -> Ops:
    await srv.add_user(name, "password-" + name, role, regions)
    return Ops(srv, http, await srv.login(name, "password-" + name))
