"""The wall clock jumping (an NTP step, a dead RTC battery, a technician setting the time),
forward and backward, injected through the components' clock parameters — the platform,
the fleet server and the rest of the process keep the true time, as they would.

- The session machine runs on the monotonic clock only: a wall clock a day off either way
  during a whole journey neither cuts the session short nor stretches it; its idle timeout
  still fires at exactly idle + warning seconds of monotonic time.
- The outbox sender schedules retries on the wall clock (a stored `next_attempt_at` must mean
  the same after a reboot). Jumped back a day, a record waiting for its retry is still sent
  within `max_delay` (`Outbox.next_due`'s horizon); jumped forward, retries fall due at once.
  Either way every submission ends as exactly one case at the sandbox platform, and no key is
  sent again after it was answered.
- The fleet agent's heartbeats carry the kiosk's clock: two minutes ahead, the real fleet
  server opens a `clock_skew` alert; back in step, it resolves; two minutes behind, it
  opens again; back, resolved again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from kiosk.headless import journey
from kiosk.items.testing import kiosk_config
from kiosk.journey import JourneyEngine, OutboxQueue, Outcome
from kiosk.outbox import OutboxSender
from kiosk.platform.api import PlatformUnavailable
from kiosk.services import open_services
from kiosk.session import EndReason, SessionMachine, State, Timing
from tests.conftest import FakeClock
from tests.reliability.conftest import until

DAY = 86_400.0
SUBMIT = "flexible_employment_enrol"


class JumpingWall:
    """time.time with an offset the test sets: `wall.offset = -DAY` is the jump."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_session_timing_ignores_the_wall_clock(monkeypatch):
    mono = FakeClock()
    wall = JumpingWall()
    monkeypatch.setattr(time, "time", wall)  # anything that looked at the wall would see it
    machine = SessionMachine(Timing(idle_s=60, warning_s=15, hard_cap_s=900), clock=mono)
    machine.start()
    for jump in (DAY, -DAY, 3600.0, -3600.0):
        wall.offset = jump
        mono.advance(10)
        machine.tick()
        assert machine.state is State.IDENTIFY, f"cut short by a wall jump of {jump:+.0f} s"
        machine.activity()  # a touch
    mono.advance(60 + 15 - 0.01)
    machine.tick()
    assert machine.state is State.IDENTIFY, "ended early"
    mono.advance(0.02)
    machine.tick()
    assert machine.state is State.ATTRACT and machine.session is None  # not extended either


@pytest.mark.asyncio
async def test_outbox_and_journeys_across_wall_clock_jumps(tmp_path):
    wall = JumpingWall()
    async with open_services(kiosk_config(tmp_path), devices={"qr", "receipt_printer"},
                             run_sender=False) as services:
        calls: list[tuple[str, bool]] = []  # (idempotency key, answered)
        failing: set[str] = set()

        async def submit(application, *, idempotency_key):
            """The real platform client, failing each key's first attempt (a network cut)."""
            if idempotency_key not in failing:
                failing.add(idempotency_key)
                calls.append((idempotency_key, False))
                raise PlatformUnavailable("cut")
            receipt = await services.platform.submit(application, idempotency_key=idempotency_key)
            calls.append((idempotency_key, True))
            return receipt

        sender = OutboxSender(services.outbox, submit, base_delay=0.5, max_delay=2.0,
                              jitter=0.0, clock=wall)
        running = asyncio.create_task(sender.run())
        try:
            refs = []
            for jump, citizen in ((-DAY, "c01"), (DAY, "c03"), (-3600.0, "c04")):
                wall.offset = 0.0
                machine = SessionMachine(clock=time.monotonic)
                ends = []
                machine.subscribe(lambda event: ends.append(event))
                ticks = iter(range(1000))

                def jumping() -> float:  # the wall jumps in the middle of the journey
                    if next(ticks) == 1:
                        wall.offset = jump
                    return wall()

                engine = JourneyEngine(services.platform, OutboxQueue(services.outbox, sender),
                                       services.outputs(), machine=machine, wall=jumping)
                started = time.monotonic()
                report = await journey(services, SUBMIT, citizen, "code", engine=engine)
                assert time.monotonic() - started < 30
                # The first attempt failed: "queued", with the local reference, never lost.
                assert report.outcome is Outcome.QUEUED, report.failure
                assert report.end_reason is EndReason.COMPLETED  # not cut short
                assert machine.session is None and machine.state is State.ATTRACT
                refs.append(report.local_ref)

                async def sent(ref=report.local_ref) -> bool:
                    return (await services.outbox.record(ref)).state == "sent"

                # Whatever the jump, the retry lands within a few max_delays.
                await until(sent, 4 * sender.max_delay + 5, f"{report.local_ref} sent after {jump:+.0f} s")
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        records = [await services.outbox.record(ref) for ref in refs]
        keys = [r.idempotency_key for r in records]
        assert len(set(keys)) == 3
        answered = [key for key, ok in calls if ok]
        assert sorted(answered) == sorted(keys), "a key was sent again after its answer"
        cases = _cases(services)
        assert sorted(cases) == sorted(r.case_number for r in records)  # one case each


def _cases(services) -> list[str]:
    db_path = Path(services.config.resolve(services.config.paths.data_dir)) / "sandbox" / "sandbox.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return [c for (c,) in db.execute("SELECT case_number FROM cases WHERE item_id = ?", (SUBMIT,))]


@pytest.mark.asyncio
async def test_heartbeat_clock_skew_alert_fires_and_clears(tmp_path, monkeypatch):
    import fleet.agent.server_client as server_client
    import fleet.agent.system as system
    from fleet.agent.agent import Agent
    from fleet.agent.app_health import AppHealth
    from fleet.agent.server_client import FleetClient
    from fleet.agent.settings import AgentSettings
    from fleet.agent.store import AgentStore
    from fleet.server import schema
    from fleet.server.testing import running_fleet_server
    from provisioning.device import DeviceIdentity, enrol
    from provisioning.signing import RequestCounter

    wall = JumpingWall()
    # The kernel's NTP flag is its own input (a container here says "unsynchronised");
    # this test is about the clock's value, so the flag says synchronised throughout.
    monkeypatch.setattr(system, "clock_synced", lambda: True)

    class Clock:  # the agent's requests are signed with the same (jumped) clock
        @staticmethod
        def time() -> float:
            return wall()

    monkeypatch.setattr(server_client, "time", Clock)
    async with running_fleet_server(tmp_path, evaluate_every_s=0.2) as srv:
        site = await srv.create_site()
        state = tmp_path / "agent"
        await enrol(srv.url, await srv.create_enrolment_token(site), state)
        identity = DeviceIdentity.load(state)
        settings = AgentSettings(state_dir=state, health_socket=tmp_path / "none.sock",
                                 data_dir=tmp_path, server_url=srv.url, interval_s=0.2)
        client = FleetClient(identity, RequestCounter(state / "counter"), srv.url, timeout_s=3)
        store = AgentStore(state / "agent.sqlite3")
        agent = Agent(settings, client=client, store=store, health=AppHealth(settings.health_socket),
                      clock=wall)
        stop = asyncio.Event()
        running = asyncio.create_task(agent.run(stop))

        async def skew_alert(open_: bool):
            a = schema.alerts
            async with srv.db.engine.connect() as conn:
                rows = (await conn.execute(sa.select(a).where(
                    a.c.device_id == identity.device_id, a.c.rule == "clock_skew"))).mappings().all()
            opened = [r for r in rows if r["resolved_at"] is None]
            return rows if (bool(opened) == open_) else None

        try:
            await until(lambda: _sent(agent, 2), 10, "heartbeats in step")
            assert await skew_alert(False) is not None
            history = []
            for offset in (120.0, 0.0, -120.0, 0.0):
                wall.offset = offset
                rows = await until(lambda: skew_alert(offset != 0.0), 10,
                                   f"clock_skew {'open' if offset else 'resolved'} at {offset:+.0f} s")
                history.append((offset, len(rows)))
            opened = [r for r in rows if r["resolved_at"] is not None]
            assert len(opened) == 2, rows  # two occurrences, both resolved
            assert any("+120" in r["message"] for r in rows) and any("-120" in r["message"] for r in rows)
        finally:
            stop.set()
            await asyncio.wait_for(running, 10)
            await client.close()
            store.close()


async def _sent(agent, n: int) -> bool:
    return agent.sent >= n
