"""The dashboard in real Chromium against a real fleet server and signed simulated kiosks.

Two kiosks report over the signed device API: one in Wuxi (320205, a bank branch) with paper
low and a broken ID card reader, one in Suzhou (320506, a post office) healthy. Ops users log
in through the form and use the pages as they would; every page is saved as a PNG in
test-artifacts/dashboard/ for a reviewer.
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from playwright.async_api import Browser, BrowserContext, Page, expect

from fleet.server.dashboard.screenshots import dashboard_screenshots, log_in
from fleet.server.routes import SESSION_COOKIE
from fleet.server.schema import alerts, commands
from fleet.server.testing import RunningFleetServer, running_fleet_server
from fleet.wire import ItemUsage
from tests.fleet.dashboard.signed_kiosk import SignedKiosk, id_reader, printer

pytestmark = pytest.mark.asyncio(loop_scope="module")
PASSWORD = "correct-horse-1"
WUXI, SUZHOU = "320205", "320506"


@dataclass
class Fleet:
    srv: RunningFleetServer
    wuxi: SignedKiosk
    suzhou: SignedKiosk


@pytest_asyncio.fixture(loop_scope="module")
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    async with running_fleet_server(tmp_path, run_evaluator=False) as srv, \
            aiohttp.ClientSession() as http:
        for name, role, regions in (("admin", "admin", ()), ("duty", "operator", ()),
                                    ("watcher", "viewer", ()),
                                    ("suzhou-ops", "operator", ("320500",))):
            await srv.add_user(name, PASSWORD, role, regions)
        bank = await srv.create_site(site_id="wx-icbc-01", site_type="bank", region=WUXI,
                                     name="工商银行无锡分行营业部", address="无锡市中山路 1 号",
                                     longitude=120.305, latitude=31.568)
        post = await srv.create_site(site_id="sz-post-03", site_type="post", region=SUZHOU,
                                     name="苏州邮政姑苏支局", longitude=120.62, latitude=31.31)
        wuxi = await SignedKiosk.enrol(srv.url, await srv.create_enrolment_token(bank),
                                       tmp_path / "kiosk-wx", http)
        suzhou = await SignedKiosk.enrol(srv.url, await srv.create_enrolment_token(post),
                                         tmp_path / "kiosk-sz", http)
        await wuxi.heartbeat([printer("low"), id_reader(fault=True)], usage=[
            ItemUsage(item_id="shebao-query", completed=42, abandoned=3, failed=1,
                      ratings={"very_satisfied": 20, "satisfied": 9, "basic": 4,
                               "dissatisfied": 2, "very_dissatisfied": 1}),
            ItemUsage(item_id="gjj-extract", completed=17, abandoned=2,
                      ratings={"very_satisfied": 6, "satisfied": 6, "basic": 2})])
        await suzhou.heartbeat(usage=[ItemUsage(item_id="shebao-query", completed=25,
                                                ratings={"very_satisfied": 11, "satisfied": 5,
                                                         "dissatisfied": 3})])
        await srv.evaluate()
        yield Fleet(srv, wuxi, suzhou)


async def _session(browser: Browser, fleet: Fleet, user: str) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    await log_in(page, fleet.srv.url, user, PASSWORD)
    return context, page


async def _open_alert(fleet: Fleet, rule: str) -> tuple[int, str | None]:
    async with fleet.srv.db.engine.connect() as conn:
        row = (await conn.execute(sa.select(alerts.c.id, alerts.c.acked_by).where(
            alerts.c.rule == rule, alerts.c.resolved_at.is_(None)))).one()
    return row.id, row.acked_by


async def test_operator_works_the_dashboard(browser: Browser, fleet: Fleet,
                                            artifacts: Path) -> None:
    url = fleet.srv.url
    context, page = await _session(browser, fleet, "duty")
    try:
        # Cookie flags: HttpOnly, SameSite=Strict; not Secure over plain http (see the
        # X-Forwarded-Proto test for https).
        cookie = next(c for c in await context.cookies() if c["name"] == SESSION_COOKIE)
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and not cookie["secure"]

        # Overview: counts by state, why kiosks are degraded, who must act.
        await page.goto(url + "/")
        main = page.locator("main")
        await expect(main.locator(".tile.state-online .count")).to_have_text("2")
        degraded = page.locator("table", has=page.locator("caption", has_text="按告警类型"))
        await expect(degraded).to_contain_text("耗材不足")
        await expect(degraded).to_contain_text("设备硬件故障")
        to_act = page.locator("table.alerts").first
        await expect(to_act).to_contain_text("网点工作人员")  # paper low: branch staff
        await expect(to_act).to_contain_text("工程师上门")  # reader fault: engineer

        # Kiosk list, filtered through the form (GET parameters).
        await page.goto(url + "/kiosks")
        await expect(page.locator("table.kiosks tbody tr")).to_have_count(2)
        await page.get_by_label("网点类型").select_option("bank")
        async with page.expect_navigation():
            await page.get_by_role("button", name=re.compile("筛选")).click()
        assert "site_type=bank" in page.url
        rows = page.locator("table.kiosks tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text(fleet.wuxi.device_id)
        await page.screenshot(path=str(artifacts / "kiosks-filtered.png"), full_page=True)
        await page.goto(url + "/kiosks?alert=supply_low")
        await expect(page.locator("table.kiosks tbody tr")).to_have_count(1)

        # Acknowledge the paper alert on the alerts page.
        alert_id, acked_by = await _open_alert(fleet, "supply_low")
        assert acked_by is None
        await page.goto(url + "/alerts")
        row = page.locator(f"#alert-{alert_id}")
        async with page.expect_navigation():
            await row.get_by_role("button", name=re.compile("确认")).click()
        await expect(page.get_by_role("status")).to_contain_text("告警已确认")
        await page.goto(url + "/alerts?status=acknowledged")
        await expect(page.locator(f"#alert-{alert_id}")).to_contain_text("duty")
        assert (await _open_alert(fleet, "supply_low"))[1] == "duty"

        # Send a screenshot command; the kiosk picks it up and answers with a PNG.
        await page.goto(url + f"/kiosks/{fleet.wuxi.device_id}")
        await expect(page.locator("main")).to_contain_text("E-READER-07")
        await expect(page.locator("main")).to_contain_text("工程师维修")
        await page.get_by_label(re.compile("^指令")).select_option("screenshot")
        async with page.expect_navigation():
            await page.get_by_role("button", name=re.compile("发送")).click()
        await expect(page.get_by_role("status")).to_contain_text("指令已排队")
        ack = await fleet.wuxi.heartbeat([printer("low"), id_reader(fault=True)])
        assert [c.name for c in ack.commands] == ["screenshot"]
        kiosk_screen = await page.screenshot()  # any real PNG stands in for the kiosk screen
        await fleet.wuxi.result(ack.commands[0].id, data={
            "png_base64": base64.b64encode(kiosk_screen).decode(), "width": 1280,
            "height": 900})
        await page.reload()
        shot = page.locator("img.screenshot")
        await expect(shot).to_have_count(1)
        await expect(page.locator(f"#cmd-{ack.commands[0].id}")).to_contain_text("已完成")
        assert await shot.evaluate("img => img.complete && img.naturalWidth") == 1280

        # Out of service needs a reason, which the kiosk receives with the command.
        await page.get_by_label(re.compile("^指令")).select_option("out_of_service")
        await page.get_by_label(re.compile("暂停原因")).fill("打印机维修中，请到 3 号窗口办理")
        async with page.expect_navigation():
            await page.get_by_role("button", name=re.compile("发送")).click()
        ack = await fleet.wuxi.heartbeat([printer("low"), id_reader(fault=True)])
        assert ack.commands[0].name == "out_of_service"
        assert ack.commands[0].args == {"reason": "打印机维修中，请到 3 号窗口办理"}
        await fleet.wuxi.result(ack.commands[0].id, detail="screen shows out of service")
        await fleet.wuxi.heartbeat([printer("low"), id_reader(fault=True)],
                                   screen="out_of_service", reason="打印机维修中")
        await page.reload()
        await expect(page.locator("main")).to_contain_text("screen shows out of service")
        # An operator may not revoke: no revoke form.
        await expect(page.get_by_role("button", name=re.compile("吊销"))).to_have_count(0)

        await page.goto(url + "/stats")
        await expect(page.locator("table.stats")).to_contain_text("shebao-query")
        await expect(page.locator("table.stats tbody tr").first).to_contain_text("67")
        await page.goto(url + "/stats?group_by=region")
        await expect(page.locator("table.stats")).to_contain_text(SUZHOU)
        await page.screenshot(path=str(artifacts / "stats-by-region.png"), full_page=True)

        await page.goto(url + "/map")
        await expect(page.locator("table.regions tbody tr")).to_have_count(2)
        geo = page.get_by_role("link", name="/api/v1/map.geojson")
        response = await page.request.get(url + await geo.get_attribute("href"))
        assert response.ok and len((await response.json())["features"]) == 2

        # Log out: the session is gone server-side, not just the cookie.
        async with page.expect_navigation():
            await page.get_by_role("button", name=re.compile("退出")).click()
        await expect(page.get_by_role("status")).to_contain_text("已退出登录")
        await context.add_cookies([{**cookie}])
        await page.goto(url + "/kiosks")
        assert "/login?next=/kiosks" in page.url
    finally:
        await context.close()

    # The admin revokes the Suzhou kiosk from its page; its next heartbeat is refused.
    context, page = await _session(browser, fleet, "admin")
    try:
        await page.goto(url + f"/kiosks/{fleet.suzhou.device_id}")
        await page.get_by_label(re.compile("确认")).fill(fleet.suzhou.device_id)
        async with page.expect_navigation():
            await page.get_by_role("button", name=re.compile("吊销")).click()
        await expect(page.get_by_role("status")).to_contain_text("终端已吊销")
        status, body = await fleet.suzhou.heartbeat_status()
        assert status == 401 and body["error"] == "device_revoked"
    finally:
        await context.close()

    # Every page, as the demo takes them, for the reviewer.
    written = await dashboard_screenshots(url, "admin", PASSWORD, artifacts, browser=browser)
    assert [p.name for p in written] == ["login.png", "overview.png", "kiosks.png",
                                         "alerts.png", "stats.png", "map.png", "kiosk.png"]
    assert all(p.stat().st_size > 10_000 for p in written)


async def test_viewer_scope_and_forged_posts(browser: Browser, fleet: Fleet,
                                             artifacts: Path) -> None:
    url = fleet.srv.url
    alert_id, _ = await _open_alert(fleet, "supply_low")
    context, page = await _session(browser, fleet, "watcher")
    try:
        await page.goto(url + f"/kiosks/{fleet.wuxi.device_id}")
        await expect(page.locator("main")).to_contain_text("E-READER-07")
        for forbidden in ("发送", "吊销", "确认"):
            await expect(page.get_by_role("button", name=re.compile(forbidden))).to_have_count(0)
        await page.screenshot(path=str(artifacts / "kiosk-viewer.png"), full_page=True)
        await page.goto(url + "/alerts")
        await expect(page.locator(f"#alert-{alert_id}")).to_contain_text("未确认")
        csrf = await page.locator("input[name=csrf_token]").first.input_value()

        # A forged acknowledgement with the viewer's own valid CSRF token: refused by role.
        forged = await page.request.post(url + f"/alerts/{alert_id}/ack",
                                         form={"csrf_token": csrf}, max_redirects=0)
        assert forged.status == 403 and "operator" in await forged.text()
        forged = await page.request.post(url + f"/kiosks/{fleet.wuxi.device_id}/commands",
                                         form={"csrf_token": csrf, "name": "restart_app"},
                                         max_redirects=0)
        assert forged.status == 403
    finally:
        await context.close()

    context, page = await _session(browser, fleet, "duty")
    try:
        # CSRF: a missing or wrong token is refused even for an operator.
        for form in ({}, {"csrf_token": "0" * 64}):
            refused = await page.request.post(url + f"/alerts/{alert_id}/ack", form=form,
                                              max_redirects=0)
            assert refused.status == 403 and "CSRF" in await refused.text()
        await page.goto(url + f"/alerts/{alert_id}/ack")  # GET is not an action
        assert (await _open_alert(fleet, "supply_low"))[1] is None
        async with fleet.srv.db.engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(commands)) == 0
        # A browser page with a wrong token, as a reviewer sees the refusal.
        await page.set_content(
            f'<form method="post" action="{url}/alerts/{alert_id}/ack">'
            '<input name="csrf_token" value="forged"><button>go</button></form>')
        async with page.expect_navigation():
            await page.get_by_role("button", name="go").click()
        await expect(page.get_by_role("alert")).to_contain_text("CSRF")
        await page.screenshot(path=str(artifacts / "csrf-refused.png"), full_page=True)
    finally:
        await context.close()

    # A Suzhou-scoped operator never sees the Wuxi kiosk, its alerts or its statistics.
    context, page = await _session(browser, fleet, "suzhou-ops")
    try:
        await page.goto(url + "/")
        await expect(page.locator(".tile.state-online .count")).to_have_text("1")
        await page.goto(url + "/kiosks")
        rows = page.locator("table.kiosks tbody tr")
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text(fleet.suzhou.device_id)
        await page.goto(url + "/alerts?status=all")
        await expect(page.locator("main")).not_to_contain_text(fleet.wuxi.device_id)
        await page.goto(url + "/stats?group_by=region")
        await expect(page.locator("table.stats")).not_to_contain_text(WUXI)
        await page.goto(url + "/map")
        await expect(page.locator("table.regions tbody tr")).to_have_count(1)
        response = await page.goto(url + f"/kiosks/{fleet.wuxi.device_id}")
        assert response is not None and response.status == 404
        csrf = await page.locator("input[name=csrf_token]").first.input_value()
        refused = await page.request.post(url + f"/alerts/{alert_id}/ack",
                                          form={"csrf_token": csrf}, max_redirects=0)
        assert refused.status == 404
        refused = await page.request.post(url + f"/kiosks/{fleet.wuxi.device_id}/commands",
                                          form={"csrf_token": csrf, "name": "restart_app"},
                                          max_redirects=0)
        assert refused.status == 404
        await page.goto(url + "/kiosks")
        await page.screenshot(path=str(artifacts / "kiosks-suzhou-scope.png"), full_page=True)
    finally:
        await context.close()
    assert (await _open_alert(fleet, "supply_low"))[1] is None
