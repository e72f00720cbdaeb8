"""The kiosk app SIGKILLed in the middle of a citizen's submission, under the fleet agent
in supervised mode (`python -m fleet.agent.main --app-command ...`), with a real fleet server
and a real sandbox platform in its own process.

The platform answers each application 4 s after storing it (`--submit-delay`), longer than
the kiosk waits for a case number (3 s): every journey ends "queued" and the sender is still
waiting for the platform when the kill lands — the hardest moment (the platform has the
case, the kiosk does not know). The agent reports the app "down" at the server and restarts
it; the restarted app's outbox still holds every submission, and its sender delivers each
one: the sandbox ends with exactly one case per submission, one idempotency key per case.

Already covered elsewhere, not repeated here:
- tests/fleet/agent/test_agent_e2e.py::test_agent_process_supervises_the_app — kill of an
  idle app, "down" then "running" at the server, `restart_app` on command, SIGTERM;
- tests/fleet/agent/test_agent_e2e.py::test_agent_in_process — the fleet server away for a
  while (a TCP relay closed): heartbeats buffered, one summary, usage counted once (fault 5);
- tests/reliability/test_submit_killed.py — 50 kills of `kiosk journey` at random points.

Run as a script, this module is the supervised app:
`python tests/reliability/test_fault_supervision.py DATA_DIR SOCKET PLATFORM_URL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KIOSK = Path(sys.executable).with_name("kiosk")
SUBMIT = "flexible_employment_enrol"
APP_CONFIG = """
[paths]
data_dir = "{data}"
[platform]
url = "{url}"
[devices.id_card]
enabled = false
[devices.ssc]
enabled = false
[devices.a4_printer]
enabled = false
[logging]
level = "WARNING"
"""


async def app_main(data: Path, socket_path: Path, url: str) -> None:
    """The supervised app: real Services (sender running), Telemetry, HealthServer. On its
    first start it runs citizens' submissions one after another until it is killed; after a
    restart it only serves (its sender drains what the killed one left)."""
    sys.path.insert(0, str(ROOT))
    from kiosk.config import parse
    from kiosk.headless import journey
    from kiosk.health import HealthServer, ServicesHealthSource
    from kiosk.services import open_services
    from kiosk.telemetry import Telemetry
    from tests.fleet.agent.conftest import RecordingActions

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    config = parse(APP_CONFIG.format(data=data, url=url))
    telemetry = Telemetry(data / "telemetry.sqlite3")
    first_start = not (data / "started-once").exists()
    (data / "started-once").touch()
    async with open_services(config, devices={"qr", "receipt_printer"}) as services:
        source = ServicesHealthSource(services, telemetry, RecordingActions(), time.time())
        async with HealthServer(source, socket_path):
            n = 0
            while first_start and not stop.is_set():
                citizen = ("c01", "c03", "c04")[n % 3]
                (data / "journey-started").write_text(str(n))
                await journey(services, SUBMIT, citizen, "code")
                n += 1
            await stop.wait()
    telemetry.close()


if __name__ == "__main__":
    asyncio.run(app_main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]))
    sys.exit(0)


import pytest  # noqa: E402 - the app above must not need pytest

from tests.fleet.agent.test_agent_e2e import (  # noqa: E402
    _app_state, _children, enrolled, heartbeats_of, rows,
)
from tests.reliability.conftest import running_sandbox, until  # noqa: E402


@pytest.fixture
def sandbox(tmp_path):
    with running_sandbox(tmp_path / "sandbox", submit_delay=4) as found:
        yield found


def _outbox(data: Path) -> list[tuple[str, str, str | None]]:
    path = data / "outbox.sqlite3"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute("SELECT idempotency_key, state, case_number FROM submissions").fetchall()


@pytest.mark.asyncio
async def test_app_killed_mid_submission_is_restarted_and_delivers_once(tmp_path, sandbox):
    from fleet.server.testing import running_fleet_server

    url, sandbox_db = sandbox
    short = Path(f"/tmp/kf-{os.getpid()}")  # a Unix socket path must fit in 107 bytes
    short.mkdir(exist_ok=True)
    data, sock = tmp_path / "kiosk", short / "health.sock"
    data.mkdir()
    async with running_fleet_server(tmp_path) as srv:
        identity = await enrolled(srv, tmp_path / "state")
        device = identity.device_id
        app = f"{sys.executable} {Path(__file__).resolve()} {data} {sock} {url}"
        agent = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleet.agent.main",
            "--state-dir", str(tmp_path / "state"), "--health-socket", str(sock),
            "--data-dir", str(data), "--interval", "0.3", "--app-command", app,
            cwd=ROOT, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await until(lambda: _app_state(srv, device, "running"), 30, "app running")

            # Mid-submission: the second journey is under way and the first one's answer is
            # still on its way from the platform (4 s) when the kill lands.
            async def second_journey() -> bool:
                marker = data / "journey-started"
                return marker.exists() and marker.read_text() == "1"

            await until(second_journey, 30, "the second journey")
            await asyncio.sleep(1.5)
            before = _outbox(data)
            assert any(state in ("queued", "sending") for _, state, _ in before), before
            (app_pid,) = _children(agent.pid)
            killed = time.monotonic()
            os.kill(app_pid, signal.SIGKILL)
            await until(lambda: _app_state(srv, device, "down"), 10, "app down reported")
            reported = time.monotonic() - killed
            await until(lambda: _app_state(srv, device, "running", after_down=True), 30, "app back")
            back = time.monotonic() - killed
            (new_pid,) = _children(agent.pid)
            assert new_pid != app_pid

            async def delivered() -> bool:
                records = _outbox(data)
                return bool(records) and all(state == "sent" for _, state, _ in records)

            await until(delivered, 40, "the restarted app's sender to deliver everything")
            records = _outbox(data)
            print(f"app SIGKILLed mid-submission: down at the server after {reported:.2f} s, "
                  f"running again after {back:.2f} s; {len(before)} submissions in the outbox "
                  f"at the kill ({sorted(s for _, s, _ in before)}), {len(records)} delivered after the restart")
            agent.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(agent.wait(), 15) == 0
        finally:
            if agent.returncode is None:
                agent.kill()
                await agent.wait()
            with contextlib.suppress(OSError):
                sock.unlink()
            with contextlib.suppress(OSError):
                short.rmdir()
        log = (await agent.stderr.read()).decode()
        assert "killed by SIGKILL" in log, log[-3000:]
        beats = await rows(srv, heartbeats_of(device))
        assert beats[-1]["kind"] == "going_offline"

    # Every submission the kiosk stored was delivered, each to its own case, and the platform
    # has no other: exactly once across the kill.
    with contextlib.closing(sqlite3.connect(f"file:{sandbox_db}?mode=ro", uri=True)) as db:
        cases = {c for (c,) in db.execute("SELECT case_number FROM cases WHERE item_id = ?", (SUBMIT,))}
        keys = set(db.execute("SELECT key, result FROM idempotency_keys WHERE scope = 'application'"))
    assert len(records) >= 2
    assert {case for _, _, case in records} == cases
    assert len(cases) == len(records)
    assert {(key, case) for key, _, case in records} == keys
