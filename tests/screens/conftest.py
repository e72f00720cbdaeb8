"""Fixtures for tests that render the real Kivy app offscreen and drive it by touch.

`run_ui(script)` builds the runtime (with the test's FakeClock), starts the app headless in
this (forked) process and runs `script(pilot)`. A failing script leaves a screenshot in
test-artifacts/failures/; `keep(pilot, name)` stores a screenshot a reviewer can open.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kiosk.config import KioskConfig, PathsSection
from kiosk.runtime import build

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def run_ui(tmp_path, clock, request):
    def run(script, config: KioskConfig | None = None, *, speaker=None, services=False, devices=None,
            gate=None):
        """`services`: open the kiosk's services (sandbox platform, outbox, simulated
        `devices`) in the app, as `kiosk run` does; without, the bare shell."""
        config = config or KioskConfig()
        config = config.model_copy(update={"paths": PathsSection(data_dir=str(tmp_path / "var"))})
        runtime = build(config, clock=clock, log=False, speaker=speaker)
        runtime.gate = gate  # the maintenance gate (default: from the kiosk's enrolment)
        from screens.run import prepare, run_async

        prepare(runtime, headless=True)

        async def guarded(pilot):
            try:
                await script(pilot)
            except BaseException:
                path = ARTIFACTS / "failures" / f"{request.node.name}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                pilot.grab().save(path)
                print(f"screenshot of the failure: {path}")
                raise

        return asyncio.run(
            run_async(runtime, guarded, with_services=services, services_devices=devices)
        )

    return run


async def keep(pilot, name: str) -> Path:
    return await pilot.screenshot(ARTIFACTS / "screens" / f"{name}.png")
