"""pcscd: the PC/SC daemon the 社保卡 reader is reached through. Running, answering, and
seeing the configured reader (pyscard talks to it exactly as the driver does)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kiosk.doctor.context import DoctorContext
from kiosk.doctor.fixes import app_running
from kiosk.doctor.model import CheckResult, fail, ok

GROUP = "pcscd"
SOCKET = Path("/run/pcscd/pcscd.comm")
_START = "systemctl enable --now pcscd.socket  (Debian package pcscd; journalctl -u pcscd)"


def list_readers() -> list[str] | None:
    """Reader names, [] for none, None when no pcscd answers (blocking: pyscard)."""
    from smartcard import scard

    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        return None
    try:
        result, names = scard.SCardListReaders(context, [])
        if result == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        return list(names) if result == scard.SCARD_S_SUCCESS else None
    finally:
        scard.SCardReleaseContext(context)


async def run(ctx: DoctorContext) -> list[CheckResult]:
    section = ctx.config.devices.ssc
    if not section.enabled:
        return [ok("pcscd.service", "not needed: [devices.ssc] is disabled")]
    if section.reader == "sim" and app_running(ctx, GROUP) is None:
        await ctx.devices()  # the simulator starts its own pcscd; look at that one
    try:
        readers = await asyncio.to_thread(list_readers)
    except ImportError:
        return [fail("pcscd.service", "pyscard is not installed in the kiosk's environment",
                     "reinstall the kiosk package (pip install -r requirements.lock)")]
    if readers is None:
        where = "its socket " + ("exists" if SOCKET.exists() else f"{SOCKET} is missing")
        return [fail("pcscd.service", f"pcscd does not answer ({where})", _START)]
    results = [ok("pcscd.service", f"pcscd answers ({len(readers)} reader(s))")]
    if not readers:
        results.append(fail(
            "pcscd.reader", "pcscd runs but sees no reader",
            "plug the 社保卡 reader in; `pcsc_scan` (package pcsc-tools) must list it; a CCID "
            "reader needs libccid, others their vendor's IFD driver in /usr/lib/pcsc/drivers",
        ))
        return results
    wanted = "Virtual PCD" if section.reader == "sim" else section.reader
    matches = [n for n in readers if wanted.lower() in n.lower()]
    if not matches:
        results.append(fail(
            "pcscd.reader", f"no reader matching {wanted!r}; pcscd lists: " + "; ".join(readers),
            f"set [devices.ssc] reader to part of one of these names in {ctx.config_file}",
        ))
    else:
        results.append(ok("pcscd.reader", f"reader {matches[0]!r}"))
    return results
