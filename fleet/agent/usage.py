"""Per-item usage deltas: what the app counted since the totals the server last acknowledged.

Pure logic. The app reports totals since install (kiosk/telemetry.py); the agent remembers
the totals covered by the last acknowledged heartbeat and sends the difference. A heartbeat
that never arrives changes nothing (the next one carries the same usage again), and one that
arrives twice is ignored by the server through its `seq`, so usage is never lost or doubled.
"""

from __future__ import annotations

import re
from typing import Any

OUTCOMES = ("completed", "abandoned", "failed")
RATING_LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
MAX_ITEMS_PER_HEARTBEAT = 200  # wire Heartbeat.usage max_length
_ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")

# item_id → {completed, abandoned, failed, ratings: {level: n}}
Totals = dict[str, dict[str, Any]]


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def clean_items(items: Any) -> Totals:
    """The per-item totals from an app's /health, keeping only well-formed entries (the app
    is trusted to be ours, but a bad answer must never break the agent)."""
    if not isinstance(items, dict):
        return {}
    clean: Totals = {}
    for item_id, entry in items.items():
        if not isinstance(item_id, str) or not _ITEM_ID.match(item_id):
            continue
        if not isinstance(entry, dict):
            continue
        ratings = _dict(entry.get("ratings"))
        clean[item_id] = {
            **{key: _count(entry.get(key)) for key in OUTCOMES},
            "ratings": {
                level: _count(ratings.get(level))
                for level in RATING_LEVELS
                if _count(ratings.get(level))
            },
        }
    return clean


def usage_delta(current: Totals, acked: Totals) -> tuple[list[dict[str, Any]], Totals]:
    """(wire ItemUsage dicts, the totals the server has once it acknowledges them).

    At most MAX_ITEMS_PER_HEARTBEAT items go out; the rest stay pending for the next
    heartbeat because the returned totals only advance for the items sent. A total that went
    down (the app's telemetry file was replaced) restarts counting from the new total."""
    usage: list[dict[str, Any]] = []
    covered: Totals = {k: v for k, v in acked.items()}
    for item_id in sorted(current):
        now, before = current[item_id], acked.get(item_id, {})
        entry: dict[str, Any] = {"item_id": item_id}
        for key in OUTCOMES:
            diff = _count(now.get(key)) - _count(before.get(key))
            if diff > 0:
                entry[key] = diff
        ratings = {}
        before_ratings = _dict(before.get("ratings"))
        for level, n in now.get("ratings", {}).items():
            diff = _count(n) - _count(before_ratings.get(level))
            if diff > 0:
                ratings[level] = diff
        if ratings:
            entry["ratings"] = ratings
        if len(entry) == 1:
            covered[item_id] = now  # nothing new (or a total went down): follow the app
            continue
        if len(usage) >= MAX_ITEMS_PER_HEARTBEAT:
            continue  # stays pending: `covered` keeps the old totals for it
        usage.append(entry)
        covered[item_id] = now
    return usage, covered
