"""The fleet part of `kiosk demo` end to end: a real fleet server (SQLite), real enrolment,
the real agent reading a real app's health socket (tests/fleet/agent/kiosk_app.py: the real
Services and HealthServer), dashboard screenshots in Debian's Chromium, and no process left."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from fleet.demo import ADMIN, FleetDemo, FleetDemoError
from kiosk.config import load

ROOT = Path(__file__).resolve().parents[2]
KIOSK_APP = ROOT / "tests" / "fleet" / "agent" / "kiosk_app.py"

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium"),
]


@pytest.fixture
def kiosk_dir():
    # Short: the health socket's path must fit in 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="kfd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose, but Popen.wait reaps ours; check /proc anyway.
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def _write_config(folder: Path) -> Path:
    path = folder / "kiosk.toml"
    path.write_text(
        '[paths]\ndata_dir = "data"\n'
        '[fleet]\nstate_dir = "fleet-state"\nhealth_socket = "run/health.sock"\n'
        # Whatever the config says, the demo's agent talks to the demo's server only and
        # does not start a second app.
        'server_url = "https://fleet.example.cn"\napp_command = "false"\n',
        encoding="utf-8")
    return path


@pytest.fixture
def kiosk_app(kiosk_dir):
    config = load(_write_config(kiosk_dir))
    data = config.resolve(config.paths.data_dir)
    data.mkdir(parents=True)
    sock = config.resolve(config.fleet.health_socket)
    with (kiosk_dir / "app.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, str(KIOSK_APP), str(data), str(sock)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None, (kiosk_dir / "app.log").read_text()
            assert time.monotonic() < deadline, "the app's health socket never appeared"
            time.sleep(0.05)
        yield config
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_fleet_demo_enrols_heartbeats_screenshots_and_cleans_up(kiosk_app, kiosk_dir, tmp_path):
    config = kiosk_app
    with FleetDemo(config, tmp_path / "work", interval_s=0.5) as fleet:
        pids = [fleet.server.pid, fleet.agent.pid]
        detail = fleet.wait_for_heartbeats(2, timeout=30)
        assert detail["kiosk"]["device_id"] == fleet.device_id
        assert detail["kiosk"]["app_state"] == "running"
        assert detail["site"]["region"] == "320200"
        assert detail["site"]["name"].startswith("无锡")
        state = detail["kiosk"]["state"]
        assert state not in ("offline", "power_off", "no_device")
        shots = fleet.screenshots(tmp_path / "shots")
        summary = fleet.summary()
        base_url, password = fleet.base_url, fleet.password
    # The enrolment is in the config's state dir, as `kiosk agent` expects it.
    assert (config.resolve(config.fleet.state_dir) / "enrolment.json").is_file()
    names = {p.name for p in shots}
    assert {"login.png", "overview.png", "kiosks.png", "map.png", "kiosk.png"} <= names
    for path in shots:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        with Image.open(path) as image:
            assert image.width == 1280 and image.height >= 600
            extrema = ImageStat.Stat(image.convert("L")).extrema[0]
            assert extrema[1] - extrema[0] > 50, f"{path.name} looks blank"
    assert fleet.device_id in summary and ADMIN in summary and password in summary
    assert base_url in summary and state in summary
    # Nothing left running; the agent said goodbye before the server stopped.
    assert not [pid for pid in pids if _alive(pid)]
    assert fleet.agent.proc.returncode == 0
    assert "going offline: the server knows" in (tmp_path / "work" / "fleet-agent.log").read_text()


def test_second_demo_run_replaces_the_stale_enrolment_and_stops_cleanly_on_failure(
        kiosk_app, tmp_path):
    config = kiosk_app
    with FleetDemo(config, tmp_path / "one", interval_s=0.5) as fleet:
        first = fleet.device_id
        fleet.wait_for_heartbeats(1, timeout=30)
    with FleetDemo(config, tmp_path / "two", interval_s=0.5) as fleet:
        assert fleet.device_id != first  # re-enrolled with --force against the new server
        fleet.wait_for_heartbeats(1, timeout=30)
        pids = [fleet.server.pid, fleet.agent.pid]
        with pytest.raises(FleetDemoError, match="fleet-agent.log"):
            os.kill(fleet.agent.pid, signal.SIGKILL)
            fleet.agent.proc.wait(5)
            fleet.wait_for_heartbeats(99, timeout=5)
    assert not [pid for pid in pids if _alive(pid)]
