"""The agent's heartbeat loop: observe the app and the machine, send, act on the answer.

Each heartbeat is first written to the store as "pending" (with the usage totals it covers),
then sent. Acknowledged → those totals become the new baseline. Certainly not delivered
(no connection, or refused) → it joins the offline buffer and the next heartbeat carries its
usage again. Maybe delivered (timeout, 5xx) → it is sent again, byte for byte (same `seq`, so
the server counts it once), before anything newer. After an offline period the first
heartbeat that goes out is one `summary` of the buffered period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kiosk
from fleet.agent import system
from fleet.agent.app_health import AppHealth, AppUnreachable
from fleet.agent.commands import CommandRunner
from fleet.agent.report import build_heartbeat
from fleet.agent.server_client import AckEnvelope, FleetClient, NotDelivered, Refused, ServerError
from fleet.agent.settings import AgentSettings
from fleet.agent.store import AgentStore
from fleet.agent.supervisor import AppExit, AppSupervisor
from fleet.agent.usage import clean_items, usage_delta

_log = logging.getLogger(__name__)

STORE_FILE = "agent.sqlite3"
COUNTER_FILE = "request.counter"
REVOKED_FILE = "revoked_credentials.json"  # read by the app's maintenance gate
DEFAULT_INTERVAL_S = 30.0
# A supervised app that runs but does not answer yet is "starting" for this long, then "down".
STARTING_GRACE_S = 60.0
_COUNTERS_KEYS = (
    "journeys_started", "journeys_completed", "journeys_abandoned", "journeys_failed",
    "receipts_printed", "a4_pages_printed", "submissions_queued",
)


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        client: FleetClient,
        store: AgentStore,
        health: AppHealth,
        supervisor: AppSupervisor | None = None,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.health = health
        self.supervisor = supervisor
        self.clock = clock
        self.interval_s = settings.interval_s or interval_s or DEFAULT_INTERVAL_S
        self.commands = CommandRunner(
            store, client, health, supervisor=supervisor,
            restart_command=settings.restart_command, clock=clock,
        )
        self._wake = asyncio.Event()
        self._server_ok: bool | None = None
        self._app_up: bool | None = None
        self._revoked: list[str] | None = None
        self.sent = 0  # heartbeats acknowledged in this run (tests, logs)

    # -- running ---------------------------------------------------------------------------
    def app_exited(self, event: AppExit) -> None:
        """The supervisor saw the app die: report it now, not at the next interval."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeats until `stop` is set, then one "going_offline"."""
        self.commands.start()
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                started = loop.time()
                self._wake.clear()  # a crash seen during the tick wakes the next one early
                await self._tick_unless(stop)
                wait = max(0.0, self.interval_s - (loop.time() - started))
                stopping = asyncio.create_task(stop.wait())
                woken = asyncio.create_task(self._wake.wait())
                await asyncio.wait(
                    {stopping, woken}, timeout=wait, return_when=asyncio.FIRST_COMPLETED
                )
                stopping.cancel()
                woken.cancel()
        finally:
            await self.commands.stop()
        await self.going_offline()

    async def _tick_unless(self, stop: asyncio.Event) -> None:
        """One tick, abandoned if the agent is told to stop (retries against an unreachable
        server can take most of an interval). Abandoning is safe: the heartbeat was stored
        as pending before it was sent, and goes first next time."""
        tick = asyncio.create_task(self.tick())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({tick, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not tick.done():
            tick.cancel()
        try:
            await tick
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        except Exception:  # the loop must outlive any single bad tick
            _log.exception("heartbeat failed unexpectedly")

    async def tick(self, kind: str = "heartbeat") -> bool:
        """One heartbeat (after the results still owed); True when the server took it."""
        await self.commands.post_pending()
        observed = await self._observe()
        pending = self.store.pending()
        if pending is not None:  # may have reached the server: it goes first, unchanged
            if not await self._send_pending(pending, fresh=False, attempts=2):
                self._buffer(self._build(observed, kind))  # the observation still counts
                return False
        summary = self.store.offline_summary(self.clock()) if kind == "heartbeat" else None
        heartbeat, covered = self._build(observed, "summary" if summary else kind, summary)
        pending = self._stage(heartbeat, covered)
        if await self._send_pending(pending, fresh=True, attempts=3):
            return True
        self._buffer((heartbeat, covered))
        return False

    async def going_offline(self) -> bool:
        """A clean shutdown says so, with a short timeout and no retry. A heartbeat that may
        have reached the server goes first (nothing may overtake it, or its usage could be
        counted twice); if that fails the server is not told."""
        pending = self.store.pending()
        if pending is not None and not await self._send_pending(
            pending, fresh=False, attempts=1, act=False,
            timeout_s=self.settings.going_offline_timeout_s,
        ):
            _log.info("going offline: the server could not be told")
            return False
        observed = await self._observe()
        heartbeat, covered = self._build(observed, "going_offline")
        pending = self._stage(heartbeat, covered)
        ok = await self._send_pending(
            pending, fresh=True, attempts=1, act=False,
            timeout_s=self.settings.going_offline_timeout_s,
        )
        _log.info("going offline: %s", "the server knows" if ok else "the server could not be told")
        return ok

    def _stage(self, heartbeat, covered):
        return self.store.set_pending(
            heartbeat.seq, heartbeat.kind, heartbeat.model_dump_json(), covered
        )

    # -- observing -------------------------------------------------------------------------
    async def _observe(self) -> dict[str, Any]:
        snapshot: dict[str, Any] | None = None
        reason = ""
        if self.supervisor is not None and not self.supervisor.running:
            last_exit = self.supervisor.last_exit
            reason = last_exit.describe() if last_exit else "not running"
        else:
            try:
                snapshot = await self.health.snapshot()
            except AppUnreachable as exc:
                reason = str(exc)
        now = self.clock()
        starting = (
            snapshot is None
            and self.supervisor is not None
            and 0 < self.supervisor.up_for_s < STARTING_GRACE_S
        )
        if starting:
            totals = self.store.last_totals() or {}
        elif snapshot is None:
            down_since = self.store.down_since()
            if down_since is None:
                down_since = now
                self.store.set_down_since(now)
            if self._app_up is not False:
                _log.warning("app down: %s", reason)
            self._app_up = False
            totals = self.store.last_totals() or {}
        else:
            if self.store.down_since() is not None:
                self.store.set_down_since(None)
            if self._app_up is False:
                _log.info("app answering again")
            self._app_up = True
            raw = _dict(snapshot.get("totals"))
            counters = _dict(raw.get("counters"))
            totals = {
                "counters": {
                    k: counters[k] for k in _COUNTERS_KEYS if isinstance(counters.get(k), int)
                },
                "items": clean_items(raw.get("items")),
                "versions": _dict(snapshot.get("versions")) or None,
            }
            if totals != self.store.last_totals():
                self.store.set_last_totals(totals)
        return {
            "snapshot": snapshot, "totals": totals, "down_since": self.store.down_since(),
            "at": now, "starting": starting,
        }

    def _build(self, observed: dict[str, Any], kind: str, summary: dict | None = None):
        totals = observed["totals"]
        usage, covered = usage_delta(totals.get("items", {}), self.store.acked_items())
        heartbeat = build_heartbeat(
            seq=self.store.next_seq(),
            kind=kind,
            sent_at=observed["at"],
            interval_s=self.interval_s,
            snapshot=observed["snapshot"],
            down_since=observed["down_since"],
            counters=totals.get("counters"),
            usage=usage,
            disk=system.disk_usage(self.settings.data_dir.resolve()),
            system_uptime_s=system.system_uptime_s(),
            clock_synced=system.clock_synced(),
            summary=summary,
            last_versions=totals.get("versions"),
            app_version=kiosk.__version__,
            starting=observed["starting"],
        )
        return heartbeat, covered

    def _buffer(self, built) -> None:
        heartbeat, _ = built
        dropped = self.store.buffer_add(
            heartbeat.sent_at,
            heartbeat.model_dump_json(),
            max_rows=self.settings.buffer_rows(self.interval_s),
            max_age_s=self.settings.buffer_hours * 3600,
        )
        if dropped:
            _log.warning("offline buffer full: %d oldest heartbeat(s) dropped (counted)", dropped)

    # -- sending ---------------------------------------------------------------------------
    async def _send_pending(self, pending, *, fresh: bool, attempts: int,
                            timeout_s: float | None = None, act: bool = True) -> bool:
        """`fresh`: never sent before this call, so "no connection" means the server
        certainly does not have it and it can be dropped (its usage goes out later)."""
        try:
            ack = await self.client.heartbeat(
                pending.body.encode("utf-8"),
                attempts=attempts,
                timeout_s=timeout_s,
                deadline_s=max(1.0, self.interval_s * 0.8) if timeout_s is None else timeout_s,
            )
        except Refused as exc:
            # The server stored nothing, and the same bytes would be refused again.
            _log.error("heartbeat %d refused: %s", pending.seq, exc)
            self.store.discard_pending()
            self._server_unreachable(exc)
            return False
        except NotDelivered as exc:
            if fresh:
                self.store.discard_pending()
            self._server_unreachable(exc)
            return False
        except ServerError as exc:  # may be stored: keep it, to send again unchanged
            self._server_unreachable(exc)
            return False
        self.store.acknowledged()
        self.sent += 1
        if self._server_ok is not True:
            _log.info("fleet server reached (heartbeat %d, %s)", pending.seq, pending.kind)
        self._server_ok = True
        if act:
            self._act_on(ack)
        return True

    def _server_unreachable(self, exc: ServerError) -> None:
        if self._server_ok is not False:
            _log.warning("fleet server not reached: %s; buffering heartbeats", exc)
        else:
            _log.debug("fleet server still not reached: %s", exc)
        self._server_ok = False

    def _act_on(self, ack: AckEnvelope) -> None:
        if self.settings.interval_s is None and 5 <= ack.interval_s <= 3600:
            self.interval_s = float(ack.interval_s)
        self._keep_revoked(ack.revoked_credentials)
        for command in ack.commands:
            self.commands.submit(command)

    def _keep_revoked(self, ids: list[str]) -> None:
        ids = sorted(set(ids))
        if ids == self._revoked:
            return
        path = self.settings.state_dir / REVOKED_FILE
        body = json.dumps({"revoked": ids, "updated_at": self.clock()}).encode("utf-8")
        _write_atomic(path, body, mode=0o640)
        self._revoked = ids
        _log.info("revoked maintenance credentials: %d on record", len(ids))


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_revoked(state_dir: Path) -> list[str]:
    """The ids the app's maintenance gate must refuse ([] when none are on record)."""
    try:
        data = json.loads((Path(state_dir) / REVOKED_FILE).read_text("utf-8"))
        return [i for i in data.get("revoked", []) if isinstance(i, str)]
    except (OSError, ValueError, AttributeError):
        return []
