"""The systemd units in provisioning/systemd/: `systemd-analyze verify` accepts them (it runs
without systemd as PID 1), and the keys that make the kiosk run itself are there."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[3] / "provisioning" / "systemd"
KIOSK = Path(sys.executable).with_name("kiosk")  # the venv's console script


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value (units repeat keys such as After=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        assert current is not None and _, f"{path.name}: {raw!r} is outside a section"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def words(unit: dict[str, list[str]], key: str) -> set[str]:
    return {w for value in unit.get(key, []) for w in value.split()}


def test_app_unit_runs_itself():
    unit = parse(UNITS / "kiosk-app.service")
    s, u = unit["Service"], unit["Unit"]
    assert s["Type"] == ["notify"] and s["WatchdogSec"] == ["30"] and s["Restart"] == ["always"]
    assert s["NotifyAccess"] == ["all"] and "WATCHDOG_PID" in words(s, "UnsetEnvironment")
    assert s["User"] == ["kiosk"] and "RestartSec" in s
    assert {"StartLimitIntervalSec", "StartLimitBurst"} <= set(u)
    assert s["ExecStart"][0].endswith("/bin/kiosk run") and "/usr/bin/cage" in s["ExecStart"][0]
    assert " -s " not in s["ExecStart"][0]  # no VT switching
    for key, value in (("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                       ("NoNewPrivileges", "yes")):
        assert s[key] == [value], key
    assert "/var/lib/kiosk" in words(s, "ReadWritePaths")
    assert {"pcscd.socket", "cups.service"} <= words(u, "Wants") & words(u, "After")
    assert "input" not in words(s, "SupplementaryGroups")
    assert "PrivateDevices" not in s  # it would hide the serial ports and the DRM device
    assert unit["Install"]["WantedBy"] == ["graphical.target"]


def test_agent_unit_runs_itself():
    unit = parse(UNITS / "kiosk-agent.service")
    s = unit["Service"]
    assert s["Type"] == ["notify"] and s["Restart"] == ["always"] and "WatchdogSec" in s
    assert "/bin/kiosk agent --state-dir /var/lib/kiosk-agent" in s["ExecStart"][0]
    assert "--health-socket /run/kiosk/health.sock" in s["ExecStart"][0]
    assert s["User"] == ["kiosk-agent"] and "kiosk" in words(s, "SupplementaryGroups")
    assert s["StateDirectoryMode"] == ["0700"] and s["ProtectSystem"] == ["strict"]
    # clock_synced comes from adjtimex(2): allowed, and not denied again by ProtectClock=.
    assert "adjtimex" in words(s, "SystemCallFilter") and "ProtectClock" not in s
    users = (UNITS / "sysusers-kiosk.conf").read_text("utf-8")
    assert "m     kiosk-agent kiosk" in users


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify(tmp_path):
    # verify checks that ExecStart's program exists and is executable: point the units at
    # this venv's `kiosk` and at a stand-in for cage (not installed on a build machine).
    cage = shutil.which("cage")
    if cage is None:
        cage = str(tmp_path / "cage")
        Path(cage).write_text("#!/bin/sh\nexit 0\n")
        Path(cage).chmod(0o755)
    assert KIOSK.is_file(), KIOSK
    names = []
    for unit in ("kiosk-app.service", "kiosk-agent.service"):
        text = (UNITS / unit).read_text("utf-8")
        text = text.replace("/usr/bin/cage", cage).replace("/opt/kiosk/venv/bin/kiosk", str(KIOSK))
        (tmp_path / unit).write_text(text, "utf-8")
        names.append(str(tmp_path / unit))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *names],
                          capture_output=True, text=True, timeout=30)
    complaints = [line for line in (done.stdout + done.stderr).splitlines()
                  if "kiosk-" in line]
    assert done.returncode == 0 and complaints == [], done.stdout + done.stderr
