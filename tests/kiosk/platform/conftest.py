"""Fixtures for the platform tests: the real sandbox app on a real 127.0.0.1 port, driven
through HttpPlatformClient, with an injected clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from kiosk.platform.client import CallTimeouts, HttpPlatformClient, RetryPolicy
from kiosk.platform.sandbox.app import STORE, SandboxSettings, create_app
from kiosk.platform.sandbox.store import SandboxStore
from tests.conftest import FakeClock

DEVICE_ID = "test-kiosk-01"
SECRET = "sandbox-secret"
FAST_RETRY = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05)


@dataclass
class Sandbox:
    server: TestServer
    app: web.Application
    clock: FakeClock
    http: aiohttp.ClientSession  # a tester's browser / the phone

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    @property
    def store(self) -> SandboxStore:
        return self.app[STORE]

    async def new_code(self, citizen_id: str = "c01") -> str:
        async with self.http.post(f"{self.url}/sandbox/citizens/{citizen_id}/code") as resp:
            assert resp.status == 200
            return (await resp.json())["code"]


async def start_server(app: web.Application) -> TestServer:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest_asyncio.fixture
async def sandbox(tmp_path, clock: FakeClock) -> AsyncIterator[Sandbox]:
    clock.now = time.time()  # real dates on the certificates; moved by hand from here
    app = create_app(SandboxSettings(data_dir=tmp_path / "sandbox"), clock=clock)
    server = await start_server(app)
    async with aiohttp.ClientSession() as http:
        yield Sandbox(server, app, clock, http)
    await server.close()


def make_client(url: str, **kwargs) -> HttpPlatformClient:
    kwargs.setdefault("retry", FAST_RETRY)
    every_call = {name: 5.0 for name in CallTimeouts.__dataclass_fields__}
    kwargs.setdefault("timeouts", CallTimeouts(**every_call))
    return HttpPlatformClient(url, device_id=DEVICE_ID, client_secret=SECRET, **kwargs)


@pytest_asyncio.fixture
async def client(sandbox: Sandbox) -> AsyncIterator[HttpPlatformClient]:
    platform = make_client(sandbox.url)
    yield platform
    await platform.close()
