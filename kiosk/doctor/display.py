"""Display: is there something for Kivy (SDL) to draw on? Warn only: the doctor usually runs
from an ssh session, not inside the kiosk's graphical session, so it reports what it can see
(the compositor's socket, SDL's driver choice) rather than failing."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, ok, warn

GROUP = "display"
_CAGE_FIX = ("start the kiosk session: systemctl enable --now kiosk-session.service "
             "(provisioning/systemd/, docs/lockdown.md)")


def _wayland_sockets(user: str) -> list[Path]:
    """Wayland sockets in the kiosk user's runtime dir (cage makes `wayland-0`)."""
    dirs = []
    if os.environ.get("XDG_RUNTIME_DIR"):
        dirs.append(Path(os.environ["XDG_RUNTIME_DIR"]))
    try:
        dirs.append(Path(f"/run/user/{pwd.getpwnam(user).pw_uid}"))
    except KeyError:
        pass
    found = []
    for directory in dirs:
        try:
            found += [p for p in directory.glob("wayland-*") if p.is_socket()]
        except OSError:
            continue
    return found


async def run(ctx: DoctorContext) -> list[CheckResult]:
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver in ("offscreen", "dummy"):
        return [warn("display.session", f"SDL_VIDEODRIVER={driver}: the kiosk renders without "
                     "a screen", "unset SDL_VIDEODRIVER in the kiosk's environment (a test "
                     "setting must not reach a real kiosk)")]
    wayland = _wayland_sockets(ctx.options.user)
    x11 = sorted(Path("/tmp/.X11-unix").glob("X*")) if Path("/tmp/.X11-unix").is_dir() else []
    if wayland:
        return [ok("display.session", "Wayland socket " + ", ".join(map(str, wayland))
                   + (f" (SDL_VIDEODRIVER={driver})" if driver else ""))]
    if x11:
        return [ok("display.session", "X11 socket " + ", ".join(map(str, x11)))]
    return [warn("display.session",
                 f"no Wayland socket for user {ctx.options.user} and no X11 socket", _CAGE_FIX)]
