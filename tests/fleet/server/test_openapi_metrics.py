"""The service endpoints: /metrics passes `promtool check metrics`; the OpenAPI document
covers every route and survives a schemathesis run (no 5xx, no response that breaks the
schema, no undocumented status or content type); /healthz."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from fleet.server.routes import ROUTES
from tests.fleet.server.simkiosk import SimKiosk

pytestmark = pytest.mark.asyncio
SQLITE_ONLY = pytest.mark.parametrize("db_url", [None], ids=["sqlite"])


async def _populate(srv, http, fleet_clock):
    site = await srv.create_site(site_id="wx-tel-01", site_type="telecom")
    kiosk = await SimKiosk.enrol(srv.url, http, await srv.create_enrolment_token(site),
                                 clock=fleet_clock)
    await kiosk.beat(1, cabinet={"door_open": True},
                     usage=[{"item_id": "id_card_progress", "completed": 2,
                             "ratings": {"satisfied": 2}}])
    await srv.issue_command(kiosk.device_id, "selftest")
    await srv.evaluate()
    return kiosk


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) "
                    "is not installed")
@SQLITE_ONLY
async def test_metrics_pass_promtool(srv, http, fleet_clock, tmp_path: Path):
    await _populate(srv, http, fleet_clock)
    async with http.get(srv.url + "/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.read()
    assert b'fleet_kiosks{site_type="telecom",state="online"} 1.0' in text
    assert b'fleet_alerts_open{rule="door_open",severity="warning"} 1.0' in text
    assert b"fleet_heartbeats_accepted_total 1.0" in text
    proc = await asyncio.create_subprocess_exec(
        "promtool", "check", "metrics", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(text), 30)
    assert proc.returncode == 0, out.decode()


@SQLITE_ONLY
async def test_openapi_covers_every_route(srv, http):
    async with http.get(srv.url + "/api/v1/openapi.json") as r:
        doc = await r.json()
    assert doc["openapi"] == "3.1.0"
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == {(r.method, r.path) for r in ROUTES}
    hb = doc["paths"]["/api/v1/device/heartbeat"]["post"]
    assert hb["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Heartbeat")
    assert set(hb["responses"]) >= {"200", "400", "401", "413", "422"}
    async with http.get(srv.url + "/healthz") as r:
        assert (await r.json()) == {"status": "ok", "database": "sqlite", "evaluator": False}
    async with http.get(srv.url + "/api/v1/no/such/route") as r:
        assert r.status == 404 and (await r.json())["error"] == "not_found"
    async with http.delete(srv.url + "/api/v1/overview") as r:
        assert r.status == 405 and (await r.json())["error"] == "method_not_allowed"


@SQLITE_ONLY
async def test_schemathesis_finds_no_server_error_or_schema_violation(srv, http, fleet_clock,
                                                                      admin, tmp_path: Path):
    await _populate(srv, http, fleet_clock)
    exe = Path(sys.executable).with_name("schemathesis")
    proc = await asyncio.create_subprocess_exec(
        str(exe), "run", srv.url + "/api/v1/openapi.json",
        "-H", f"Authorization: Bearer {admin.token}",
        # these two would revoke the token the run uses (a password change logs the user
        # out everywhere); test_ops_api covers them
        "--exclude-operation-id", "logout", "--exclude-operation-id", "update_user",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                    "response_schema_conformance",
        "--phases", "coverage,fuzzing", "-n", "3", "--seed", "20261122", "--workers", "1",
        "--no-color",
        cwd=tmp_path, env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 100)
    report = out.decode("utf-8", "replace")
    (tmp_path / "schemathesis.txt").write_text(report)
    status, _ = await admin.call("GET", "/api/v1/me")
    assert status == 200  # the run did not lock its own user out: later checks were real
    assert proc.returncode == 0, report[-4000:]
    summary = report.split("SUMMARY")[-1]
    assert "failed" not in summary.split("Test cases:")[-1], report[-4000:]
