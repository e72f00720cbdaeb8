"""The ops API: login, roles, region scopes, sites and tokens, kiosk lists and filters,
revocation, the map. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.fleet.server.conftest import ADMIN_PASSWORD, as_user
from tests.fleet.server.simkiosk import SimKiosk

pytestmark = pytest.mark.asyncio

SITE = {"site_id": "nj-hall-01", "site_type": "hall", "name": "南京市政务服务中心",
        "address": "江东中路265号", "region": "320105", "longitude": 118.73, "latitude": 32.0}


async def test_login_logout_and_bad_credentials(srv, http):
    async def login(user, password):
        async with http.post(srv.url + "/api/v1/auth/login",
                             json={"username": user, "password": password}) as r:
            return r.status, await r.json()

    status, body = await login("admin", "wrong-password")
    assert status == 401 and body["error"] == "bad_credentials"
    status, body = await login("nobody", "whatever1")
    assert status == 401 and body["error"] == "bad_credentials"
    status, body = await login("admin", ADMIN_PASSWORD)
    assert status == 200 and body["user"] == {"name": "admin", "role": "admin", "regions": []}
    headers = {"Authorization": f"Bearer {body['token']}"}
    async with http.get(srv.url + "/api/v1/me", headers=headers) as r:
        assert r.status == 200
    async with http.post(srv.url + "/api/v1/auth/logout", headers=headers) as r:
        assert r.status == 200
    async with http.get(srv.url + "/api/v1/me", headers=headers) as r:
        assert r.status == 401 and (await r.json())["error"] == "unauthenticated"
    async with http.get(srv.url + "/api/v1/kiosks") as r:
        assert r.status == 401


async def test_roles(srv, http, admin, kiosk):
    viewer = await as_user(srv, http, "v1", "viewer")
    operator = await as_user(srv, http, "o1", "operator")
    assert (await viewer.call("GET", "/api/v1/kiosks"))[0] == 200
    status, body = await viewer.call("POST", f"/api/v1/kiosks/{kiosk.device_id}/commands",
                                     {"name": "restart_app"})
    assert status == 403
    status, body = await operator.call("POST", f"/api/v1/kiosks/{kiosk.device_id}/commands",
                                       {"name": "restart_app"})
    assert status == 201 and body["name"] == "restart_app"
    for ops in (viewer, operator):
        assert (await ops.call("POST", "/api/v1/sites", SITE))[0] == 403
        assert (await ops.call("GET", "/api/v1/users"))[0] == 403
        assert (await ops.call("POST", f"/api/v1/kiosks/{kiosk.device_id}/revoke"))[0] == 403
    status, body = await admin.call("POST", "/api/v1/users",
                                    {"name": "o2", "password": "long-enough", "role": "operator",
                                     "regions": ["320200"]})
    assert status == 201, body
    assert (await admin.call("POST", "/api/v1/users", {"name": "o2", "password": "long-enough",
                                                        "role": "viewer"}))[0] == 409
    users = {u["name"]: u for u in (await admin.get("/api/v1/users"))["users"]}
    assert users["o2"]["regions"] == ["320200"] and users["o2"]["role"] == "operator"
    assert (await admin.call("PATCH", "/api/v1/users/o2", {"disabled": True}))[0] == 200
    assert (await admin.call("DELETE", "/api/v1/users/admin"))[0] == 409
    assert (await admin.call("DELETE", "/api/v1/users/o2"))[0] == 200


async def test_region_scopes_filter_everything(srv, http, admin, kiosk, fleet_clock):
    status, _ = await admin.call("POST", "/api/v1/sites", SITE)
    assert status == 201
    status, tok = await admin.call("POST", "/api/v1/sites/nj-hall-01/enrolment-tokens",
                                   {"ttl_s": 600})
    assert status == 201 and tok["token"].startswith("kenr_")
    nanjing = await SimKiosk.enrol(srv.url, http, tok["token"], clock=fleet_clock)
    await nanjing.beat(1, cabinet={"door_open": True})
    await kiosk.beat(1, cabinet={"door_open": True})
    await srv.evaluate()

    wuxi = await as_user(srv, http, "wuxi", "operator", ("320200",))  # sees 320205
    kiosks = await wuxi.get("/api/v1/kiosks")
    assert [k["device_id"] for k in kiosks["kiosks"]] == [kiosk.device_id]
    alerts = await wuxi.get("/api/v1/alerts")
    assert {a["device_id"] for a in alerts["alerts"]} == {kiosk.device_id}
    assert (await wuxi.get("/api/v1/overview"))["kiosks"] == 1
    assert [f["id"] for f in (await wuxi.get("/api/v1/map.geojson"))["features"]] == [
        kiosk.device_id]
    assert [s["site_id"] for s in (await wuxi.get("/api/v1/sites"))["sites"]] == ["wx-icbc-01"]
    assert (await wuxi.call("GET", f"/api/v1/kiosks/{nanjing.device_id}"))[0] == 404
    theirs = (await admin.get(f"/api/v1/alerts?device_id={nanjing.device_id}"))["alerts"][0]
    assert (await wuxi.call("POST", f"/api/v1/alerts/{theirs['id']}/ack"))[0] == 404
    assert (await wuxi.call("POST", f"/api/v1/kiosks/{nanjing.device_id}/commands",
                            {"name": "restart_app"}))[0] == 404

    province = await as_user(srv, http, "js", "viewer", ("320000",))
    assert (await province.get("/api/v1/kiosks"))["total"] == 2
    assert (await admin.get("/api/v1/kiosks?region=3201"))["kiosks"][0]["device_id"] == (
        nanjing.device_id)


async def test_kiosk_list_filters_and_detail(srv, admin, kiosk, http, fleet_clock):
    await admin.call("POST", "/api/v1/sites", SITE)
    _, tok = await admin.call("POST", "/api/v1/sites/nj-hall-01/enrolment-tokens", {})
    hall = await SimKiosk.enrol(srv.url, http, tok["token"], clock=fleet_clock)
    await hall.beat(1)
    await kiosk.beat(1, devices=[{"name": "receipt", "device_class": "receipt_printer",
                                  "lifecycle": "enabled", "state": "online",
                                  "supplies": {"paper": "out"}}])
    await srv.evaluate()
    assert (await admin.get("/api/v1/kiosks?site_type=hall"))["kiosks"][0]["device_id"] == (
        hall.device_id)
    assert (await admin.get("/api/v1/kiosks?alert=supply_out"))["total"] == 1
    assert (await admin.get("/api/v1/kiosks?alert=any"))["total"] == 1
    assert (await admin.get("/api/v1/kiosks?health=critical"))["kiosks"][0]["device_id"] == (
        kiosk.device_id)
    assert (await admin.get("/api/v1/kiosks?state=online"))["total"] == 2
    listed = await admin.get("/api/v1/kiosks")
    assert listed["kiosks"][0]["device_id"] == kiosk.device_id  # worst first
    assert (await admin.call("GET", "/api/v1/kiosks?state=sleeping"))[0] == 422
    assert (await admin.call("GET", "/api/v1/kiosks?limit=0"))[0] == 422
    detail = await admin.get(f"/api/v1/kiosks/{kiosk.device_id}")
    assert detail["site"]["name"] == "工商银行无锡分行营业部"
    assert detail["heartbeats"][0]["seq"] == 1
    assert detail["last_heartbeat"]["versions"]["app"] == "1.0.0"
    assert detail["alerts"][0]["rule"] == "supply_out"
    assert (await admin.call("GET", "/api/v1/kiosks/nope"))[0] == 404


async def test_revoke_through_the_api_and_revoked_credentials_in_acks(srv, admin, kiosk):
    await kiosk.beat(1)
    status, _ = await admin.call("POST", "/api/v1/credentials/revoke",
                                 {"credential_id": "maint-0042", "note": "lost card"})
    assert status == 200
    status, body = await kiosk.beat(2)
    assert body["revoked_credentials"] == ["maint-0042"]
    assert (await admin.call("POST", f"/api/v1/kiosks/{kiosk.device_id}/revoke"))[0] == 200
    assert (await admin.call("POST", f"/api/v1/kiosks/{kiosk.device_id}/revoke"))[0] == 409
    status, body = await kiosk.beat(3)
    assert status == 401 and body["error"] == "device_revoked"
    overview = await admin.get("/api/v1/overview")
    assert overview["revoked"] == 1 and overview["kiosks"] == 0


async def test_sites_crud(srv, admin):
    assert (await admin.call("POST", "/api/v1/sites", SITE))[0] == 201
    assert (await admin.call("POST", "/api/v1/sites", SITE))[0] == 409
    assert (await admin.call("POST", "/api/v1/sites", SITE | {"region": "32"}))[0] == 422
    changed = SITE | {"name": "南京市民中心"}
    assert (await admin.call("PUT", "/api/v1/sites/nj-hall-01", changed))[0] == 200
    assert (await admin.get("/api/v1/sites/nj-hall-01"))["name"] == "南京市民中心"
    tokens = await admin.get("/api/v1/enrolment-tokens")
    assert tokens["tokens"] == []
    assert (await admin.call("DELETE", "/api/v1/sites/nj-hall-01"))[0] == 200
    assert (await admin.call("GET", "/api/v1/sites/nj-hall-01"))[0] == 404


async def test_dashboard_session_cookie_reads_but_does_not_change(srv, http, kiosk):
    from fleet.server import users

    user = await users.check_credentials(srv.db, "admin", ADMIN_PASSWORD)
    session, _ = await users.issue_token(srv.db, user, "session", ttl_s=600, now=srv.now())
    cookies = {"fleet_session": session}
    async with http.get(srv.url + "/api/v1/overview", cookies=cookies) as r:
        assert r.status == 200
    async with http.post(srv.url + f"/api/v1/kiosks/{kiosk.device_id}/revoke",
                         cookies=cookies) as r:
        assert r.status == 401
    async with http.get(srv.url + "/api/v1/overview",
                        headers={"Authorization": f"Bearer {session}"}) as r:
        assert r.status == 401  # a session id is not a bearer token


async def test_command_arguments_are_checked(srv, admin, kiosk):
    path = f"/api/v1/kiosks/{kiosk.device_id}/commands"
    status, body = await admin.call("POST", path, {"name": "out_of_service",
                                                   "args": {"reason": "更换打印纸"}})
    assert status == 201 and body["args"] == {"reason": "更换打印纸"}
    status, body = await admin.call("POST", path, {"name": "restart_app", "args": {"now": 1}})
    assert status == 422 and "now" in body["detail"]
    status, body = await admin.call("POST", path, {"name": "apply_bundle",
                                                   "args": {"kind": "firmware", "bundle": {}}})
    assert status == 422
    status, body = await admin.call("POST", path, {"name": "format_disk"})
    assert status == 422
