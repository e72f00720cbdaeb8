"""The agent's durable state, one SQLite file in the state dir (WAL, full sync):

- the heartbeat sequence number and the usage totals the server has acknowledged;
- the heartbeat in flight, so a crash between "sent" and "acknowledged" resends the same
  heartbeat (same `seq`, which the server ignores if it already has it) instead of counting
  its usage a second time;
- the heartbeats that could not be sent (bounded: oldest dropped and counted), from which
  the one `summary` heartbeat is made when the server answers again;
- command results until the server has taken them, and the ids of commands already run.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

# How bad a device state is, for the offline summary's "worst state seen".
STATE_SEVERITY = {
    "online": 0, "busy": 1, "user_error": 2, "offline": 3, "power_off": 4, "no_device": 5,
    "hardware_error": 6, "fraud_attempt": 7,
}
MAX_SUMMARY_DEVICES = 32
MAX_RESULTS_KEPT = 500  # command ids remembered (run once), results kept until posted
RESULT_RETENTION_S = 7 * 86_400


@dataclass(frozen=True)
class Pending:
    seq: int
    kind: str
    body: str  # the heartbeat's JSON, sent byte for byte again if needed
    covered: dict[str, Any]  # the acknowledged totals once the server has it


class AgentStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS buffer (
                id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, body TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS results (
                command_id TEXT PRIMARY KEY, body TEXT NOT NULL, created REAL NOT NULL,
                posted INTEGER NOT NULL DEFAULT 0);
            """
        )

    def close(self) -> None:
        self._db.close()

    # -- key/value -------------------------------------------------------------------------
    def _get(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def _put(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def _delete(self, key: str) -> None:
        self._db.execute("DELETE FROM kv WHERE key = ?", (key,))

    def _tx(self):
        return _Transaction(self._db)

    # -- sequence, acknowledged totals, last seen totals --------------------------------------
    def next_seq(self) -> int:
        with self._tx():
            seq = int(self._get("seq", 0)) + 1
            self._put("seq", seq)
        return seq

    def acked_items(self) -> dict[str, Any]:
        return self._get("acked_items", {})

    def last_totals(self) -> dict[str, Any] | None:
        return self._get("last_totals")

    def set_last_totals(self, totals: dict[str, Any]) -> None:
        with self._tx():
            self._put("last_totals", totals)

    def down_since(self) -> float | None:
        return self._get("down_since")

    def set_down_since(self, at: float | None) -> None:
        with self._tx():
            if at is None:
                self._delete("down_since")
            else:
                self._put("down_since", at)

    # -- the heartbeat in flight ---------------------------------------------------------------
    def pending(self) -> Pending | None:
        value = self._get("pending")
        return None if value is None else Pending(**value)

    def set_pending(self, seq: int, kind: str, body: str, covered: dict[str, Any]) -> Pending:
        """Written before the first send: from then on it may be on the server."""
        pending = Pending(seq, kind, body, covered)
        with self._tx():
            self._put("pending", pending.__dict__)
        return pending

    def discard_pending(self) -> None:
        """It never reached the server (no connection) or the server refused it."""
        with self._tx():
            self._delete("pending")

    def acknowledged(self) -> None:
        """The server has the pending heartbeat: its usage is counted; a summary also ends
        the offline period."""
        with self._tx():
            value = self._get("pending")
            if value is None:
                return
            self._put("acked_items", value["covered"])
            self._delete("pending")
            if value["kind"] == "summary":
                self._db.execute("DELETE FROM buffer")
                self._delete("dropped")

    # -- the offline buffer -------------------------------------------------------------------
    def buffer_add(self, at: float, body: str, *, max_rows: int, max_age_s: float) -> int:
        """Keep a heartbeat that could not be sent; returns how many old ones were dropped."""
        with self._tx():
            self._db.execute("INSERT INTO buffer (at, body) VALUES (?, ?)", (at, body))
            (count,) = self._db.execute("SELECT COUNT(*) FROM buffer").fetchone()
            excess = max(0, count - max_rows)
            rows = self._db.execute(
                "SELECT id, at, body FROM buffer WHERE id IN (SELECT id FROM buffer ORDER BY id"
                " LIMIT ?) OR at < ? ORDER BY id",
                (excess, at - max_age_s),
            ).fetchall()
            if rows:
                dropped = self._get(
                    "dropped", {"count": 0, "since": None, "app_down_s": 0.0, "worst": {}}
                )
                following = self._db.execute(
                    "SELECT at FROM buffer WHERE id > ? ORDER BY id LIMIT 1", (rows[-1][0],)
                ).fetchone()
                stats = _fold([(r[1], r[2]) for r in rows], following[0] if following else at)
                dropped["count"] += len(rows)
                dropped["since"] = min(
                    x for x in (dropped["since"], stats["since"]) if x is not None
                )
                dropped["app_down_s"] += stats["app_down_s"]
                dropped["worst"] = _worse(dropped["worst"], stats["worst"])
                self._put("dropped", dropped)
                self._db.executemany("DELETE FROM buffer WHERE id = ?", [(r[0],) for r in rows])
            return len(rows)

    def buffered(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM buffer").fetchone()[0]

    def offline_summary(self, now: float) -> dict[str, Any] | None:
        """The wire OfflineSummary of everything buffered and dropped (None: nothing was)."""
        rows = self._db.execute("SELECT at, body FROM buffer ORDER BY id").fetchall()
        dropped = self._get("dropped")
        if not rows and not dropped:
            return None
        stats = _fold(rows, now)
        since = [x for x in (stats["since"], dropped and dropped["since"]) if x is not None]
        worst = _worse(stats["worst"], dropped["worst"] if dropped else {})
        return {
            "since": min(since) if since else now,
            "heartbeats_buffered": len(rows),
            "heartbeats_dropped": dropped["count"] if dropped else 0,
            "app_down_s": round(
                stats["app_down_s"] + (dropped["app_down_s"] if dropped else 0.0), 1
            ),
            "worst_device_states": dict(sorted(worst.items())[:MAX_SUMMARY_DEVICES]),
        }

    # -- commands ------------------------------------------------------------------------------
    def command_seen(self, command_id: str) -> bool:
        query = "SELECT 1 FROM results WHERE command_id = ?"
        return self._db.execute(query, (command_id,)).fetchone() is not None

    def save_result(self, command_id: str, body: str) -> None:
        with self._tx():
            self._db.execute(
                "INSERT OR REPLACE INTO results (command_id, body, created, posted)"
                " VALUES (?, ?, ?, 0)",
                (command_id, body, time.time()),
            )
            self._db.execute(
                "DELETE FROM results WHERE posted = 1 AND command_id NOT IN"
                " (SELECT command_id FROM results ORDER BY created DESC LIMIT ?)",
                (MAX_RESULTS_KEPT,),
            )
            self._db.execute(
                "DELETE FROM results WHERE created < ?", (time.time() - RESULT_RETENTION_S,)
            )

    def unposted_results(self, limit: int = 20) -> list[tuple[str, str]]:
        return self._db.execute(
            "SELECT command_id, body FROM results WHERE posted = 0 ORDER BY created LIMIT ?",
            (limit,),
        ).fetchall()

    def mark_posted(self, command_id: str) -> None:
        with self._tx():
            self._db.execute("UPDATE results SET posted = 1 WHERE command_id = ?", (command_id,))


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _fold(rows: list[tuple[float, str]], end: float) -> dict[str, Any]:
    """since, time the app was down and the worst state per device over buffered rows."""
    since = rows[0][0] if rows else None
    down = 0.0
    worst: dict[str, str] = {}
    for index, (at, body) in enumerate(rows):
        try:
            heartbeat = json.loads(body)
        except ValueError:
            continue
        following = rows[index + 1][0] if index + 1 < len(rows) else end
        interval = float(heartbeat.get("interval_s", 30))
        if heartbeat.get("app", {}).get("state") == "down":
            down += max(0.0, min(following - at, 3 * interval))
        for device in heartbeat.get("devices", []):
            worst = _worse(worst, {device.get("name"): device.get("state")})
    return {"since": since, "app_down_s": down, "worst": worst}


def _worse(a: dict[str, str], b: dict[str, str]) -> dict[str, str]:
    merged = dict(a)
    for name, state in b.items():
        if not isinstance(name, str) or state not in STATE_SEVERITY:
            continue
        if name not in merged or STATE_SEVERITY[state] > STATE_SEVERITY.get(merged[name], -1):
            merged[name] = state
    return merged
