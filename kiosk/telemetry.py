"""Usage totals since the kiosk was installed: journeys, outcomes, ratings, prints, queued
submissions — counts per item id and nothing else (no citizen, no answers, no times).

The touch UI records events on the event loop, the health endpoint hands the totals to the
fleet agent, and the agent turns them into per-heartbeat deltas. Totals only ever grow, so a
lost or repeated read can never double count on the server side.

Storage is a small SQLite file in WAL mode. Each event is one short transaction (an UPSERT,
tens of microseconds: WAL with `synchronous=NORMAL` does not fsync on commit), so a crash of
the app process — even SIGKILL — never loses an event that returned; a power cut may lose the
last few, and nothing can ever be counted twice. The totals are also kept in memory, so
`totals()` costs no I/O.
"""

from __future__ import annotations

import copy
import logging
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

OUTCOMES = ("completed", "abandoned", "failed")
RATING_LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
PRINT_KINDS = {"receipt": "receipts_printed", "a4": "a4_pages_printed"}
COUNTERS = (
    "journeys_started",
    "journeys_completed",
    "journeys_abandoned",
    "journeys_failed",
    "receipts_printed",
    "a4_pages_printed",
    "submissions_queued",
)
# The wire's Ident: item ids are folder names, never free text a citizen could have typed.
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_MAX_ITEMS = 500  # a kiosk has tens of items; the bound keeps a bug from growing the file


class TelemetryError(ValueError):
    """A call with a value the totals cannot hold (a programming error in the caller)."""


def _empty_item() -> dict[str, Any]:
    return {"started": 0, "completed": 0, "abandoned": 0, "failed": 0, "ratings": {}}


class Telemetry:
    """`Telemetry(path)` opens (or creates) the totals file; `close()` when the app stops."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The UI calls from the event loop's thread; the lock only matters if a test or a
        # tool reads from another thread.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS item_counts (item_id TEXT NOT NULL, key TEXT NOT NULL,"
            " value INTEGER NOT NULL, PRIMARY KEY (item_id, key))"
        )
        self._counters = {name: 0 for name in COUNTERS}
        self._items: dict[str, dict[str, Any]] = {}
        for name, value in self._db.execute("SELECT name, value FROM counters"):
            if name in self._counters:
                self._counters[name] = int(value)
        for item_id, key, value in self._db.execute("SELECT item_id, key, value FROM item_counts"):
            entry = self._items.setdefault(item_id, _empty_item())
            if key.startswith("rating:"):
                entry["ratings"][key.removeprefix("rating:")] = int(value)
            elif key in entry:
                entry[key] = int(value)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- events ----------------------------------------------------------------------------
    def journey_started(self, item_id: str) -> None:
        self._add(item_id, "started", ("journeys_started", 1))

    def journey_finished(self, item_id: str, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise TelemetryError(f"outcome must be one of {', '.join(OUTCOMES)} (got {outcome!r})")
        self._add(item_id, outcome, (f"journeys_{outcome}", 1))

    def rated(self, item_id: str, level: str) -> None:
        if level not in RATING_LEVELS:
            raise TelemetryError(
                f"rating must be one of {', '.join(RATING_LEVELS)} (got {level!r})"
            )
        self._add(item_id, f"rating:{level}", None)

    def printed(self, kind: str, pages: int = 1) -> None:
        counter = PRINT_KINDS.get(kind)
        if counter is None:
            raise TelemetryError(f"print kind must be receipt or a4 (got {kind!r})")
        if not isinstance(pages, int) or pages < 1 or pages > 10_000:
            raise TelemetryError(f"pages must be a positive count (got {pages!r})")
        self._bump([(counter, pages)], None)

    def submission_queued(self) -> None:
        self._bump([("submissions_queued", 1)], None)

    # -- reading ---------------------------------------------------------------------------
    def totals(self) -> dict[str, Any]:
        """{"counters": {...wire Counters fields}, "items": {item_id: {started, completed,
        abandoned, failed, ratings: {level: n}}}} — a copy, safe to hand out."""
        with self._lock:
            return {"counters": dict(self._counters), "items": copy.deepcopy(self._items)}

    # -- writing ---------------------------------------------------------------------------
    def _add(self, item_id: str, key: str, counter: tuple[str, int] | None) -> None:
        if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
            raise TelemetryError(f"not an item id: {item_id!r}")
        if item_id not in self._items and len(self._items) >= _MAX_ITEMS:
            raise TelemetryError(f"more than {_MAX_ITEMS} item ids: refusing {item_id!r}")
        self._bump([counter] if counter else [], (item_id, key))

    def _bump(self, counters: list[tuple[str, int]], item_key: tuple[str, str] | None) -> None:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for name, amount in counters:
                    db.execute(
                        "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name)"
                        " DO UPDATE SET value = value + excluded.value",
                        (name, amount),
                    )
                if item_key is not None:
                    db.execute(
                        "INSERT INTO item_counts (item_id, key, value) VALUES (?, ?, 1)"
                        " ON CONFLICT(item_id, key) DO UPDATE SET value = value + 1",
                        item_key,
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            # Memory follows the file only once the file has it.
            for name, amount in counters:
                self._counters[name] += amount
            if item_key is not None:
                item_id, key = item_key
                entry = self._items.setdefault(item_id, _empty_item())
                if key.startswith("rating:"):
                    level = key.removeprefix("rating:")
                    entry["ratings"][level] = entry["ratings"].get(level, 0) + 1
                else:
                    entry[key] += 1
