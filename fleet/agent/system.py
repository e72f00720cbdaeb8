"""What the agent reads from the machine itself: disk, uptime, clock synchronisation."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import shutil
from pathlib import Path

_log = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
STA_UNSYNC = 0x0040


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex from <sys/timex.h> (glibc, LP64 and ILP32 alike: longs and ints)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_padding", ctypes.c_int * 11),
    ]


def clock_synced() -> bool | None:
    """True when the kernel says NTP keeps the clock synchronised, False when it says it is
    not (STA_UNSYNC or TIME_ERROR), None when it cannot be asked."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()  # modes = 0: read only, no privilege needed
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return None
    if state < 0:
        _log.debug("adjtimex failed: errno %d", ctypes.get_errno())
        return None
    return state != TIME_ERROR and not timex.status & STA_UNSYNC


def system_uptime_s(path: Path = Path("/proc/uptime")) -> float:
    try:
        return max(0.0, float(path.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return 0.0


def disk_usage(path: Path) -> dict | None:
    """{path, total_bytes, free_bytes} of the file system holding `path` (wire Disk)."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return {"path": str(path)[-200:], "total_bytes": usage.total, "free_bytes": usage.free}
