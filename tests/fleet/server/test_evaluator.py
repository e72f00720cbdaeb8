"""One alert evaluator at a time: the PostgreSQL advisory lock, its hand-over when the leader
goes away, and the evaluator's own loop raising an offline alert without help."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from fleet.server.db import open_database
from fleet.server.evaluator import Leadership
from fleet.server.testing import running_fleet_server
from tests.fleet.server.conftest import MovableClock
from tests.fleet.server.simkiosk import SimKiosk

pytestmark = pytest.mark.asyncio


async def test_advisory_lock_elects_one_leader_and_hands_over(postgres):
    url = postgres.create_database()
    a, b = open_database(url), open_database(url)
    try:
        first, second = Leadership(a), Leadership(b)
        assert await first.acquire() is True
        assert await second.acquire() is False
        assert await first.acquire() is True  # still holding it
        await first.release()
        assert await second.acquire() is True
        assert await first.acquire() is False
        # the leader's connection dies (process killed, network cut): the lock goes with it
        async with a.engine.connect() as conn:
            await conn.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted"))
            await conn.commit()
        deadline = time.monotonic() + 5
        while not await first.acquire():
            assert time.monotonic() < deadline, "the lock was never released"
            await asyncio.sleep(0.05)
        # the old leader notices on its next try that it lost the lock, and stays a follower
        assert await second.acquire() is False and not second.is_leader
        await first.release()
        await second.release()
    finally:
        await a.dispose()
        await b.dispose()


async def test_sqlite_workers_elect_one_leader_with_a_file_lock(tmp_path):
    db = open_database(f"sqlite+aiosqlite:///{tmp_path}/f.db")
    try:
        first, second = Leadership(db), Leadership(db)
        assert await first.acquire() and first.is_leader
        assert not await second.acquire() and not second.is_leader
        await first.release()
        assert await second.acquire()
        await second.release()
    finally:
        await db.dispose()


@pytest.mark.parametrize("db_url", [None], ids=["sqlite"])
async def test_the_evaluator_loop_raises_the_offline_alert_by_itself(tmp_path, http, db_url):
    clock = MovableClock()
    async with running_fleet_server(tmp_path, clock=clock, evaluate_every_s=0.05) as srv:
        site = await srv.create_site(site_id="wx-hall-09", site_type="hall")
        kiosk = await SimKiosk.enrol(srv.url, http, await srv.create_enrolment_token(site),
                                     clock=clock)
        assert (await kiosk.beat(1))[0] == 200
        clock.advance(91)  # three 30 s intervals and a second
        deadline = time.monotonic() + 5
        from fleet.server.schema import alerts
        while True:
            async with srv.db.engine.connect() as conn:
                rules = (await conn.execute(sa.select(alerts.c.rule).where(
                    alerts.c.resolved_at.is_(None)))).scalars().all()
            if rules:
                break
            assert time.monotonic() < deadline, "no offline alert from the evaluator loop"
            await asyncio.sleep(0.05)
        assert rules == ["offline"]
        async with http.get(srv.url + "/healthz") as r:
            assert (await r.json())["evaluator"] is True
