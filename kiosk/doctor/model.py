"""What a doctor check reports, what it may look at, and the thresholds it judges by.

A check finds one thing about the real machine and says it in three parts: its `status`
(ok, warn: worth fixing but the kiosk serves; fail: the kiosk cannot serve as set up), what
was `found` (facts with paths, numbers, device answers), and the `fix`: a concrete command or
config change an engineer can type, never "check the configuration".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GB = 1024**3
MB = 1024**2


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True)
class CheckResult:
    name: str  # "<group>.<what>", e.g. "devices.a4_printer", "permissions.keys"
    status: Status
    found: str
    fix: str = ""  # empty for ok

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": str(self.status), "found": self.found,
                "fix": self.fix}


def ok(name: str, found: str) -> CheckResult:
    return CheckResult(name, Status.OK, found)


def warn(name: str, found: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.WARN, found, fix)


def fail(name: str, found: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, found, fix)


@dataclass(frozen=True)
class DoctorOptions:
    """Everything a check needs beyond the kiosk's config. The defaults match the systemd
    units in provisioning/systemd/ (users `kiosk` and `kiosk-agent`)."""

    # Owners the data directories and the fleet state directory must have.
    user: str = "kiosk"
    agent_user: str = "kiosk-agent"
    # The fleet agent's state directory (device key and certificate); None: `[fleet]
    # state_dir` from the config when it has one, else `<data_dir>/fleet`.
    state_dir: Path | None = None
    # Candidate CJK font files in order; None: the ones the UI tries (screens/boot.py).
    fonts: tuple[str, ...] | None = None
    disk_warn_bytes: int = 1 * GB
    disk_fail_bytes: int = 200 * MB
    outbox_age_warn_s: float = 3600.0
    certificate_warn_days: int = 30
    http_timeout_s: float = 3.0
    # Each group of checks gets this long; the whole run is about the slowest group.
    group_timeout_s: float = 4.0
    # Open the devices even when the kiosk app runs (it holds them: both would talk at once
    # on a serial line, possibly in the middle of a citizen's session).
    open_devices: bool = False
    # Groups of checks to leave out (e.g. {"devices"} when the app holds the ports).
    skip: frozenset[str] = field(default_factory=frozenset)
