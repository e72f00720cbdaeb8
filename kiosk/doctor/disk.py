"""Disk: free space where the kiosk writes (the data dir with the outbox, and the fleet state
dir). The outbox refuses new submissions when its disk is full, so the citizen hears "not
submitted" (never a false "submitted"); this check says so before it happens."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "disk"


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _existing(path: Path) -> Path:
    """The nearest existing folder: a data dir not created yet lives on its parent's disk."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_path(name: str, path: Path, warn_below: int, fail_below: int) -> CheckResult:
    target = _existing(path)
    usage = shutil.disk_usage(target)
    stat = os.statvfs(target)
    found = f"{path}: {_human(usage.free)} free of {_human(usage.total)}"
    if stat.f_files and stat.f_favail < 1000:
        return fail(name, found + f", only {stat.f_favail} inodes left",
                    f"delete old files on the file system holding {path} "
                    "(journalctl --vacuum-size=200M; apt-get clean)")
    fix = (f"free space on the file system holding {path}: journalctl --vacuum-size=200M; "
           "apt-get clean; remove old logs and screenshots; or give it a bigger disk")
    if usage.free < fail_below:
        return fail(name, found + f" (below {_human(fail_below)}: the outbox may refuse "
                    "submissions)", fix)
    if usage.free < warn_below:
        return warn(name, found + f" (below {_human(warn_below)})", fix)
    return ok(name, found)


async def run(ctx: DoctorContext) -> list[CheckResult]:
    o = ctx.options
    seen: dict[int, str] = {}
    results = []
    for name, path in (("disk.data", ctx.data_dir), ("disk.state", ctx.state_dir)):
        device = os.stat(_existing(path)).st_dev
        if device in seen:
            results.append(ok(name, f"{path}: same file system as {seen[device]}"))
            continue
        seen[device] = str(path)
        results.append(check_path(name, path, o.disk_warn_bytes, o.disk_fail_bytes))
    return results
