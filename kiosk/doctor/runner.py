"""Runs every group of checks at once, each bounded in time, and gathers one report.

Groups run concurrently (most of them wait on a device, a subprocess or the network), so a
run takes about as long as the slowest group; a group that does not finish within
`group_timeout_s` fails with that fact instead of hanging the doctor. A check that crashes
fails too, with the exception: the doctor reports, it does not fall over.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from kiosk.config import KioskConfig
from kiosk.doctor import (
    clock,
    devices,
    disk,
    display,
    enrolment,
    fonts,
    outbox,
    pcsc,
    permissions,
    printers,
    speech,
)
from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, DoctorOptions, Status, fail

_log = logging.getLogger(__name__)

GROUPS: tuple[ModuleType, ...] = (
    fonts, display, devices, pcsc, clock, disk, permissions, enrolment, printers, outbox, speech,
)
Check = Callable[[DoctorContext], Awaitable[list[CheckResult]]]


@dataclass
class Report:
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No check failed (warnings do not fail the run)."""
        return all(r.status is not Status.FAIL for r in self.results)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        return {str(s): sum(r.status is s for r in self.results) for s in Status}

    def by_name(self) -> dict[str, CheckResult]:
        return {r.name: r for r in self.results}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(), "seconds": round(self.seconds, 3),
                "checks": [r.to_json() for r in self.results]}


async def _group(name: str, check: Check, ctx: DoctorContext, timeout: float
                 ) -> list[CheckResult]:
    try:
        return await asyncio.wait_for(check(ctx), timeout)
    except TimeoutError:
        return [fail(name, f"no answer within {timeout:g} s",
                     f"run `kiosk doctor` again; if {name} keeps hanging, look at the device or "
                     "service it checks (journalctl -u kiosk-app -n 100)")]
    except Exception as exc:
        _log.exception("doctor: the %s checks crashed", name)
        return [fail(name, f"the check itself failed: {type(exc).__name__}: {exc}",
                     "report this with the output of `kiosk doctor --json`")]


async def run_checks(
    config: KioskConfig,
    options: DoctorOptions | None = None,
    *,
    groups: Sequence[ModuleType] = GROUPS,
) -> Report:
    options = options or DoctorOptions()
    ctx = DoctorContext(config, options)
    started = time.perf_counter()
    selected = [g for g in groups if g.GROUP not in options.skip]
    try:
        lists = await asyncio.gather(*(
            _group(g.GROUP, g.run, ctx, options.group_timeout_s) for g in selected
        ))
    finally:
        await ctx.aclose()
    report = Report([r for results in lists for r in results])
    report.seconds = time.perf_counter() - started
    return report
