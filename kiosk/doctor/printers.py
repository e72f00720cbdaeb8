"""Printer queues: what each printer says about itself now, beyond "it answers".

- A4: IPP Get-Printer-Attributes through the driver (the printer's own endpoint, or the CUPS
  queue when the URI names one: CUPS answers for the queue, so a paused queue or one that
  refuses jobs shows up as printer-state stopped / printer-is-accepting-jobs false);
- receipt: DLE EOT real-time status (paper near end, cover, errors).
Low paper or toner warns (branch staff should reload before it runs out); anything that
stops printing fails.
"""

from __future__ import annotations

from drivers.base import DeviceFailure, DeviceState, SupplyLevel
from kiosk.doctor.context import DoctorContext
from kiosk.doctor.fixes import app_running, cups_queue, fix_for
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "printers"


async def check_a4(ctx: DoctorContext, printer) -> CheckResult:
    uri = ctx.config.devices.a4_printer.uri
    queue = cups_queue(uri)
    try:
        condition = await printer.refresh()
    except DeviceFailure as failure:
        return fail("printers.a4", f"Get-Printer-Attributes failed: {failure.code}: {failure}",
                    fix_for(ctx, "a4_printer", failure.code, str(failure.action),
                            str(printer.status.state)))
    reasons = ", ".join(sorted(condition.reasons)) or "none"
    kind = f"CUPS queue {queue!r}" if queue else "IPP printer"
    found = (f"{kind} at {printer.uri}: {condition.state}, paper {condition.supplies['paper']}, "
             f"toner {condition.supplies['toner']}, reasons: {reasons}")
    if condition.failure is not None:
        failure = condition.failure
        return fail("printers.a4", found, fix_for(ctx, "a4_printer", failure.code,
                                                  str(failure.action), str(condition.state)))
    low = [name for name, level in condition.supplies.items() if level is SupplyLevel.LOW]
    if low:
        return warn("printers.a4", found, "branch staff: have " + " and ".join(
            "A4 paper" if n == "paper" else "a toner cartridge" for n in low) + " ready to load")
    return ok("printers.a4", found)


async def check_receipt(ctx: DoctorContext, printer) -> CheckResult:
    status = await printer.refresh_status()
    paper = status.supplies.get("paper", SupplyLevel.UNKNOWN)
    found = f"DLE EOT: {status.state}, paper {paper}"
    error = status.last_error
    if status.state not in (DeviceState.ONLINE, DeviceState.BUSY):
        code = error.code if error else ""
        action = str(error.action) if error else "maintenance"
        if error:
            found += f", {error.code}: {error.vendor_text}"
        return fail("printers.receipt", found, fix_for(ctx, "receipt_printer", code, action,
                                                       str(status.state)))
    if paper is SupplyLevel.LOW:
        return warn("printers.receipt", found + " (the near-end sensor sees the roll running "
                    "low)", "branch staff: put in a new receipt roll soon")
    return ok("printers.receipt", found)


async def run(ctx: DoctorContext) -> list[CheckResult]:
    devices = ctx.config.devices
    wanted = [k for k in ("a4_printer", "receipt_printer") if getattr(devices, k).enabled]
    if not wanted:
        return [ok("printers", "no printer enabled")]
    busy = app_running(ctx, "printers")
    if busy is not None:
        return [busy]
    device_set = await ctx.devices()
    results = []
    for key in wanted:
        name = "printers.a4" if key == "a4_printer" else "printers.receipt"
        printer = device_set.devices.get(key)
        if printer is None:
            results.append(fail(name, "the driver could not be created (see devices." + key + ")",
                                f"fix [devices.{key}] in {ctx.config_file}"))
        elif printer.status.lifecycle == "closed":
            error = printer.status.last_error
            results.append(fail(name, f"did not open: {error.code if error else 'unknown'}",
                                fix_for(ctx, key, error.code if error else "",
                                        str(error.action) if error else "maintenance",
                                        str(printer.status.state))))
        elif key == "a4_printer":
            results.append(await check_a4(ctx, printer))
        else:
            results.append(await check_receipt(ctx, printer))
    return results
