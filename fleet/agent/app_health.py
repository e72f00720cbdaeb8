"""The agent's side of the app's health endpoint (kiosk/health.py), over its Unix socket.

Everything the app answers is checked before use: a wrong answer counts as the app being
unwell, never as a reason for the agent to fail.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp

_log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 8 * 1024 * 1024  # a screenshot result is the largest
COMMAND_STATUSES = ("done", "failed", "rejected")


class AppUnreachable(Exception):
    """The app did not answer (not running, socket gone, timeout, or not a health answer)."""


class AppHealth:
    def __init__(self, socket_path: Path, *, timeout_s: float = 3.0) -> None:
        self.socket_path = Path(socket_path)
        self.timeout_s = timeout_s

    async def _request(
        self, method: str, path: str, body: dict | None, timeout_s: float
    ) -> tuple[int, Any]:
        connector = aiohttp.UnixConnector(path=str(self.socket_path))
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                async with session.request(method, f"http://kiosk-app{path}", json=body) as answer:
                    raw = await answer.content.read(MAX_ANSWER_BYTES + 1)
                    if len(raw) > MAX_ANSWER_BYTES:
                        raise AppUnreachable(f"{path}: answer larger than {MAX_ANSWER_BYTES} bytes")
                    try:
                        return answer.status, json.loads(raw)
                    except ValueError:
                        raise AppUnreachable(f"{path}: HTTP {answer.status}, not JSON") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise AppUnreachable(f"{path}: {type(exc).__name__}: {exc}") from None
        except TimeoutError:
            raise AppUnreachable(f"{path}: no answer within {timeout_s:.0f}s") from None

    async def snapshot(self) -> dict[str, Any]:
        status, data = await self._request("GET", "/health", None, self.timeout_s)
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("app"), dict):
            raise AppUnreachable(f"/health: HTTP {status}, not a health answer")
        return data

    async def command(
        self, name: str, args: dict[str, Any], *, timeout_s: float = 90.0
    ) -> dict[str, Any]:
        """{status, detail, data} as the app answered it; AppUnreachable otherwise."""
        _, data = await self._request("POST", f"/commands/{name}", args, timeout_s)
        if not isinstance(data, dict) or data.get("status") not in COMMAND_STATUSES:
            raise AppUnreachable(f"/commands/{name}: not a command outcome")
        detail = data.get("detail") if isinstance(data.get("detail"), str) else ""
        extra = data.get("data") if isinstance(data.get("data"), dict) else {}
        return {"status": data["status"], "detail": detail[:500], "data": extra}

    async def wait_until_up(self, timeout_s: float, *, poll_s: float = 0.1) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            try:
                await self.snapshot()
                return True
            except AppUnreachable:
                await asyncio.sleep(poll_s)
        return False
