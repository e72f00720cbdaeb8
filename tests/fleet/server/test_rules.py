"""Pure logic: kiosk states from heartbeat times, alert conditions from one heartbeat,
region scopes. No I/O."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from fleet.server import rules, states
from fleet.server.users import User, region_prefix
from fleet.wire import Heartbeat
from tests.fleet.server.simkiosk import heartbeat

NOW = 1_800_000_000.0


def conditions(**overrides):
    hb = Heartbeat.model_validate(heartbeat(1, **({"sent_at": NOW} | overrides)))
    return {(c.rule, c.subject): c for c in rules.heartbeat_conditions(hb, NOW)}


def printer(state="online", supplies=None, error=None):
    return [{"name": "receipt", "device_class": "receipt_printer", "lifecycle": "enabled",
             "state": state, "supplies": supplies or {}, "last_error": error}]


@pytest.mark.parametrize(("age", "state"), [
    (0, "online"), (44.9, "online"), (45, "late"), (89.9, "late"), (90, "offline"),
])
def test_states_follow_the_interval(age, state):
    assert states.state_at(NOW, 30, NOW + age) == state


def test_going_offline_and_never_seen():
    assert states.state_at(NOW, 30, NOW, said_going_offline=True) == "offline"
    assert states.state_at(None, 30, NOW) == "new"
    assert states.state_after_heartbeat("going_offline") == "offline"


def test_a_healthy_heartbeat_has_no_conditions():
    assert conditions() == {}


@pytest.mark.parametrize(("level", "rule", "severity"), [
    ("low", "supply_low", "warning"), ("out", "supply_out", "critical"),
    ("jammed", "supply_out", "critical"), ("full", None, None), ("unknown", None, None),
])
def test_supplies(level, rule, severity):
    found = conditions(devices=printer(supplies={"paper": level}))
    if rule is None:
        assert found == {}
    else:
        c = found[(rule, "receipt.paper")]
        assert c.severity == severity and c.actor == "branch_staff"


@pytest.mark.parametrize(("action", "actor", "severity"), [
    ("clear", "branch_staff", "warning"), ("maintenance", "engineer", "critical"),
    ("reset", "ops", "warning"), ("configuration", "ops", "warning"),
])
def test_hardware_error_actor_follows_the_operator_action(action, actor, severity):
    error = {"kind": "hardware", "action": action, "code": "E1", "at": NOW}
    c = conditions(devices=printer("hardware_error", error=error))[("device_error", "receipt")]
    assert (c.actor, c.severity) == (actor, severity)
    assert action in c.message


def test_a_recovered_device_with_an_old_error_is_not_an_alert():
    error = {"kind": "hardware", "action": "clear", "code": "E1", "at": NOW - 100}
    assert conditions(devices=printer("online", error=error)) == {}


def test_cabinet_clock_catalogue_app():
    found = conditions(cabinet={"door_open": True, "tamper": None},
                       app={"state": "down"}, sent_at=NOW - 31)
    assert set(found) == {("door_open", "door"), ("app_down", "app"), ("clock_skew", "")}
    assert set(conditions(sent_at=NOW + 29)) == set()
    assert set(conditions(clock_synced=False)) == {("clock_skew", "")}
    old = (dt.datetime.fromtimestamp(NOW, dt.timezone.utc) - dt.timedelta(days=8)).isoformat()
    fresh = (dt.datetime.fromtimestamp(NOW, dt.timezone.utc) - dt.timedelta(days=6)).isoformat()
    assert set(conditions(versions={"app": "1", "catalogue_published_at": old})) == {
        ("catalogue_stale", "")}
    assert conditions(versions={"app": "1", "catalogue_published_at": fresh}) == {}


def test_going_offline_with_the_app_stopped_is_not_app_down():
    assert conditions(kind="going_offline", app={"state": "down"}) == {}


def test_encode_decode_and_health():
    found = list(conditions(devices=printer(supplies={"paper": "low", "toner": "out"})).values())
    assert rules.decode(rules.encode(found)) == found
    assert rules.health_of(found) == "critical" and rules.health_of([]) == "ok"
    assert rules.offline_condition(True).severity == "info"
    assert rules.offline_condition(False).severity == "critical"


@pytest.mark.parametrize(("scope", "region", "sees"), [
    ("320200", "320205", True), ("320200", "320105", False), ("320000", "320105", True),
    ("320205", "320205", True), ("320205", "320206", False), ("320200", "330205", False),
])
def test_region_scopes_are_prefixes(scope, region, sees):
    user = User(1, "u", "viewer", (scope,))
    assert user.sees_region(region) is sees
    col = sa.column("region")
    clause = user.region_clause(col)
    compiled = str(clause.compile(compile_kwargs={"literal_binds": True}))
    assert region_prefix(scope) in compiled
    assert User(2, "all", "admin").sees_region(region)
