"""Clock: is the system clock synchronised? The kernel knows (adjtimex): chrony or
systemd-timesyncd clear STA_UNSYNC once they discipline the clock. A wrong clock breaks the
fleet's signed requests (±5 min), certificate validity, 苏服码 expiry and case dates."""

from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "clock"
TIME_ERROR = 5  # adjtimex's return when the clock is not synchronised
STA_UNSYNC = 0x0040
_FIX = ("apt-get install chrony && systemctl enable --now chrony; then `chronyc tracking` "
        "must show 'Leap status : Normal' (docs/lockdown.md, NTP)")


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (glibc, Linux)."""

    _fields_ = [
        ("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long), ("status", ctypes.c_int),
        ("constant", ctypes.c_long), ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long), ("time", _Timeval), ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long), ("jitter", ctypes.c_long), ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long), ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@dataclass(frozen=True)
class ClockReading:
    state: int  # adjtimex's return: TIME_OK (0) ... TIME_ERROR (5)
    status: int  # STA_* flags
    maxerror_us: int
    esterror_us: int

    @property
    def synchronised(self) -> bool:
        return self.state != TIME_ERROR and not self.status & STA_UNSYNC


def read_clock() -> ClockReading:
    """adjtimex(2) with modes = 0: read only, allowed without privileges."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    timex = _Timex()
    state = libc.adjtimex(ctypes.byref(timex))
    if state < 0:
        raise OSError(ctypes.get_errno(), "adjtimex failed")
    return ClockReading(state, timex.status, timex.maxerror, timex.esterror)


def judge(reading: ClockReading) -> CheckResult:
    if not reading.synchronised:
        return fail("clock.sync", f"the system clock is not synchronised (adjtimex state "
                    f"{reading.state}, STA_UNSYNC set: {bool(reading.status & STA_UNSYNC)})",
                    _FIX)
    found = f"synchronised, estimated error {reading.esterror_us / 1000:.1f} ms"
    if reading.maxerror_us > 1_000_000:  # the kernel's worst case grows while NTP is silent
        return warn("clock.sync", found + f", but maximum error {reading.maxerror_us / 1e6:.1f} s"
                    " (the time source has not been heard for a while)",
                    "`chronyc sources` should show a reachable server (^*); open UDP 123 "
                    "outbound or set a reachable `server` in /etc/chrony/chrony.conf")
    return ok("clock.sync", found)


async def run(ctx: DoctorContext) -> list[CheckResult]:
    try:
        return [judge(read_clock())]
    except OSError as exc:
        return [warn("clock.sync", f"cannot read the kernel clock state: {exc}", _FIX)]
