"""States and alerts end to end: heartbeats in, the evaluator's pass, alerts out through the
ops API — dedupe, self-resolution, acknowledgement, who acts. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.fleet.server.conftest import as_user

pytestmark = pytest.mark.asyncio

PRINTER = {"name": "receipt", "device_class": "receipt_printer", "lifecycle": "enabled",
           "state": "online", "supplies": {"paper": "full"}}


def printer(**changes):
    return [PRINTER | changes]


async def open_alerts(admin, device_id):
    body = await admin.get(f"/api/v1/alerts?device_id={device_id}")
    return {(a["rule"], a["subject"]): a for a in body["alerts"]}


async def test_supply_alerts_open_once_escalate_and_resolve(srv, kiosk, admin):
    await kiosk.beat(1, devices=printer(supplies={"paper": "low"}))
    await srv.evaluate()
    await kiosk.beat(2, devices=printer(supplies={"paper": "low"}))
    await srv.evaluate()
    alerts = await open_alerts(admin, kiosk.device_id)
    assert list(alerts) == [("supply_low", "receipt.paper")]  # deduplicated
    low = alerts[("supply_low", "receipt.paper")]
    assert low["severity"] == "warning" and low["actor"] == "branch_staff"

    await kiosk.beat(3, devices=printer(supplies={"paper": "jammed"}))
    await srv.evaluate()
    alerts = await open_alerts(admin, kiosk.device_id)
    assert list(alerts) == [("supply_out", "receipt.paper")]
    assert alerts[("supply_out", "receipt.paper")]["severity"] == "critical"
    kiosk_row = await admin.get(f"/api/v1/kiosks/{kiosk.device_id}")
    assert kiosk_row["kiosk"]["health"] == "critical"
    assert kiosk_row["devices"][0]["supplies"] == {"paper": "jammed"}

    await kiosk.beat(4)
    await srv.evaluate()
    assert await open_alerts(admin, kiosk.device_id) == {}
    resolved = await admin.get(f"/api/v1/alerts?status=resolved&device_id={kiosk.device_id}")
    assert {a["rule"] for a in resolved["alerts"]} == {"supply_low", "supply_out"}
    assert all(a["resolved_at"] for a in resolved["alerts"])


async def test_hardware_errors_say_who_must_act(srv, kiosk, admin):
    error = {"kind": "hardware", "action": "maintenance", "code": "E_HEAD", "at": 1.0,
             "vendor_text": "print head fault"}
    reader = {"name": "idcard", "device_class": "id_card_reader", "lifecycle": "enabled",
              "state": "hardware_error",
              "last_error": {"kind": "hardware", "action": "clear", "code": "E_CARD", "at": 1.0}}
    await kiosk.beat(1, devices=[PRINTER | {"state": "hardware_error", "last_error": error},
                                 reader])
    await srv.evaluate()
    alerts = await open_alerts(admin, kiosk.device_id)
    assert alerts[("device_error", "receipt")]["actor"] == "engineer"
    assert alerts[("device_error", "receipt")]["severity"] == "critical"
    assert alerts[("device_error", "idcard")]["actor"] == "branch_staff"
    assert "工程师" in alerts[("device_error", "receipt")]["message"]
    engineer = await admin.get("/api/v1/alerts?actor=engineer")
    assert [a["subject"] for a in engineer["alerts"]] == ["receipt"]


async def test_door_tamper_clock_catalogue_and_app_down(srv, kiosk, admin):
    await kiosk.beat(1, cabinet={"door_open": True, "tamper": True},
                     sent_at=kiosk.clock() + 120, clock_synced=True,
                     versions={"app": "1.0.0", "catalogue": "old",
                               "catalogue_published_at": "2026-01-01T00:00:00Z"},
                     app={"state": "down", "down_since": kiosk.clock() - 60})
    await srv.evaluate()
    alerts = await open_alerts(admin, kiosk.device_id)
    assert set(alerts) == {("door_open", "door"), ("tamper", "cabinet"), ("clock_skew", ""),
                           ("catalogue_stale", ""), ("app_down", "app")}
    assert alerts[("tamper", "cabinet")]["severity"] == "critical"
    assert alerts[("app_down", "app")]["severity"] == "critical"
    await kiosk.beat(2, clock_synced=False)
    await srv.evaluate()
    assert set(await open_alerts(admin, kiosk.device_id)) == {("clock_skew", "")}


async def test_silent_kiosk_goes_late_then_offline_then_back(srv, kiosk, admin, fleet_clock):
    await kiosk.beat(1)
    fleet_clock.advance(46)  # > 1.5 intervals of 30 s
    report = await srv.evaluate()
    assert report.went_late == 1
    overview = await admin.get("/api/v1/overview")
    assert overview["states"]["late"] == 1 and overview["open_alerts"]["critical"] == 0
    fleet_clock.advance(45)  # > 3 intervals
    report = await srv.evaluate()
    assert report.went_offline == 1 and report.opened == 1
    alerts = await open_alerts(admin, kiosk.device_id)
    assert alerts[("offline", "")]["severity"] == "critical"
    listed = await admin.get("/api/v1/kiosks?state=offline&alert=offline")
    assert [k["device_id"] for k in listed["kiosks"]] == [kiosk.device_id]
    await kiosk.beat(2)
    await srv.evaluate()
    assert await open_alerts(admin, kiosk.device_id) == {}
    detail = await admin.get(f"/api/v1/kiosks/{kiosk.device_id}")
    kinds = [e["kind"] for e in detail["events"]]
    assert {"late", "offline", "alert_opened", "online", "alert_resolved"} <= set(kinds)


async def test_going_offline_is_offline_at_once_and_only_info(srv, kiosk, admin):
    await kiosk.beat(1)
    await kiosk.beat(2, kind="going_offline", app={"state": "down"})
    await srv.evaluate()
    alerts = await open_alerts(admin, kiosk.device_id)
    assert list(alerts) == [("offline", "")]
    assert alerts[("offline", "")]["severity"] == "info"
    detail = await admin.get(f"/api/v1/kiosks/{kiosk.device_id}")
    assert detail["kiosk"]["state"] == "offline"


async def test_acknowledge_needs_operator_and_keeps_who_and_when(srv, kiosk, admin, http):
    await kiosk.beat(1, cabinet={"door_open": True})
    await srv.evaluate()
    alert = (await admin.get("/api/v1/alerts"))["alerts"][0]
    viewer = await as_user(srv, http, "viewer1", "viewer")
    status, body = await viewer.call("POST", f"/api/v1/alerts/{alert['id']}/ack")
    assert status == 403 and body["error"] == "forbidden"
    operator = await as_user(srv, http, "op1", "operator")
    status, body = await operator.call("POST", f"/api/v1/alerts/{alert['id']}/ack")
    assert status == 200, body
    acked = (await admin.get("/api/v1/alerts?acked=true"))["alerts"][0]
    assert acked["acked_by"] == "op1" and acked["acked_at"] is not None
    status, body = await operator.call("POST", "/api/v1/alerts/999999/ack")
    assert status == 404
    overview = await admin.get("/api/v1/overview")
    assert overview["unacknowledged_alerts"] == 0 and overview["open_alerts"]["warning"] == 1


async def test_expired_commands_are_marked(srv, kiosk, fleet_clock):
    command_id = await srv.issue_command(kiosk.device_id, "restart_app", ttl_s=60)
    fleet_clock.advance(61)
    report = await srv.evaluate()
    assert report.expired_commands == 1
    status, body = await kiosk.beat(1)
    assert body["commands"] == []
    status, body = await kiosk.result(command_id, "done")  # a late answer is still recorded
    assert status == 200


async def test_old_history_is_pruned_in_chunks(srv, kiosk, fleet_clock, monkeypatch):
    import sqlalchemy as sa

    from fleet.server import evaluator
    from fleet.server.schema import heartbeats

    monkeypatch.setattr(evaluator, "PRUNE_CHUNK", 2)
    for seq in range(1, 6):
        await kiosk.beat(seq)
    fleet_clock.advance(srv.settings.heartbeat_retention_s + 1)
    await kiosk.beat(6)
    await srv.evaluate()
    async with srv.db.engine.connect() as conn:
        left = (await conn.execute(sa.select(heartbeats.c.seq))).scalars().all()
    assert left == [6]
