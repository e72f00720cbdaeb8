"""The agent end to end: a kiosk enrolled with the real fleet server
(fleet/server/testing.py), the real health endpoint over the real Services, and the agent
sending signed heartbeats — through a TCP relay the test can cut, to take the server away.

In-process: heartbeats, usage counted once, commands round-trip with results, the server
gone → buffered → one summary when back, going_offline on stop. As processes (`python -m
fleet.agent.main` supervising a kiosk app): the app SIGKILLed → "down" reported → restarted,
restart_app on command, SIGTERM → going_offline and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

fleet_testing = pytest.importorskip("fleet.server.testing", reason="the fleet server's test harness")

from fleet.agent.main import run_agent  # noqa: E402
from fleet.agent.settings import AgentSettings  # noqa: E402
from fleet.agent.store import AgentStore  # noqa: E402
from fleet.server import schema  # noqa: E402
from fleet.server.context import KEYS  # noqa: E402
from kiosk.config import parse  # noqa: E402
from kiosk.health import HealthServer, ServicesHealthSource  # noqa: E402
from kiosk.services import open_services  # noqa: E402
from kiosk.telemetry import Telemetry  # noqa: E402
from provisioning.device import enrol  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SITE = dict(
    site_id="wx-bank-01", site_type="bank", name="无锡某银行网点", address="无锡市梁溪区",
    region="320213", longitude=120.3, latitude=31.57,
)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """A TCP relay in front of the fleet server; `down()` makes the server unreachable
    (connections refused, open ones cut), `up()` brings it back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.swallow = 0  # answers to lose: the server has the request, the kiosk never hears

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.close()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader, writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src, dst, answers: bool):
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if answers and self.swallow > 0:
                        self.swallow -= 1
                        writer.close()
                        up_writer.close()
                        return
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))
        self._writers.difference_update({writer, up_writer})


async def until(predicate, timeout=15.0, what="condition"):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def rows(srv, query):
    async with srv.db.engine.connect() as conn:
        return (await conn.execute(query)).mappings().all()


def heartbeats_of(device_id):
    h = schema.heartbeats
    return sa.select(h).where(h.c.device_id == device_id).order_by(h.c.seq)


def command_of(command_id):
    return sa.select(schema.commands).where(schema.commands.c.id == command_id)


async def enrolled(srv, state_dir: Path):
    site_id = await srv.create_site(**SITE)
    token = await srv.create_enrolment_token(site_id)
    return await enrol(srv.url, token, state_dir)


@pytest.mark.asyncio
async def test_agent_in_process(tmp_path, short_dir, actions):
    async with fleet_testing.running_fleet_server(tmp_path) as srv:
        identity = await enrolled(srv, short_dir / "state")
        device = identity.device_id
        relay = Relay(int(srv.url.rsplit(":", 1)[1].split("/")[0]))
        await relay.up()
        config = parse(CONFIG.format(data=short_dir / "data"))
        telemetry = Telemetry(short_dir / "data" / "telemetry.sqlite3")
        stop = asyncio.Event()
        async with open_services(config, run_sender=False) as services:
            source = ServicesHealthSource(services, telemetry, actions, time.time())
            async with HealthServer(source, short_dir / "health.sock"):
                settings = AgentSettings(
                    state_dir=short_dir / "state", health_socket=short_dir / "health.sock",
                    data_dir=short_dir / "data", server_url=relay.url, interval_s=0.3,
                )
                agent = asyncio.create_task(run_agent(settings, stop))
                try:
                    # Heartbeats arrive, with the devices and the app's state.
                    beats = await until(
                        lambda: _at_least(srv, heartbeats_of(device), 2), what="heartbeats"
                    )
                    assert {b["kind"] for b in beats} == {"heartbeat"}
                    assert {b["app_state"] for b in beats} == {"running"}
                    # In a device session: one signed handshake, then MACs.
                    auth = srv.app[KEYS].stats
                    assert auth.sessions_opened == 1 and auth.session >= 2, auth
                    status = await rows(srv, sa.select(schema.device_status).where(
                        schema.device_status.c.device_id == device))
                    assert {s["name"] for s in status} == {"receipt_printer", "qr"}

                    # Usage: counted once, whatever the heartbeat rhythm.
                    for _ in range(2):
                        telemetry.journey_started("tax_certificate")
                        telemetry.journey_finished("tax_certificate", "completed")
                    telemetry.rated("tax_certificate", "very_satisfied")
                    await until(lambda: _completed(srv, "tax_certificate", 2), what="usage 2")

                    # Commands round-trip with their results.
                    cid = await srv.issue_command(device, "out_of_service", {"reason": "更换纸卷"})
                    done = await until(lambda: _finished(srv, cid), what="out_of_service result")
                    assert done["status"] == "done", done
                    assert actions.screen == "out_of_service"
                    cid = await srv.issue_command(device, "selftest", {})
                    done = await until(lambda: _finished(srv, cid), what="selftest result")
                    assert done["status"] == "done", done
                    devices = json.loads(done["data"])["devices"]
                    assert {d["device"] for d in devices} == {"receipt_printer", "qr"}
                    cid = await srv.issue_command(device, "restart_app", {})
                    done = await until(lambda: _finished(srv, cid), what="restart_app result")
                    # Not supervised and no restart command: refused, saying why.
                    assert done["status"] == "rejected" and "restart command" in done["detail"]

                    # Answers lost on the way back (the server has the heartbeat, the agent
                    # does not know): the same heartbeat goes again and counts once.
                    telemetry.journey_started("tax_certificate")
                    telemetry.journey_finished("tax_certificate", "completed")
                    relay.swallow = 2
                    await until(lambda: _true(relay.swallow == 0), what="answers lost")
                    await until(lambda: _completed(srv, "tax_certificate", 3), what="usage 3")
                    await asyncio.sleep(1.0)  # a few more heartbeats: still 3
                    assert await _completed(srv, "tax_certificate", 3)

                    # The server goes away: heartbeats are buffered...
                    before = len(await rows(srv, heartbeats_of(device)))
                    await relay.down()
                    telemetry.journey_started("tax_certificate")
                    telemetry.journey_finished("tax_certificate", "completed")
                    store = AgentStore(short_dir / "state" / "agent.sqlite3")
                    try:
                        await until(lambda: _true(store.buffered() >= 3), what="buffering")
                    finally:
                        store.close()
                    # ... and when it is back, one summary, then heartbeats again.
                    await relay.up()
                    beats = await until(
                        lambda: _at_least(srv, heartbeats_of(device), before + 2), what="catch-up"
                    )
                    later = beats[before:]
                    assert [b["kind"] for b in later[:2]] == ["summary", "heartbeat"]
                    summary = json.loads(later[0]["summary"])
                    assert summary["heartbeats_buffered"] >= 3
                    assert summary["heartbeats_dropped"] == 0
                    await until(lambda: _completed(srv, "tax_certificate", 4), what="usage 4")
                finally:
                    stop.set()
                    assert await asyncio.wait_for(agent, 10) == 0
                beats = await rows(srv, heartbeats_of(device))
                assert beats[-1]["kind"] == "going_offline"
                assert await _completed(srv, "tax_certificate", 4)  # never doubled
                await relay.down()
        telemetry.close()


async def _true(value):
    return value


async def _at_least(srv, query, n):
    found = await rows(srv, query)
    return found if len(found) >= n else None


async def _completed(srv, item_id, n):
    u = schema.usage_daily
    found = await rows(srv, sa.select(sa.func.sum(u.c.completed).label("n")).where(u.c.item_id == item_id))
    total = found[0]["n"] or 0
    assert total <= n, f"usage counted twice: {total} > {n}"
    return total == n


async def _finished(srv, command_id):
    found = await rows(srv, command_of(command_id))
    return found[0] if found and found[0]["status"] not in ("pending", "sent", "delivered") else None


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


@pytest.mark.asyncio
async def test_agent_process_supervises_the_app(tmp_path, short_dir):
    async with fleet_testing.running_fleet_server(tmp_path) as srv:
        identity = await enrolled(srv, short_dir / "state")
        device = identity.device_id
        sock = short_dir / "health.sock"
        script = ROOT / "tests/fleet/agent/kiosk_app.py"
        app = f"{sys.executable} {script} {short_dir / 'data'} {sock} --queue-one"
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleet.agent.main",
            "--state-dir", str(short_dir / "state"), "--health-socket", str(sock),
            "--data-dir", str(short_dir), "--interval", "0.3", "--app-command", app,
            cwd=ROOT, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await until(lambda: _app_state(srv, device, "running"), 30, "app running")
            (app_pid,) = _children(agent.pid)
            assert (await _last_app(srv, device))["outbox_pending"] == 1
            killed = time.monotonic()
            os.kill(app_pid, signal.SIGKILL)  # the fault: the app dies mid-whatever
            await until(lambda: _app_state(srv, device, "down"), 10, "app down reported")
            reported = time.monotonic()
            await until(lambda: _app_state(srv, device, "running", after_down=True), 30, "app back")
            print(f"app SIGKILLed: down at the server after {reported - killed:.2f} s, "
                  f"running again after {time.monotonic() - killed:.2f} s")
            (new_pid,) = _children(agent.pid)
            assert new_pid != app_pid
            assert (await _last_app(srv, device))["outbox_pending"] == 1  # the outbox survived
            cid = await srv.issue_command(device, "restart_app", {})
            done = await until(lambda: _finished(srv, cid), 40, "restart_app result")
            assert done["status"] == "done", done
            assert _children(agent.pid) != [new_pid]
            agent.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(agent.wait(), 15) == 0
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
        log = (await agent.stderr.read()).decode()
        assert "killed by SIGKILL" in log, log
        beats = await rows(srv, heartbeats_of(device))
        assert beats[-1]["kind"] == "going_offline"
        assert not sock.exists()  # the app was stopped with the agent
        # What the agent stored and sent never held the citizen's data.
        from tests.kiosk.outbox import personal_needles

        stored = (short_dir / "state" / "agent.sqlite3").read_bytes()
        for path in (short_dir / "state").iterdir():
            stored += path.read_bytes() if path.is_file() else b""
        sent = b"".join(str(dict(b)).encode() for b in beats)
        sent += json.dumps(await _last_heartbeat(srv, device), ensure_ascii=False).encode()
        for needle in personal_needles():
            assert needle not in stored and needle not in sent


async def _last_heartbeat(srv, device):
    found = await rows(srv, sa.select(schema.devices.c.last_heartbeat).where(
        schema.devices.c.id == device))
    return json.loads(found[0]["last_heartbeat"])


async def _last_app(srv, device):
    return (await _last_heartbeat(srv, device))["app"]


async def _app_state(srv, device, state, after_down=False):
    beats = await rows(srv, heartbeats_of(device))
    if after_down:
        downs = [i for i, b in enumerate(beats) if b["app_state"] == "down"]
        beats = beats[downs[0] + 1:] if downs else []
    return any(b["app_state"] == state for b in beats)
