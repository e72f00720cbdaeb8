"""kiosk/health.py: the health endpoint on its Unix socket, served from the real Services
(simulated receipt printer and QR scanner, the real outbox) with a recording actions object."""

from __future__ import annotations

import base64
import json
import os
import stat
import time

import aiohttp
import pytest
import pytest_asyncio

from fleet import wire
from fleet.agent.app_health import AppHealth, AppUnreachable
from fleet.agent.report import build_heartbeat
from kiosk.config import parse
from kiosk.health import HealthServer, ServicesHealthSource
from kiosk.platform.api import SignedCatalogue
from kiosk.services import open_services
from kiosk.telemetry import Telemetry

CONFIG = """
[paths]
data_dir = "{data}"
[devices.id_card]
enabled = false
[devices.ssc]
enabled = false
[devices.a4_printer]
enabled = false
"""


@pytest_asyncio.fixture
async def kiosk_app(short_dir, actions):
    """A kiosk's services with the health endpoint up, as the app runs them."""
    config = parse(CONFIG.format(data=short_dir / "data"))
    telemetry = Telemetry(short_dir / "data" / "telemetry.sqlite3")
    async with open_services(config, run_sender=False) as services:
        source = ServicesHealthSource(services, telemetry, actions, started_at=time.time() - 5)
        server = HealthServer(source, short_dir / "health.sock")
        await server.start()
        try:
            yield server, source, services, telemetry
        finally:
            await server.stop()
            telemetry.close()


async def _post(sock, path, body):
    async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(sock))) as s:
        async with s.post(f"http://app{path}", data=body) as r:
            return r.status, await r.json()


@pytest.mark.asyncio
async def test_health_reports_devices_totals_versions_and_is_private(kiosk_app):
    server, source, services, telemetry = kiosk_app
    mode = stat.S_IMODE(os.stat(server.socket_path).st_mode)
    assert mode == 0o660
    telemetry.journey_started("tax_certificate")
    telemetry.journey_finished("tax_certificate", "completed")
    telemetry.rated("tax_certificate", "satisfied")
    source.catalogue_loaded(
        SignedCatalogue(version=7, issued_at=1_790_000_000.0, entries=(), payload=b"",
                        signature=b"", key_id="k1")
    )
    snap = await AppHealth(server.socket_path).snapshot()
    assert snap["versions"]["catalogue"] == "7"
    assert snap["versions"]["catalogue_published_at"].startswith("2026-09-21T14:13:20")
    assert snap["app"]["state"] == "running"
    assert snap["app"]["screen"] == "attract"
    assert snap["app"]["uptime_s"] >= 5
    assert snap["app"]["outbox_pending"] == 0
    names = {d["name"]: d for d in snap["devices"]}
    assert set(names) == {"receipt_printer", "qr"}
    assert names["receipt_printer"]["supplies"] == {"paper": "full"}
    assert snap["totals"]["items"]["tax_certificate"]["ratings"] == {"satisfied": 1}
    assert snap["versions"]["app"] and snap["versions"]["config"]
    assert snap["cabinet"] == {"door_open": None, "tamper": None}
    # Everything in it fits the wire heartbeat the agent builds from it.
    hb = build_heartbeat(
        seq=1, kind="heartbeat", sent_at=time.time(), interval_s=30, snapshot=snap,
        down_since=None, counters=snap["totals"]["counters"], usage=[], disk=None,
        system_uptime_s=1.0, clock_synced=None,
    )
    assert len(hb.devices) == 2 and hb.app.state == "running"
    wire.Heartbeat.model_validate_json(hb.model_dump_json())


@pytest.mark.asyncio
async def test_commands_reach_the_ui_and_the_devices(kiosk_app, actions):
    server, source, services, telemetry = kiosk_app
    app = AppHealth(server.socket_path)
    out = await app.command("out_of_service", {"reason": "更换纸卷 Changing paper"})
    assert out["status"] == "done"
    snap = await app.snapshot()
    assert snap["app"]["screen"] == "out_of_service"
    assert snap["app"]["out_of_service_reason"] == "更换纸卷 Changing paper"
    assert (await app.command("in_service", {}))["status"] == "done"
    assert (await app.snapshot())["app"]["out_of_service_reason"] == ""

    shot = await app.command("screenshot", {})
    assert shot["status"] == "done"
    assert (shot["data"]["width"], shot["data"]["height"]) == (64, 40)
    assert base64.b64decode(shot["data"]["png_base64"]).startswith(b"\x89PNG")

    test = await app.command("selftest", {})
    assert test["status"] == "done", test
    assert {d["device"] for d in test["data"]["devices"]} == {"receipt_printer", "qr"}
    assert all(d["ok"] for d in test["data"]["devices"])

    assert (await app.command("reload_catalogue", {}))["status"] == "done"
    assert (await app.command("reload_config", {}))["status"] == "done"
    assert [c[0] for c in actions.calls] == [
        "out_of_service", "in_service", "screenshot", "reload_catalogue", "reload_config",
    ]


@pytest.mark.asyncio
async def test_bad_commands_are_rejected_not_crashed(kiosk_app, actions):
    server, *_ = kiosk_app
    app = AppHealth(server.socket_path)
    assert (await app.command("out_of_service", {}))["status"] == "rejected"
    assert (await app.command("out_of_service", {"reason": "x" * 501}))["status"] == "rejected"
    # The recording UI has no apply_bundle: the app says so instead of pretending.
    out = await app.command("apply_bundle", {"kind": "catalogue", "bundle": {}})
    assert out["status"] == "rejected"
    status, body = await _post(server.socket_path, "/commands/format_disk", b"{}")
    assert status == 404 and body["status"] == "rejected"
    status, body = await _post(server.socket_path, "/commands/in_service", b"{not json")
    assert status == 400 and body["status"] == "rejected"
    status, body = await _post(server.socket_path, "/commands/in_service", b"[1, 2]")
    assert status == 400
    assert actions.calls == []

    async def broken() -> bytes:
        raise RuntimeError("GL context lost")

    actions.screenshot = broken
    out = await app.command("screenshot", {})
    assert out["status"] == "failed" and "GL context lost" in out["detail"]


@pytest.mark.asyncio
async def test_stale_socket_of_a_killed_app_is_replaced(short_dir, actions):
    import socket

    path = short_dir / "health.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: what a SIGKILLed app leaves
    with pytest.raises(AppUnreachable):
        await AppHealth(path).snapshot()

    class Source:
        async def snapshot(self):
            return {"app": {"state": "running"}}

        async def command(self, name, args):
            raise AssertionError

    async with HealthServer(Source(), path):
        assert (await AppHealth(path).snapshot())["app"]["state"] == "running"
        with pytest.raises(FileExistsError):  # a live one is never taken over
            await HealthServer(Source(), path).start()
    assert not path.exists()
