"""How sandbox cases (办件) progress: case numbers, the state sequence and its timing.

received → accepted → in_review → approved → completed, each step due a fixed time after
reception (`CaseSchedule`), applied lazily whenever a case is read; a test hook can move a
case on at once or reject it. Pure logic; the store keeps the states and their history.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk.platform.api import CaseState

PROGRESSION: tuple[CaseState, ...] = (
    CaseState.RECEIVED,
    CaseState.ACCEPTED,
    CaseState.IN_REVIEW,
    CaseState.APPROVED,
    CaseState.COMPLETED,
)
TERMINAL = frozenset({CaseState.COMPLETED, CaseState.REJECTED})

NOTES: Mapping[CaseState, str] = {
    CaseState.RECEIVED: "已接收 Received",
    CaseState.ACCEPTED: "已受理 Accepted",
    CaseState.IN_REVIEW: "审核中 In review",
    CaseState.APPROVED: "审核通过 Approved",
    CaseState.COMPLETED: "已办结 Completed",
    CaseState.REJECTED: "未通过 Rejected",
}


def _default_delays() -> dict[CaseState, float]:
    return {
        CaseState.ACCEPTED: 60.0,
        CaseState.IN_REVIEW: 300.0,
        CaseState.APPROVED: 1800.0,
        CaseState.COMPLETED: 2100.0,
    }


@dataclass(frozen=True)
class CaseSchedule:
    """Seconds after reception at which each later state is reached."""

    delays: Mapping[CaseState, float] = field(default_factory=_default_delays)


class InvalidTransition(ValueError):
    pass


def next_state(state: CaseState) -> CaseState | None:
    if state in TERMINAL:
        return None
    return PROGRESSION[PROGRESSION.index(state) + 1]


def due_transitions(
    schedule: CaseSchedule,
    state: CaseState,
    received_at: float,
    last_event_at: float,
    now: float,
) -> list[tuple[CaseState, float]]:
    """The transitions that are due by `now`, oldest first, each with its time (never
    before the last recorded event, so a history stays ordered after a manual step)."""
    due: list[tuple[CaseState, float]] = []
    current, at = state, last_event_at
    while (following := next_state(current)) is not None:
        when = received_at + schedule.delays.get(following, float("inf"))
        if when > now:
            break
        at = max(when, at)
        due.append((following, at))
        current = following
    return due


def manual_transition(state: CaseState, to: CaseState | None) -> CaseState:
    """The state a test hook moves a case to: the next one, or any later one, or rejected."""
    if state in TERMINAL:
        raise InvalidTransition(f"the case is already {state}")
    if to is None:
        following = next_state(state)
        assert following is not None
        return following
    if to is CaseState.REJECTED:
        return to
    if to not in PROGRESSION or PROGRESSION.index(to) <= PROGRESSION.index(state):
        raise InvalidTransition(f"cannot go from {state} to {to}")
    return to


def case_number(day: dt.date, serial: int) -> str:
    """14 digits: province prefix 32, YYMMDD, a 6-digit daily serial. Digits only, so a
    citizen can type it on the kiosk's keypad; too short to look like an ID number."""
    if not 0 < serial < 1_000_000:
        raise ValueError("daily serial out of range")
    return f"32{day:%y%m%d}{serial:06d}"


_PHONE = re.compile(r"^1[3-9]\d{9}$")
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
FLEXIBLE_BASES = (60, 80, 100, 150, 200, 300)  # % of the provincial average wage
_INSURANCE = ({"pension"}, {"pension", "medical"})


def field_problems(item_id: str, fields: Mapping[str, Any]) -> list[str]:
    """What the sandbox refuses in an application's fields (names the field, never the value).
    The shape is what the item's build_application hook submits
    (screens/items/flexible_employment_enrol/hooks.py)."""
    if item_id != "flexible_employment_enrol":
        return []
    problems = []
    if not _MONTH.match(str(fields.get("start_month", ""))):
        problems.append("start_month: YYYY-MM required")
    if fields.get("contribution_base_percent") not in FLEXIBLE_BASES:
        problems.append(
            "contribution_base_percent: one of " + ", ".join(map(str, FLEXIBLE_BASES))
        )
    if fields.get("contribution_base_rule") != "provincial_average_wage":
        problems.append("contribution_base_rule: provincial_average_wage")
    insurance = fields.get("insurance")
    if not isinstance(insurance, list) or set(insurance) not in _INSURANCE:
        problems.append("insurance: [pension] or [pension, medical]")
    if not _PHONE.match(str(fields.get("phone", ""))):
        problems.append("phone: an 11-digit mobile number required")
    return problems
