"""Start the kiosk UI: environment first, then Kivy, then the app on one asyncio loop.

`run()` is what `kiosk run` and `kiosk demo` call. An optional `script` coroutine gets a
`Pilot` once the first frame is on screen; the app stops when the script returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.runtime import Runtime
from screens import boot

if TYPE_CHECKING:
    from screens.pilot import Pilot

Script = Callable[["Pilot"], Awaitable[None]]
_log = logging.getLogger(__name__)


def prepare(runtime: Runtime, *, headless: bool) -> None:
    display = runtime.config.display
    boot.prepare(
        headless=headless,
        kivy_home=runtime.data_dir / "kivy",
        width=display.width,
        height=display.height,
        fullscreen=display.fullscreen and not headless,
        show_cursor=display.show_cursor,
    )


async def run_async(runtime: Runtime, script: Script | None = None, *, wait_services: bool = True,
                    **app_options):
    """`app_options` go to `KioskApp` (tests: `with_services=False` for the bare shell,
    `services_devices` to start only some simulators). The script starts once the services
    are up, unless `wait_services` is false (it then starts at the first frame)."""
    from screens.app import KioskApp
    from screens.pilot import Pilot

    app = KioskApp(runtime, **app_options)
    if script is None:
        try:
            await app.async_run(async_lib="asyncio")
        finally:
            await app.close_services()
        return app
    pilot = Pilot(app)
    app_task = asyncio.create_task(app.async_run(async_lib="asyncio"))
    try:
        await pilot.started()
        if app.with_services and wait_services:
            await asyncio.wait_for(app.services_ready.wait(), timeout=30)
            await pilot.settle()
        await script(pilot)
    finally:
        app.stop()
        await asyncio.wait_for(app_task, timeout=10)
        await app.close_services()
    return app


def run(runtime: Runtime, *, headless: bool, script: Script | None = None,
        wait_services: bool = True) -> None:
    started = time.monotonic()
    prepare(runtime, headless=headless)
    asyncio.run(run_async(runtime, script, wait_services=wait_services))
    _log.info("kiosk UI stopped after %.1f s", time.monotonic() - started)
