"""Kiosk states as the server sees them: online → late → offline, from heartbeat times.

A heartbeat puts a kiosk online (or offline at once when it says "going_offline": an expected
shutdown, reported as info rather than critical). Without heartbeats it becomes late after
1.5 of its own intervals and offline after 3. Pure functions: the heartbeat path stores the
deadlines, and the alert evaluator moves kiosks whose deadline passed (fleet/server/evaluator.py).
"""

from __future__ import annotations

from fleet.server.schema import STATE_LATE, STATE_NEW, STATE_OFFLINE, STATE_ONLINE

LATE_AFTER_INTERVALS = 1.5
OFFLINE_AFTER_INTERVALS = 3.0


def deadlines(received_at: float, interval_s: float) -> tuple[float, float]:
    """(late_after, offline_after) for a heartbeat received at `received_at`."""
    return (received_at + LATE_AFTER_INTERVALS * interval_s,
            received_at + OFFLINE_AFTER_INTERVALS * interval_s)


def state_after_heartbeat(kind: str) -> str:
    return STATE_OFFLINE if kind == "going_offline" else STATE_ONLINE


def state_at(last_seen: float | None, interval_s: float, now: float, *,
             said_going_offline: bool = False) -> str:
    """The state a kiosk is in at `now` (the evaluator's rule, as one function for tests)."""
    if last_seen is None:
        return STATE_NEW
    if said_going_offline:
        return STATE_OFFLINE
    late_after, offline_after = deadlines(last_seen, interval_s)
    if now >= offline_after:
        return STATE_OFFLINE
    if now >= late_after:
        return STATE_LATE
    return STATE_ONLINE
