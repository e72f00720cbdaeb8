"""The heartbeat path: verified heartbeats written in group commits.

A request hands its heartbeat to `HeartbeatIngest.submit` and waits. One writer task takes
everything queued, writes it in one transaction and commits (one fsync for the batch), then
answers every waiter: an acknowledgement still means "durably stored", but the cost of a
commit is shared by all heartbeats that arrived while the previous batch was being written.
Under light load a batch is one heartbeat and the latency is one commit; under heavy load
batches grow and throughput follows.

Per batch, in one transaction:
1. one executemany UPDATE of the kiosks' rows that is also the replay check: each row is
   written only `WHERE id = :id AND last_counter < :counter AND revoked_at IS NULL`, and
   stamps a random `batch_token`; the same statement copies the values it replaces into
   scratch columns (prev_state, prev_last_seq, prev_devices_digest) and decides in SQL
   whether the alert evaluator must look at the kiosk (conditions or state changed), so no
   read-before-write can race another process;
2. one SELECT by id and batch_token: the rows written (a kiosk missing replayed a counter or
   was revoked) with their before/after values;
3. history rows, device reports whose digest changed, usage/rating sums, events;
4. the pending commands of kiosks that have any.
A kiosk appears at most once per batch (a second heartbeat waits for the next one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter

from fleet.server import rules, states
from fleet.server.db import Database, upsert
from fleet.server.ops import event_row
from fleet.server.schema import (
    RATING_LEVELS,
    STATE_OFFLINE,
    commands,
    device_status,
    devices,
    events,
    heartbeats,
    sites,
    usage_daily,
)
from fleet.server.settings import ServerSettings
from fleet.wire import Command, DeviceReport, Heartbeat

logger = logging.getLogger("fleet.server.ingest")
DAY_OFFSET_S = 8 * 3600  # usage days are China Standard Time days


class IngestUnavailable(Exception):
    """The batch could not be written (database error, shutting down): answer 503."""


@dataclass(frozen=True)
class IngestOutcome:
    accepted: bool
    commands: list[Command] = field(default_factory=list)


@dataclass
class _Pending:
    device_id: str
    counter: int
    hb: Heartbeat
    received_at: float
    row: dict[str, Any]  # the parameters of the kiosk-row UPDATE
    future: asyncio.Future[IngestOutcome]


_DEVICES_JSON = TypeAdapter(list[DeviceReport])


def _device_row(device_id: str, counter: int, hb: Heartbeat, raw: str, received_at: float,
                conditions: list[rules.Condition]) -> dict[str, Any]:
    new_state = states.state_after_heartbeat(hb.kind)
    cond_text = rules.encode(conditions)
    late_after, offline_after = states.deadlines(received_at, hb.interval_s)
    health = rules.health_of(conditions)
    if new_state == STATE_OFFLINE and health == "ok":
        health = "info"
    pub = hb.versions.catalogue_published_at
    return {
        "b_id": device_id, "p_counter": counter, "p_state": new_state, "p_now": received_at,
        "p_cdig": rules.identity_digest(conditions),
        "last_seen": received_at, "late_after": late_after, "offline_after": offline_after,
        "interval_s": hb.interval_s, "offline_expected": hb.kind == "going_offline",
        "last_seq": hb.seq, "last_sent_at": hb.sent_at,
        "clock_skew_s": hb.sent_at - received_at, "clock_synced": hb.clock_synced,
        "app_state": hb.app.state, "screen": hb.app.screen,
        "app_version": hb.versions.app, "catalogue_version": hb.versions.catalogue,
        "catalogue_published_at": pub.timestamp() if pub else None,
        "config_version": hb.versions.config,
        "disk_free_bytes": hb.disk.free_bytes if hb.disk else None,
        "disk_total_bytes": hb.disk.total_bytes if hb.disk else None,
        "door_open": hb.cabinet.door_open, "tamper": hb.cabinet.tamper,
        "health": health, "last_heartbeat": raw,
        "devices_digest": rules.digest(_DEVICES_JSON.dump_json(hb.devices).decode()),
        "conditions": cond_text,
    }


def _row_update() -> sa.Update:
    """The kiosk-row UPDATE (executemany), replay check included; see the module docstring."""
    changed = sa.or_(devices.c.conditions_digest.is_distinct_from(sa.bindparam("p_cdig")),
                     devices.c.state != sa.bindparam("p_state"))
    plain = ("last_seen", "late_after", "offline_after", "interval_s", "offline_expected",
             "last_seq", "last_sent_at", "clock_skew_s", "clock_synced", "app_state", "screen",
             "app_version", "catalogue_version", "catalogue_published_at", "config_version",
             "disk_free_bytes", "disk_total_bytes", "door_open", "tamper", "health",
             "last_heartbeat", "devices_digest", "conditions")
    return (
        devices.update()
        .where(devices.c.id == sa.bindparam("b_id"),
               devices.c.last_counter < sa.bindparam("p_counter", type_=sa.BigInteger),
               devices.c.revoked_at.is_(None))
        .values(
            last_counter=sa.bindparam("p_counter", type_=sa.BigInteger),
            batch_token=sa.bindparam("p_token", type_=sa.BigInteger),
            prev_state=devices.c.state,
            prev_last_seq=devices.c.last_seq,
            prev_devices_digest=devices.c.devices_digest,
            state=sa.bindparam("p_state"),
            state_since=sa.case((devices.c.state == sa.bindparam("p_state"),
                                 devices.c.state_since),
                                else_=sa.bindparam("p_now", type_=sa.Double)),
            alert_dirty=sa.or_(devices.c.alert_dirty, changed),
            cond_version=devices.c.cond_version + sa.case((changed, 1), else_=0),
            conditions_digest=sa.bindparam("p_cdig"),
            **{k: sa.bindparam(k) for k in plain},
        )
    )


@dataclass
class IngestStats:
    accepted: int = 0
    refused: int = 0
    batches: int = 0
    batch_seconds: float = 0.0
    largest_batch: int = 0
    failures: int = 0


def usage_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at + DAY_OFFSET_S))


class HeartbeatIngest:
    def __init__(self, db: Database, settings: ServerSettings, clock: Callable[[], float]) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._regions: dict[str, str] = {}
        self._update = _row_update()
        self.stats = IngestStats()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fleet-heartbeat-writer")

    async def stop(self) -> None:
        self._closing = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        for p in self._queue:
            if not p.future.done():
                p.future.set_exception(IngestUnavailable("server shutting down"))
        self._queue.clear()

    async def submit(self, device_id: str, counter: int, hb: Heartbeat, raw: str,
                     received_at: float) -> IngestOutcome:
        if self._closing:
            raise IngestUnavailable("server shutting down")
        conditions = rules.heartbeat_conditions(hb, received_at, self._settings.rules)
        future: asyncio.Future[IngestOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(device_id, counter, hb, received_at,
                                    _device_row(device_id, counter, hb, raw, received_at,
                                                conditions), future))
        self._wake.set()
        return await future

    def _take(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        seen: set[str] = set()
        for p in self._queue:
            if p.device_id in seen or len(batch) >= self._settings.max_batch:
                rest.append(p)
            else:
                seen.add(p.device_id)
                batch.append(p)
        self._queue = rest
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._settings.batch_window_s > 0 and not self._closing:
                await asyncio.sleep(self._settings.batch_window_s)
            while self._queue:
                batch = self._take()
                started = time.perf_counter()
                try:
                    outcomes = await self._flush(batch)
                except Exception as exc:  # answer 503 to this batch; the next may succeed
                    self.stats.failures += 1
                    logger.error("heartbeat batch of %d failed: %s", len(batch), exc)
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(IngestUnavailable(str(exc)))
                    continue
                self.stats.batches += 1
                self.stats.batch_seconds += time.perf_counter() - started
                self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
                for p in batch:
                    outcome = outcomes.get(p.device_id, IngestOutcome(False))
                    if outcome.accepted:
                        self.stats.accepted += 1
                    else:
                        self.stats.refused += 1
                    if not p.future.done():
                        p.future.set_result(outcome)
            if self._closing:
                return

    def _region(self, conn: sa.Connection, site_ids: set[str]) -> dict[str, str]:
        missing = [s for s in site_ids if s not in self._regions]
        if missing:
            rows = conn.execute(sa.select(sites.c.id, sites.c.region)
                                .where(sites.c.id.in_(missing)))
            for sid, region in rows:
                self._regions[sid] = region
        return self._regions

    def forget_site(self, site_id: str) -> None:
        self._regions.pop(site_id, None)

    async def _flush(self, batch: list[_Pending]) -> dict[str, IngestOutcome]:
        now = self._clock()
        token = secrets.randbits(62)
        for p in batch:
            p.row["p_token"] = token
        # Rows in id order: two processes' batches (or a batch and the evaluator) lock kiosk
        # rows in the same order, which keeps PostgreSQL deadlocks rare; one that still
        # happens rolls the batch back whole, and it is tried once more.
        batch = sorted(batch, key=lambda p: p.device_id)
        for attempt in (1, 2):
            try:
                return await self._db.run_in_transaction(
                    lambda conn: self._write(conn, batch, token, now))
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or "deadlock" not in str(exc).lower():
                    raise
                logger.warning("heartbeat batch hit a deadlock; retrying once")
        raise AssertionError("unreachable")

    def _write(self, conn: sa.Connection, batch: list[_Pending], token: int,
               now: float) -> dict[str, IngestOutcome]:
        """The batch's transaction (runs in the SQLite writer thread, or under asyncpg)."""
        by_id = {p.device_id: p for p in batch}
        outcomes: dict[str, IngestOutcome] = {}
        conn.execute(self._update, [p.row for p in batch])
        accepted = (conn.execute(
            sa.select(devices.c.id, devices.c.site_id, devices.c.state, devices.c.prev_state,
                      devices.c.prev_last_seq, devices.c.devices_digest,
                      devices.c.prev_devices_digest, devices.c.pending_commands)
            .where(devices.c.id.in_(list(by_id)), devices.c.batch_token == token))).all()
        if not accepted:
            return outcomes
        history: list[dict[str, Any]] = []
        reports: list[dict[str, Any]] = []
        report_devices: dict[str, list[str]] = {}
        new_events: list[dict[str, Any]] = []
        usage: dict[tuple[str, str, str], dict[str, Any]] = {}
        with_commands: list[str] = []
        regions = self._region(conn, {row.site_id for row in accepted})
        for row in accepted:
            p = by_id[row.id]
            hb = p.hb
            repeat = row.prev_last_seq is not None and hb.seq == row.prev_last_seq
            if row.state != row.prev_state and row.prev_state in ("late", STATE_OFFLINE):
                new_events.append(event_row("online", p.received_at, row.id,
                                            previous=row.prev_state))
            if hb.kind == "going_offline" and not repeat:
                new_events.append(event_row("going_offline", p.received_at, row.id))
            if not repeat:
                for event in hb.events:  # maintenance sign-ins, refused ones with the reason
                    new_events.append(event_row(event.event, p.received_at, row.id,
                                                ok=event.ok, reason=event.reason,
                                                cred_id=event.cred_id, kiosk_at=event.at))
            if hb.kind == "summary" and hb.summary is not None and not repeat:
                new_events.append(event_row("offline_summary", p.received_at, row.id,
                                            **hb.summary.model_dump(mode="json")))
            if not repeat:
                history.append({
                    "device_id": row.id, "received_at": p.received_at, "sent_at": hb.sent_at,
                    "seq": hb.seq, "kind": hb.kind, "app_state": hb.app.state,
                    "screen": hb.app.screen, "health": p.row["health"],
                    "journeys_completed": hb.counters.journeys_completed,
                    "summary": hb.summary.model_dump_json() if hb.summary else None,
                })
                region = regions.get(row.site_id, "")
                day = usage_day(p.received_at)
                for u in hb.usage:
                    key = (day, row.site_id, u.item_id)
                    acc = usage.setdefault(key, {
                        "day": day, "site_id": row.site_id, "item_id": u.item_id,
                        "region": region, "completed": 0, "abandoned": 0, "failed": 0,
                        **{f"rating_{lv}": 0 for lv in RATING_LEVELS}})
                    acc["completed"] += u.completed
                    acc["abandoned"] += u.abandoned
                    acc["failed"] += u.failed
                    for level, n in u.ratings.items():
                        acc[f"rating_{level}"] += n
            if row.devices_digest != row.prev_devices_digest:
                report_devices[row.id] = [d.name for d in hb.devices]
                for d in hb.devices:
                    err = d.last_error
                    reports.append({
                        "device_id": row.id, "name": d.name, "device_class": d.device_class,
                        "lifecycle": d.lifecycle, "state": d.state,
                        "supplies": json.dumps(d.supplies, sort_keys=True),
                        "error_kind": err.kind if err else None,
                        "error_action": err.action if err else None,
                        "error_code": err.code if err else None,
                        "error_text": err.vendor_text if err else None,
                        "error_at": err.at if err else None,
                        "info": json.dumps(d.info, sort_keys=True, ensure_ascii=False),
                        "updated_at": p.received_at,
                    })
            if row.pending_commands:
                with_commands.append(row.id)
            outcomes[row.id] = IngestOutcome(True)

        if history:
            conn.execute(heartbeats.insert(), history)
        for device_id, names in report_devices.items():
            conn.execute(device_status.delete().where(
                device_status.c.device_id == device_id, device_status.c.name.not_in(names)))
        if reports:
            cols = [c for c in reports[0] if c not in ("device_id", "name")]
            conn.execute(
                upsert(self._db, device_status, ["device_id", "name"], replace=tuple(cols)),
                reports)
        if usage:
            counts = ("completed", "abandoned", "failed",
                      *(f"rating_{lv}" for lv in RATING_LEVELS))
            conn.execute(upsert(self._db, usage_daily, ["day", "site_id", "item_id"],
                                      add=counts), list(usage.values()))
        if new_events:
            conn.execute(events.insert(), new_events)
        if with_commands:
            found = (conn.execute(
                sa.select(commands).where(
                    commands.c.device_id.in_(with_commands),
                    commands.c.status.in_(("pending", "delivered")),
                    commands.c.expires_at > now)
                .order_by(commands.c.issued_at, commands.c.id))).all()
            pending = [c.id for c in found if c.status == "pending"]
            if pending:
                conn.execute(commands.update().where(
                    commands.c.id.in_(pending), commands.c.status == "pending")
                    .values(status="delivered", delivered_at=now))
            per_device: dict[str, list[Command]] = {}
            for c in found:
                per_device.setdefault(c.device_id, []).append(Command(
                    id=c.id, name=c.name, args=json.loads(c.args),
                    issued_at=c.issued_at, expires_at=c.expires_at))
            for device_id, cmds in per_device.items():
                outcomes[device_id] = IngestOutcome(True, cmds)
        return outcomes
