"""The heartbeat path: verified heartbeats written in group commits.

A request reduces its verified heartbeat to a plain item (`heartbeat_item`) and waits for it
to be stored. A `Batcher` takes everything queued, writes it in one transaction
(`BatchWriter.write`) and commits (one fsync for the batch), then answers every waiter: an
acknowledgement still means "durably stored", but the cost of a commit is shared by all
heartbeats that arrived while the previous batch was being written. Under light load a batch
is one heartbeat and the latency is one commit; under heavy load batches grow and throughput
follows. The batcher runs in the server process (`HeartbeatIngest`: PostgreSQL, or SQLite
with one process) or, for `serve --workers N` on SQLite, in the writer process that all
request processes send their items to (writer.py, writer_link.py).

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
from typing import Any, Protocol

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


HeartbeatItem = dict[str, Any]
"""One verified heartbeat reduced to what its transaction needs, as plain JSON-able data (so
it can cross to the writer process, writer.py): device_id, counter, received_at, seq, kind,
row (the kiosk-row UPDATE's parameters, with the heartbeat as received, from which the device
reports are read when their digest changed), history (its history row but the id), events
(the kiosk's own events), summary (dict or None) and usage (item deltas)."""

Outcomes = dict[str, list[dict[str, Any]]]
"""What a batch's transaction answers: for each accepted kiosk, the commands to deliver
(JSON-able dicts of the wire `Command`); a kiosk missing from it was refused."""


@dataclass
class _Pending:
    item: HeartbeatItem
    future: asyncio.Future[list[dict[str, Any]] | None]

    @property
    def device_id(self) -> str:
        return self.item["device_id"]


_DEVICES_JSON = TypeAdapter(list[DeviceReport])


def heartbeat_item(device_id: str, counter: int, hb: Heartbeat, raw: str, received_at: float,
                   settings: rules.RuleSettings) -> HeartbeatItem:
    """Everything the batch needs from one verified heartbeat (runs in the request's process)."""
    conditions = rules.heartbeat_conditions(hb, received_at, settings)
    devices_json = _DEVICES_JSON.dump_json(hb.devices).decode()
    row = _device_row(device_id, counter, hb, raw, received_at, conditions, devices_json)
    return {
        "device_id": device_id, "counter": counter, "received_at": received_at,
        "seq": hb.seq, "kind": hb.kind, "row": row,
        "history": {"received_at": received_at, "sent_at": hb.sent_at, "seq": hb.seq,
                    "kind": hb.kind, "app_state": hb.app.state, "screen": hb.app.screen,
                    "health": row["health"],
                    "journeys_completed": hb.counters.journeys_completed,
                    "summary": hb.summary.model_dump_json() if hb.summary else None},
        "events": [e.model_dump(mode="json") for e in hb.events],
        "summary": hb.summary.model_dump(mode="json") if hb.summary else None,
        "usage": [u.model_dump(mode="json") for u in hb.usage],
    }


def _device_row(device_id: str, counter: int, hb: Heartbeat, raw: str, received_at: float,
                conditions: list[rules.Condition], devices_json: str) -> dict[str, Any]:
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
        "devices_digest": rules.digest(devices_json),
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


def outcome_of(commands_json: list[dict[str, Any]] | None) -> IngestOutcome:
    if commands_json is None:
        return IngestOutcome(False)
    return IngestOutcome(True, [Command.model_validate(c) for c in commands_json])


_HISTORY_COLUMNS = ("device_id", "received_at", "sent_at", "seq", "kind", "app_state", "screen",
                    "health", "journeys_completed", "summary")


class _DriverStatement:
    """A per-heartbeat executemany statement compiled once to the driver's SQL (SQLite).
    SQLAlchemy's per-row parameter processing cost twice SQLite's own work on these rows
    (25 us against 12 us per heartbeat); the values are plain numbers, text, booleans and
    None, which the sqlite3 driver binds as they are."""

    def __init__(self, statement: Any, dialect: sa.Dialect,
                 column_keys: tuple[str, ...] | None = None) -> None:
        compiled = statement.compile(dialect=dialect,
                                     column_keys=list(column_keys) if column_keys else None)
        self.sql = compiled.string
        binds = [compiled.binds[name] for name in compiled.positiontup or ()]
        # (name, taken from the row?, constant): literal values in the statement (the CASE's
        # 1 and 0) are constants; every other parameter comes from the row.
        self._slots = [(b.key, b.required or (b.value is None and b.callable is None), b.value)
                       for b in binds]

    def execute(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        values = [tuple(row[name] if from_row else const
                        for name, from_row, const in self._slots) for row in rows]
        conn.exec_driver_sql(self.sql, values)


class BatchWriter:
    """One batch's transaction (see the module docstring), on a synchronous connection: in the
    SQLite writer thread or process, or under asyncpg through the greenlet bridge."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._update = _row_update()
        self._regions: dict[str, str] = {}
        self._driver_update: _DriverStatement | None = None
        self._driver_history: _DriverStatement | None = None
        if db.is_sqlite:
            dialect = db.engine.sync_engine.dialect
            self._driver_update = _DriverStatement(self._update, dialect)
            self._driver_history = _DriverStatement(heartbeats.insert(), dialect,
                                                    _HISTORY_COLUMNS)

    def forget_site(self, site_id: str) -> None:
        self._regions.pop(site_id, None)

    def _region(self, conn: sa.Connection, site_ids: set[str]) -> dict[str, str]:
        missing = [s for s in site_ids if s not in self._regions]
        if missing:
            rows = conn.execute(sa.select(sites.c.id, sites.c.region)
                                .where(sites.c.id.in_(missing)))
            for sid, region in rows:
                self._regions[sid] = region
        return self._regions

    def write(self, conn: sa.Connection, batch: list[HeartbeatItem], token: int,
              now: float) -> Outcomes:
        by_id = {it["device_id"]: it for it in batch}
        outcomes: Outcomes = {}
        rows = [it["row"] for it in batch]
        for row in rows:
            row["p_token"] = token
        if self._driver_update is not None:
            self._driver_update.execute(conn, rows)
        else:
            conn.execute(self._update, rows)
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
            it = by_id[row.id]
            at = it["received_at"]
            repeat = row.prev_last_seq is not None and it["seq"] == row.prev_last_seq
            if row.state != row.prev_state and row.prev_state in ("late", STATE_OFFLINE):
                new_events.append(event_row("online", at, row.id, previous=row.prev_state))
            if not repeat:
                if it["kind"] == "going_offline":
                    new_events.append(event_row("going_offline", at, row.id))
                for event in it["events"]:  # maintenance sign-ins, refused ones with the reason
                    new_events.append(event_row(event["event"], at, row.id,
                                                ok=event["ok"], reason=event["reason"],
                                                cred_id=event["cred_id"],
                                                kiosk_at=event["at"]))
                if it["kind"] == "summary" and it["summary"] is not None:
                    new_events.append(event_row("offline_summary", at, row.id, **it["summary"]))
                history.append({"device_id": row.id, **it["history"]})
                self._add_usage(usage, it, row.site_id, regions.get(row.site_id, ""))
            if row.devices_digest != row.prev_devices_digest:
                reported = _reported_devices(it["row"]["last_heartbeat"])
                report_devices[row.id] = [d["name"] for d in reported]
                reports += [_report_row(row.id, d, at) for d in reported]
            if row.pending_commands:
                with_commands.append(row.id)
            outcomes[row.id] = []

        if history and self._driver_history is not None:
            self._driver_history.execute(conn, history)
        elif history:
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
            self._deliver_commands(conn, with_commands, now, outcomes)
        return outcomes

    @staticmethod
    def _add_usage(usage: dict[tuple[str, str, str], dict[str, Any]], it: HeartbeatItem,
                   site_id: str, region: str) -> None:
        day = usage_day(it["received_at"])
        for u in it["usage"]:
            key = (day, site_id, u["item_id"])
            acc = usage.setdefault(key, {
                "day": day, "site_id": site_id, "item_id": u["item_id"],
                "region": region, "completed": 0, "abandoned": 0, "failed": 0,
                **{f"rating_{lv}": 0 for lv in RATING_LEVELS}})
            acc["completed"] += u["completed"]
            acc["abandoned"] += u["abandoned"]
            acc["failed"] += u["failed"]
            for level, n in u["ratings"].items():
                acc[f"rating_{level}"] += n

    @staticmethod
    def _deliver_commands(conn: sa.Connection, device_ids: list[str], now: float,
                          outcomes: Outcomes) -> None:
        found = (conn.execute(
            sa.select(commands).where(
                commands.c.device_id.in_(device_ids),
                commands.c.status.in_(("pending", "delivered")),
                commands.c.expires_at > now)
            .order_by(commands.c.issued_at, commands.c.id))).all()
        pending = [c.id for c in found if c.status == "pending"]
        if pending:
            conn.execute(commands.update().where(
                commands.c.id.in_(pending), commands.c.status == "pending")
                .values(status="delivered", delivered_at=now))
        for c in found:
            outcomes[c.device_id].append({
                "id": c.id, "name": c.name, "args": json.loads(c.args),
                "issued_at": c.issued_at, "expires_at": c.expires_at})


def _reported_devices(raw: str) -> list[dict[str, Any]]:
    """The device reports of a heartbeat already validated as a wire Heartbeat, as dicts with
    every field (only needed when they changed, so not carried in every item)."""
    found = _DEVICES_JSON.validate_python(json.loads(raw).get("devices", []))
    return [d.model_dump(mode="json") for d in found]


def _report_row(device_id: str, d: dict[str, Any], at: float) -> dict[str, Any]:
    err = d.get("last_error")
    return {
        "device_id": device_id, "name": d["name"], "device_class": d["device_class"],
        "lifecycle": d["lifecycle"], "state": d["state"],
        "supplies": json.dumps(d["supplies"], sort_keys=True),
        "error_kind": err["kind"] if err else None,
        "error_action": err["action"] if err else None,
        "error_code": err["code"] if err else None,
        "error_text": err["vendor_text"] if err else None,
        "error_at": err["at"] if err else None,
        "info": json.dumps(d["info"], sort_keys=True, ensure_ascii=False),
        "updated_at": at,
    }


class Batcher:
    """The group commit: heartbeat items wait in a queue; one task takes everything queued
    (a kiosk at most once per batch), writes it in one transaction and answers every waiter
    with its kiosk's commands, or None when the kiosk was refused (replay, revoked)."""

    def __init__(self, db: Database, settings: ServerSettings, clock: Callable[[], float], *,
                 inline: bool = False) -> None:
        """`inline` (SQLite's writer process): run each transaction in the event loop's own
        thread, which blocks the loop for the batch; a process that also serves requests
        hands it to the writer thread instead."""
        self._db = db
        self._settings = settings
        self._clock = clock
        self._inline = inline and db.sync_engine is not None
        self._writer = BatchWriter(db)
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
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

    def forget_site(self, site_id: str) -> None:
        self._writer.forget_site(site_id)

    def enqueue(self, item: HeartbeatItem) -> asyncio.Future[list[dict[str, Any]] | None]:
        """The future of the item's outcome (its commands, or None: refused); raises
        IngestUnavailable when shutting down."""
        if self._closing:
            raise IngestUnavailable("server shutting down")
        future: asyncio.Future[list[dict[str, Any]] | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(item, future))
        self._wake.set()
        return future

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
                    outcomes = await self._flush([p.item for p in batch])
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
                    outcome = outcomes.get(p.device_id)
                    if outcome is not None:
                        self.stats.accepted += 1
                    else:
                        self.stats.refused += 1
                    if not p.future.done():
                        p.future.set_result(outcome)
            if self._closing:
                return

    async def _flush(self, batch: list[HeartbeatItem]) -> Outcomes:
        now = self._clock()
        token = secrets.randbits(62)
        # Rows in id order: two processes' batches (or a batch and the evaluator) lock kiosk
        # rows in the same order, which keeps PostgreSQL deadlocks rare; one that still
        # happens rolls the batch back whole, and it is tried once more.
        batch = sorted(batch, key=lambda it: it["device_id"])
        def work(conn: sa.Connection) -> Outcomes:
            return self._writer.write(conn, batch, token, now)

        for attempt in (1, 2):
            try:
                if self._inline:
                    return self._db.run_blocking(work)
                return await self._db.run_in_transaction(work)
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or "deadlock" not in str(exc).lower():
                    raise
                logger.warning("heartbeat batch hit a deadlock; retrying once")
        raise AssertionError("unreachable")


class Ingest(Protocol):
    """What request handlers use: HeartbeatIngest here, or writer_link.RemoteIngest."""

    stats: IngestStats

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def forget_site(self, site_id: str) -> None: ...

    async def submit(self, device_id: str, counter: int, hb: Heartbeat, raw: str,
                     received_at: float) -> IngestOutcome: ...


class HeartbeatIngest:
    """The heartbeat path inside the server process: items go to this process's own batcher
    (PostgreSQL, or SQLite with one server process). With several processes on SQLite they go
    to the writer process instead (fleet/server/writer.py, same interface)."""

    def __init__(self, db: Database, settings: ServerSettings, clock: Callable[[], float]) -> None:
        self._batcher = Batcher(db, settings, clock)
        self._rules = settings.rules
        self.stats = self._batcher.stats

    async def start(self) -> None:
        await self._batcher.start()

    async def stop(self) -> None:
        await self._batcher.stop()

    def forget_site(self, site_id: str) -> None:
        self._batcher.forget_site(site_id)

    async def submit(self, device_id: str, counter: int, hb: Heartbeat, raw: str,
                     received_at: float) -> IngestOutcome:
        item = heartbeat_item(device_id, counter, hb, raw, received_at, self._rules)
        return outcome_of(await self._batcher.enqueue(item))
