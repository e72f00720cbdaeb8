"""Runs the commands the fleet server hands back with a heartbeat, one at a time, and keeps
each result until the server has it.

restart_app is the agent's own job (the app cannot restart itself once hung or dead); the
other known commands go to the app's health endpoint; an expired command is not run; a name
the agent does not know is rejected. Each command id runs at most once, even when the
server hands it out again before it has our result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from fleet import wire
from fleet.agent.app_health import AppHealth, AppUnreachable
from fleet.agent.server_client import FleetClient, Refused, ServerError
from fleet.agent.store import AgentStore
from fleet.agent.supervisor import AppSupervisor

_log = logging.getLogger(__name__)

APP_COMMANDS = frozenset(
    {"out_of_service", "in_service", "reload_catalogue", "reload_config", "screenshot",
     "selftest", "apply_bundle"}
)
RESTART_UP_WITHIN_S = 60.0
RESTART_COMMAND_TIMEOUT_S = 60.0
MAX_QUEUED = 50
_SILENT = f"the app is not answering after {RESTART_UP_WITHIN_S:.0f} s"


class CommandRunner:
    def __init__(
        self,
        store: AgentStore,
        client: FleetClient,
        health: AppHealth,
        *,
        supervisor: AppSupervisor | None = None,
        restart_command: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.health = health
        self.supervisor = supervisor
        self.restart_command = tuple(restart_command)
        self.clock = clock
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUED)
        self._queued: set[str] = set()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="fleet-commands")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def submit(self, command: dict[str, Any]) -> None:
        """A command from an ack, as the server sent it (validated here, not before, so one
        bad command never hides the others)."""
        command_id = command.get("id") if isinstance(command, dict) else None
        if not isinstance(command_id, str) or command_id in self._queued:
            return
        if self.store.command_seen(command_id):
            return  # already run: its result is posted or waiting to be
        if self._queue.full():
            _log.warning(
                "command %s left for later: %d commands already queued", command_id, MAX_QUEUED
            )
            return
        self._queued.add(command_id)
        self._queue.put_nowait(command)

    async def idle(self) -> None:
        """Wait until every queued command has run (tests, and the agent's shutdown)."""
        await self._queue.join()

    async def _work(self) -> None:
        while True:
            raw = await self._queue.get()
            try:
                await self._run_one(raw)
            except Exception:
                _log.exception("command %s: unexpected failure", raw.get("id"))
            finally:
                self._queued.discard(raw.get("id"))
                self._queue.task_done()

    async def _run_one(self, raw: dict[str, Any]) -> None:
        command_id = raw["id"]
        try:
            command = wire.Command.model_validate(raw)
        except Exception as exc:
            name = raw.get("name")
            shown = name if isinstance(name, str) and len(name) <= 40 else "?"
            _log.warning("command %s (%s) rejected: not a valid command", command_id, shown)
            await self._finish(command_id, "rejected", f"unknown or malformed command {shown!r}")
            return
        started = time.perf_counter()
        if command.expires_at < self.clock():
            status, detail, data = "expired", "expired before the kiosk received it", {}
        elif command.name == "restart_app":
            status, detail, data = await self._restart_app()
        elif command.name in APP_COMMANDS:
            try:
                outcome = await self.health.command(command.name, command.args)
                status, detail, data = outcome["status"], outcome["detail"], outcome["data"]
            except AppUnreachable as exc:
                status, detail, data = "failed", f"the app is not answering ({exc})", {}
        else:
            status, detail, data = "rejected", f"unknown command {command.name!r}", {}
        _log.info(
            "command %s %s → %s in %.0f ms", command_id, command.name, status,
            (time.perf_counter() - started) * 1000,
        )
        await self._finish(command_id, status, detail, data)

    async def _finish(
        self, command_id: str, status: str, detail: str, data: dict | None = None
    ) -> None:
        result = wire.CommandResult(
            command_id=command_id, status=status, detail=detail[:500], data=data or {},
            finished_at=self.clock(),
        )
        body = result.model_dump_json()
        if len(body) > wire.MAX_COMMAND_RESULT_BYTES:
            result = wire.CommandResult(
                command_id=command_id, status="failed",
                detail=f"result too large ({len(body)} bytes)", finished_at=self.clock(),
            )
            body = result.model_dump_json()
        self.store.save_result(command_id, body)
        await self.post_pending()

    async def post_pending(self) -> None:
        """Send the results the server does not have yet (oldest first); stop at the first
        that cannot be sent, to try again after the next heartbeat."""
        for command_id, body in self.store.unposted_results():
            try:
                await self.client.post_result(body, command_id)
            except Refused as exc:
                # Unknown or foreign command, or already answered: nothing more to do.
                _log.warning("result of command %s refused: %s", command_id, exc)
            except ServerError as exc:
                _log.info("result of command %s not sent yet: %s", command_id, exc)
                return
            self.store.mark_posted(command_id)

    async def _restart_app(self) -> tuple[str, str, dict]:
        started = time.monotonic()
        if self.supervisor is not None:
            try:
                pid = await self.supervisor.restart()
            except TimeoutError as exc:
                return "failed", str(exc), {}
            if await self.health.wait_until_up(RESTART_UP_WITHIN_S):
                took = time.monotonic() - started
                return "done", f"app restarted (pid {pid}), answering after {took:.1f} s", {}
            return "failed", f"app restarted (pid {pid}) but {_SILENT}", {}
        if not self.restart_command:
            return "rejected", "no restart command configured", {}
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.restart_command,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return "failed", f"cannot run {self.restart_command[0]}: {exc.strerror}", {}
        try:
            _, err = await asyncio.wait_for(proc.communicate(), RESTART_COMMAND_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            limit = RESTART_COMMAND_TIMEOUT_S
            return "failed", f"{self.restart_command[0]} took longer than {limit:.0f} s", {}
        if proc.returncode != 0:
            tail = err.decode("utf-8", "replace").strip()[-300:]
            return "failed", f"{self.restart_command[0]} exited {proc.returncode}: {tail}", {}
        if await self.health.wait_until_up(RESTART_UP_WITHIN_S):
            return "done", f"app restarted, answering after {time.monotonic() - started:.1f} s", {}
        return "failed", f"restart ran but {_SILENT}", {}
