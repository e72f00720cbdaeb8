"""systemd's notification protocol (sd_notify), hand-rolled: one datagram on an AF_UNIX socket.

The kiosk app and the fleet agent run as `Type=notify` units with `WatchdogSec=`: they say
READY=1 once they can serve, STOPPING=1 on the way out, a STATUS= line ops see in
`systemctl status`, and WATCHDOG=1 pings. systemd restarts a unit whose pings stop, so a hung
event loop (a blocking call, a deadlock) is recovered without anyone noticing a frozen screen.

The protocol is small enough not to need libsystemd: `$NOTIFY_SOCKET` names a datagram socket,
a filesystem path or, starting with `@`, a Linux abstract socket; each message is newline-
separated `KEY=VALUE` assignments. Outside systemd (a laptop, tests without the variable)
every call is a no-op, and a send that fails is logged, never raised: the notification is
about the app, it must not take the app down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable

_log = logging.getLogger(__name__)

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"


def _address() -> str | bytes | None:
    path = os.environ.get(NOTIFY_SOCKET, "")
    if not path:
        return None
    if path.startswith("@"):
        return b"\0" + path[1:].encode()  # abstract namespace: leading NUL, no file
    if not path.startswith("/"):
        return None  # the protocol allows only absolute paths and abstract names
    return path


def _encode(fields: dict[str, object]) -> bytes:
    lines = []
    for key, value in fields.items():
        text = str(value)
        if not key or "=" in key or "\n" in key:
            raise ValueError(f"not a notification field name: {key!r}")
        if "\n" in text:
            raise ValueError(f"{key}: a notification value cannot contain a newline")
        lines.append(f"{key}={text}")
    return "\n".join(lines).encode("utf-8")


def notify(**fields: object) -> bool:
    """Send `KEY=VALUE` fields (`notify(READY=1, STATUS="…")`). True if a datagram went to
    `$NOTIFY_SOCKET`; False when there is none (not under systemd) or the send failed."""
    message = _encode(fields)
    address = _address()
    if address is None or not message:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message, address)
    except OSError as exc:
        _log.warning("sd_notify to %s failed: %s", os.environ.get(NOTIFY_SOCKET), exc)
        return False
    return True


def ready(status: str | None = None) -> bool:
    """Start-up finished: systemd marks the unit active and starts counting the watchdog."""
    return notify(READY=1, **({"STATUS": status} if status else {}))


def stopping(status: str | None = None) -> bool:
    return notify(STOPPING=1, **({"STATUS": status} if status else {}))


def status(text: str) -> bool:
    """A one-line state shown by `systemctl status` (never personal data: ops read it)."""
    return notify(STATUS=text)


def watchdog() -> bool:
    return notify(WATCHDOG=1)


def watchdog_interval() -> float | None:
    """The watchdog timeout in seconds when systemd expects pings from *this* process, else
    None. `WATCHDOG_PID`, when set, names the process meant (a child that inherited the
    environment must not ping for its parent)."""
    raw = os.environ.get(WATCHDOG_USEC, "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = os.environ.get(WATCHDOG_PID, "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000


async def watchdog_loop(
    is_healthy: Callable[[], bool],
    *,
    interval: float | None = None,
) -> None:
    """Ping the watchdog at half its interval, but only while `is_healthy()` says the app is
    fine. Run it as a task on the app's event loop: the loop being able to run this task at
    all is half the check (a blocked loop pings nothing), `is_healthy()` is the other half
    (e.g. the UI drew a frame recently, the session machine is not stuck).

    Returns at once when there is no watchdog (not under systemd, or `WatchdogSec=` unset);
    otherwise runs until cancelled. `interval` overrides `WATCHDOG_USEC` (tests)."""
    timeout = watchdog_interval() if interval is None else interval
    if timeout is None or _address() is None:
        return
    period = timeout / 2
    unhealthy_since: float | None = None
    loop = asyncio.get_running_loop()
    while True:
        try:
            healthy = bool(is_healthy())
        except Exception:  # a broken health probe means we cannot vouch for the app
            _log.exception("watchdog health probe failed")
            healthy = False
        if healthy:
            if unhealthy_since is not None:
                _log.info("watchdog: healthy again after %.1fs", loop.time() - unhealthy_since)
                unhealthy_since = None
            watchdog()
        elif unhealthy_since is None:
            unhealthy_since = loop.time()
            # Said once, not every period: systemd will act when the pings stay away.
            _log.warning("watchdog: app unhealthy, withholding pings (restart in <= %.0fs)",
                         timeout)
        await asyncio.sleep(period)
