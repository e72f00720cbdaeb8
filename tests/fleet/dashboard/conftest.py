"""Dashboard test set-up: cheap password hashing, the screenshot folder, and a Chromium
browser (Debian's /usr/bin/chromium under Playwright; never a downloaded one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from fleet.server.dashboard.screenshots import CHROMIUM, chromium

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "dashboard"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2's production cost (~0.25 s a hash) would dominate these tests; same code path."""
    from argon2 import PasswordHasher

    from fleet.server import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024,
                                                         parallelism=1))


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One Chromium for a module's tests (each test opens its own contexts, so no cookie or
    page is shared); tests and fixtures using it run on the module's event loop."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    async with chromium() as b:
        yield b
