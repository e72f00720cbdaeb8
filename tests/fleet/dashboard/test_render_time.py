"""Server time to render the overview and kiosk list with 10,000 kiosks (goal: ≤ 1 s each),
on SQLite and on a throwaway PostgreSQL.

The fleet is bulk-inserted straight into the database (2,000 sites in 8 regions, a mix of
states and health, ~2,400 open alerts), then a logged-in client asks for each page and reads
the dashboard's own `Server-Timing` header (queries plus rendering, without the network).
The figures are printed as one JSON line per database (run with -s to see them).
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from fleet.server.db import Database
from fleet.server.schema import alerts, devices, sites
from fleet.server.testing import running_fleet_server

pytestmark = pytest.mark.asyncio
KIOSKS = 10_000
SITES = 2_000
REGIONS = ("320102", "320205", "320211", "320506", "320583", "321002", "321102", "320903")
LIMIT_MS = 1000.0
PAGES = ("/", "/kiosks", "/kiosks?page=150", "/kiosks?state=offline&alert=any",
         "/kiosks?region=3205&site_type=post", "/alerts", "/map")


async def seed(db: Database, now: float) -> None:
    rnd = random.Random(7)
    site_rows = [{"id": f"s{i:05d}", "site_type": ("bank", "post", "telecom", "hall")[i % 4],
                  "name": f"网点 {i}", "address": "", "region": REGIONS[i % len(REGIONS)],
                  "longitude": 119 + rnd.random() * 2, "latitude": 31 + rnd.random() * 2,
                  "created_at": now} for i in range(SITES)]
    device_rows, alert_rows = [], []
    for i in range(KIOSKS):
        state = rnd.choices(("online", "late", "offline", "new"), (85, 5, 8, 2))[0]
        health = "critical" if state == "offline" else rnd.choices(
            ("ok", "warning", "critical"), (80, 15, 5))[0]
        device_id = f"k{i:05d}"
        device_rows.append({
            "id": device_id, "site_id": f"s{i % SITES:05d}", "certificate_pem": "-",
            "public_key_pem": "-", "enrolled_at": now - 86400, "state": state,
            "state_since": now - 600, "last_seen": None if state == "new" else now - 20,
            "health": health, "app_state": "running", "screen": "attract",
            "app_version": "1.4.2", "catalogue_version": "2026.11.3"})
        if state == "offline":
            alert_rows.append(_alert(device_id, "offline", "", "critical", "ops", now))
        if health == "warning":
            alert_rows.append(_alert(device_id, "supply_low", "receipt.paper", "warning",
                                     "branch_staff", now))
        elif health == "critical" and state != "offline":
            alert_rows.append(_alert(device_id, "device_error", "idcard", "critical",
                                     "engineer", now))
    async with db.engine.begin() as conn:
        await conn.execute(sites.insert(), site_rows)
        for start in range(0, KIOSKS, 2000):
            await conn.execute(devices.insert(), device_rows[start:start + 2000])
        await conn.execute(alerts.insert(), alert_rows)
    if not db.is_sqlite:
        # What autovacuum does shortly after a bulk load in production. Without statistics
        # PostgreSQL plans the "kiosks with an open alert" filter as a nested loop (~1.2 s
        # measured here) instead of a hash join (~15 ms).
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("ANALYZE"))


def _alert(device_id: str, rule: str, subject: str, severity: str, actor: str,
           now: float) -> dict[str, object]:
    return {"dedupe_key": f"{device_id}:{rule}:{subject}", "device_id": device_id, "rule": rule,
            "subject": subject, "severity": severity, "actor": actor,
            "message": f"{rule} / {subject}", "first_seen": now - 300, "last_seen": now - 20}


async def test_pages_render_within_a_second_with_10000_kiosks(
        tmp_path: Path, db_url: str | None) -> None:
    async with running_fleet_server(tmp_path, db_url, run_evaluator=False) as srv:
        await srv.add_user("ops", "render-time-1", "operator")
        started = time.perf_counter()
        await seed(srv.db, srv.now())
        seed_s = time.perf_counter() - started
        jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            login = await (await http.get(srv.url + "/login")).text()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', login)
            assert csrf is not None
            async with http.post(srv.url + "/login", data={
                    "username": "ops", "password": "render-time-1",
                    "csrf_token": csrf.group(1)}, allow_redirects=False) as resp:
                assert resp.status == 303
            figures: dict[str, dict[str, float]] = {}
            for path in PAGES:
                runs = []
                for _ in range(3):  # the first run includes compiling the template
                    async with http.get(srv.url + path) as resp:
                        body = await resp.text()
                        assert resp.status == 200, body[:500]
                        runs.append(float(resp.headers["Server-Timing"].split("dur=")[1]))
                figures[path] = {"first_ms": runs[0], "best_ms": min(runs), "worst_ms": max(runs)}
            assert "共 10000 条" in (await (await http.get(srv.url + "/kiosks")).text())
    print(json.dumps({"database": "sqlite" if db_url is None else "postgresql",
                      "kiosks": KIOSKS, "seed_s": round(seed_s, 2), "pages": figures},
                     ensure_ascii=False))
    slow = {p: f for p, f in figures.items() if f["worst_ms"] > LIMIT_MS}
    assert not slow, f"pages over {LIMIT_MS} ms: {slow}"
