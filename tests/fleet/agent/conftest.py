"""Fixtures for the agent's tests: short directories (a Unix socket path must fit in 107
bytes, and pytest's tmp_path often does not) and a small actions object standing in for the
touch UI behind the health endpoint."""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest
from PIL import Image


@pytest.fixture
def short_dir():
    path = Path(tempfile.mkdtemp(prefix="ka-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def png_bytes(width: int = 64, height: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(out, format="PNG")
    return out.getvalue()


class RecordingActions:
    """What the touch UI does, recorded: screen state and the calls the commands made."""

    def __init__(self) -> None:
        self.screen = "attract"
        self.calls: list[tuple] = []
        self.bundles: list[tuple[str, dict]] = []

    def screen_state(self) -> str:
        return self.screen

    def set_out_of_service(self, reason: str) -> None:
        self.calls.append(("out_of_service", reason))
        self.screen = "out_of_service"

    def set_in_service(self) -> None:
        self.calls.append(("in_service",))
        self.screen = "attract"

    async def reload_catalogue(self) -> None:
        self.calls.append(("reload_catalogue",))

    async def reload_config(self) -> None:
        self.calls.append(("reload_config",))

    async def screenshot(self) -> bytes:
        self.calls.append(("screenshot",))
        return png_bytes()


@pytest.fixture
def actions() -> RecordingActions:
    return RecordingActions()
