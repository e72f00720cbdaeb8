"""The sandbox platform inside the kiosk's own process, on a free loopback port.

Used when `[platform] url = "sim"`: the demo, a laptop, the end-to-end tests and the
journey benchmark get a real HTTP platform without starting another program.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from kiosk.platform.sandbox.app import SandboxSettings, create_app


@dataclass(frozen=True)
class EmbeddedSandbox:
    url: str
    app: web.Application


@contextlib.asynccontextmanager
async def embedded_sandbox(
    data_dir: Path,
    *,
    client_secret: str = "sandbox-secret",
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[EmbeddedSandbox]:
    data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(SandboxSettings(data_dir=data_dir, client_secret=client_secret), clock=clock)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield EmbeddedSandbox(f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()
