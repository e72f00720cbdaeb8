"""The alert evaluator: moves silent kiosks to late/offline and keeps alerts in step with
the conditions kiosks report. One evaluator runs at a time across all server processes.

Leadership: on PostgreSQL a process becomes the evaluator by taking a session-level advisory
lock (`pg_try_advisory_lock`) on a connection it keeps open; if the process or its connection
dies, PostgreSQL releases the lock and another process takes over on its next try. On SQLite
the server runs on one machine (usually one process, which is then always the leader; with
`serve --workers N` several), and the same role is played by an exclusive `flock` on a file
beside the database, which the kernel releases when the holder dies.

Each pass (every `evaluate_every_s`):
1. kiosks whose offline/late deadline passed change state (set-based UPDATEs);
2. kiosks marked `alert_dirty` (new conditions from a heartbeat, or a state change) get their
   open alerts reconciled: open what is new, refresh what persists, resolve what cleared —
   at most one open alert per (kiosk, rule, subject); the flag is cleared only if no newer
   heartbeat changed the conditions meanwhile (`cond_version`);
3. undelivered or unanswered commands past their expiry are marked expired;
4. once a minute, old history rows are pruned.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from fleet.server import rules
from fleet.server.db import Database
from fleet.server.ops import event_row
from fleet.server.schema import (
    STATE_LATE,
    STATE_OFFLINE,
    STATE_ONLINE,
    alerts,
    commands,
    devices,
    events,
    heartbeats,
)
from fleet.server.settings import ServerSettings

logger = logging.getLogger("fleet.server.evaluator")
ADVISORY_LOCK_KEY = 0x4B696F736B466C74  # "KioskFlt"
DIRTY_BATCH = 500
MAX_DIRTY_BATCHES_PER_PASS = 40
PRUNE_EVERY_S = 60.0
PRUNE_CHUNK = 5000
PRUNE_MAX_CHUNKS = 200  # per table and pass; the rest goes at the next pass


def dedupe_key(device_id: str, c: rules.Condition) -> str:
    return f"{device_id}|{c.rule}|{c.subject}"


class Leadership:
    """Am I the one evaluator? While I hold the lock (PostgreSQL advisory lock, or a file
    lock beside the SQLite database)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: AsyncConnection | None = None
        self._fd: int | None = None

    @property
    def is_leader(self) -> bool:
        return self._conn is not None or self._fd is not None

    def _file_lock(self) -> bool:
        if self._fd is not None:
            return True
        database = self._db.engine.url.database or ""
        if database in ("", ":memory:"):
            return True  # a private in-memory database: nobody else to elect
        fd = os.open(database + ".evaluator.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def acquire(self) -> bool:
        if self._db.is_sqlite:
            return self._file_lock()
        if self._conn is not None:
            try:  # still holding it? (a dropped connection released the lock)
                await self._conn.execute(sa.text("SELECT 1"))
                return True
            except Exception:
                await self.release()
        conn = await self._db.engine.connect()
        try:
            got = await conn.scalar(sa.text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": ADVISORY_LOCK_KEY})
            await conn.commit()
        except Exception:
            await conn.close()
            raise
        if got:
            self._conn = conn
            logger.info("this process is now the alert evaluator")
            return True
        await conn.close()
        return False

    async def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"),
                                   {"k": ADVISORY_LOCK_KEY})
                await conn.commit()
            except Exception:
                pass
            finally:
                await conn.close()


@dataclass
class PassReport:
    went_late: int = 0
    went_offline: int = 0
    opened: int = 0
    resolved: int = 0
    expired_commands: int = 0


class AlertEvaluator:
    def __init__(self, db: Database, settings: ServerSettings,
                 clock: Callable[[], float]) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self.leadership = Leadership(db)
        self._last_prune = 0.0
        self._task: asyncio.Task[None] | None = None
        self.passes = 0
        self.last_pass_seconds = 0.0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fleet-alert-evaluator")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        await self.leadership.release()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                if await self.leadership.acquire():
                    started = loop.time()
                    await self.run_once()
                    self.passes += 1
                    self.last_pass_seconds = loop.time() - started
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.error("alert evaluation failed: %s", exc)
            await asyncio.sleep(self._settings.evaluate_every_s)

    async def run_once(self, now: float | None = None) -> PassReport:
        """One evaluation pass (callers other than the loop must be the leader, or tests)."""
        now = self._clock() if now is None else now
        report = PassReport()
        async with self._db.engine.begin() as conn:
            offline = (await conn.execute(
                devices.update()
                .where(devices.c.state.in_((STATE_ONLINE, STATE_LATE)),
                       devices.c.offline_after <= now, devices.c.revoked_at.is_(None))
                .values(state=STATE_OFFLINE, state_since=now, offline_expected=False,
                        health="critical", alert_dirty=True,
                        cond_version=devices.c.cond_version + 1)
                .returning(devices.c.id, devices.c.last_seen))).all()
            late = (await conn.execute(
                devices.update()
                .where(devices.c.state == STATE_ONLINE, devices.c.late_after <= now,
                       devices.c.revoked_at.is_(None))
                .values(state=STATE_LATE, state_since=now)
                .returning(devices.c.id, devices.c.last_seen))).all()
            rows = [event_row("offline", now, r.id, last_seen=r.last_seen) for r in offline]
            rows += [event_row("late", now, r.id, last_seen=r.last_seen) for r in late]
            if rows:
                await conn.execute(events.insert(), rows)
            report.went_offline, report.went_late = len(offline), len(late)
        for _ in range(MAX_DIRTY_BATCHES_PER_PASS):  # the rest waits for the next pass
            opened, resolved, more = await self._reconcile(now)
            report.opened += opened
            report.resolved += resolved
            if not more:
                break
        report.expired_commands = await self._expire_commands(now)
        if now - self._last_prune >= PRUNE_EVERY_S:
            self._last_prune = now
            await self._prune(now)
        return report

    async def _reconcile(self, now: float) -> tuple[int, int, bool]:
        async with self._db.engine.begin() as conn:
            dirty = (await conn.execute(
                sa.select(devices.c.id, devices.c.state, devices.c.offline_expected,
                          devices.c.conditions, devices.c.cond_version, devices.c.revoked_at)
                .where(devices.c.alert_dirty).limit(DIRTY_BATCH))).all()
            if not dirty:
                return 0, 0, False
            ids = [d.id for d in dirty]
            open_rows = (await conn.execute(
                sa.select(alerts.c.id, alerts.c.device_id, alerts.c.dedupe_key)
                .where(alerts.c.device_id.in_(ids), alerts.c.resolved_at.is_(None)))).all()
            open_by_key = {r.dedupe_key: r for r in open_rows}
            inserts: list[dict[str, Any]] = []
            refresh: list[dict[str, Any]] = []
            resolve: list[int] = []
            new_events: list[dict[str, Any]] = []
            wanted_keys: set[str] = set()
            for d in dirty:
                desired: list[rules.Condition] = []
                if d.revoked_at is None:
                    desired = rules.decode(d.conditions)
                    if d.state == STATE_OFFLINE:
                        desired.append(rules.offline_condition(bool(d.offline_expected)))
                for c in desired:
                    key = dedupe_key(d.id, c)
                    if key in wanted_keys:
                        continue
                    wanted_keys.add(key)
                    existing = open_by_key.get(key)
                    if existing is None:
                        inserts.append({
                            "dedupe_key": key, "device_id": d.id, "rule": c.rule,
                            "subject": c.subject, "severity": c.severity, "actor": c.actor,
                            "message": c.message, "first_seen": now, "last_seen": now})
                        new_events.append(event_row("alert_opened", now, d.id, rule=c.rule,
                                                    subject=c.subject, severity=c.severity))
                    else:
                        refresh.append({"b_id": existing.id, "severity": c.severity,
                                        "actor": c.actor, "message": c.message,
                                        "last_seen": now})
            for r in open_rows:
                if r.dedupe_key not in wanted_keys:
                    resolve.append(r.id)
                    rule = r.dedupe_key.split("|")[1]
                    new_events.append(event_row("alert_resolved", now, r.device_id,
                                                alert_id=r.id, rule=rule))
            if inserts:
                await conn.execute(alerts.insert(), inserts)
            if refresh:
                await conn.execute(alerts.update().where(alerts.c.id == sa.bindparam("b_id")),
                                   refresh)
            if resolve:
                await conn.execute(alerts.update().where(alerts.c.id.in_(resolve))
                                   .values(resolved_at=now))
            if new_events:
                await conn.execute(events.insert(), new_events)
            await conn.execute(
                devices.update().where(devices.c.id == sa.bindparam("b_id"),
                                       devices.c.cond_version == sa.bindparam("b_v"))
                .values(alert_dirty=False),
                [{"b_id": d.id, "b_v": d.cond_version} for d in dirty])
        return len(inserts), len(resolve), len(dirty) == DIRTY_BATCH

    async def _expire_commands(self, now: float) -> int:
        async with self._db.engine.begin() as conn:
            expired = (await conn.execute(
                commands.update()
                .where(commands.c.status.in_(("pending", "delivered")),
                       commands.c.expires_at <= now)
                .values(status="expired", detail="expired before the kiosk answered")
                .returning(commands.c.id, commands.c.device_id))).all()
            for device_id in {r.device_id for r in expired}:
                await refresh_pending_commands(conn, device_id)
            if expired:
                await conn.execute(events.insert(), [
                    event_row("command_expired", now, r.device_id, command_id=r.id)
                    for r in expired])
        return len(expired)

    async def _prune(self, now: float) -> None:
        """Delete old history in chunks, one short transaction each, so the heartbeat
        writer never waits behind one long DELETE (at 5,000 heartbeats/s a minute is
        300,000 rows)."""
        s = self._settings
        for table, time_col, cutoff in (
            (heartbeats, heartbeats.c.received_at, now - s.heartbeat_retention_s),
            (events, events.c.at, now - s.event_retention_s),
            (alerts, alerts.c.resolved_at, now - s.resolved_alert_retention_s),
        ):
            for _ in range(PRUNE_MAX_CHUNKS):
                old = (sa.select(table.c.id).where(time_col < cutoff).order_by(table.c.id)
                       .limit(PRUNE_CHUNK).scalar_subquery())
                async with self._db.engine.begin() as conn:
                    deleted = (await conn.execute(table.delete().where(table.c.id.in_(old))
                                                  )).rowcount
                if deleted < PRUNE_CHUNK:
                    break
                await asyncio.sleep(0)


async def refresh_pending_commands(conn: AsyncConnection, device_id: str) -> None:
    """Recount a kiosk's undelivered/unanswered commands (the heartbeat path reads it)."""
    count = (sa.select(sa.func.count()).select_from(commands)
             .where(commands.c.device_id == device_id,
                    commands.c.status.in_(("pending", "delivered")))
             .scalar_subquery())
    await conn.execute(devices.update().where(devices.c.id == device_id)
                       .values(pending_commands=count))
