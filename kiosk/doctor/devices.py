"""Devices: every enabled `[devices.*]` opened through drivers.registry and self-tested, as
the kiosk would at start-up. A device that is down fails with what its driver said and the
operator action turned into something to do (DESIGN §4: `clear` is for branch staff,
`maintenance` sends an engineer, `configuration` is a config change)."""

from __future__ import annotations

import asyncio

from drivers.base import SelfTestResult
from drivers.registry import DRIVERS
from kiosk.doctor.context import DoctorContext
from kiosk.doctor.fixes import app_running, fix_for
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "devices"

def _from_selftest(ctx: DoctorContext, result: SelfTestResult) -> CheckResult:
    name = f"devices.{result.device}"
    status = result.status
    if result.ok:
        return ok(name, result.detail)
    error = status.last_error
    code = error.code if error else ""
    action = str(error.action) if error else ""
    found = f"{result.detail} (state {status.state}" + (f", action {action})" if action else ")")
    return fail(name, found, fix_for(ctx, result.device, code, action, str(status.state)))


async def run(ctx: DoctorContext) -> list[CheckResult]:
    results: list[CheckResult] = []
    devices = ctx.config.devices
    enabled = [e.key for e in DRIVERS if getattr(devices, e.key).enabled]
    for entry in DRIVERS:
        if entry.key not in enabled:
            results.append(ok(f"devices.{entry.key}", "disabled in the config"))
    if not enabled:
        return results + [warn("devices", "every device is disabled",
                               f"enable the kiosk's devices under [devices.*] in "
                               f"{ctx.config_file}")]
    busy = app_running(ctx, "devices")
    if busy is not None:
        return results + [busy]
    device_set = await ctx.devices()
    for key, reason in device_set.failures.items():
        results.append(fail(
            f"devices.{key}", f"the driver could not be created: {reason}",
            f"fix [devices.{key}] in {ctx.config_file} or install what the message names; "
            f"set enabled = false to run without it",
        ))
    tests = await asyncio.gather(*(
        device.selftest() for device in device_set.devices.values()
    ))
    results += [_from_selftest(ctx, result) for result in tests]
    order = {e.key: i for i, e in enumerate(DRIVERS)}
    return sorted(results, key=lambda r: order.get(r.name.partition(".")[2], 99))
