"""The kiosk app's local health endpoint: what the fleet agent reads and how it asks the app
to act. HTTP (aiohttp) on a Unix socket, never on a network port: the socket file is mode
0660, so only the kiosk user and the agent's group can talk to it.

    GET  /health             {app, devices, totals, versions, cabinet}
    POST /commands/<name>    JSON args → {status: done|failed|rejected, detail, data}

The agent runs in its own process so it can report a dead app (DESIGN §8); everything it
learns about the app comes through here. Nothing served carries personal data: screen names,
device statuses, counts per item id, version strings.

`HealthServer` serves any `HealthSource`; `ServicesHealthSource` is the kiosk's, built on
`kiosk.services.Services` plus a small `KioskActions` object the touch UI implements.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import errno
import grp
import hashlib
import logging
import os
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from aiohttp import web

import kiosk

_log = logging.getLogger(__name__)

COMMANDS = (
    "out_of_service",
    "in_service",
    "reload_catalogue",
    "reload_config",
    "screenshot",
    "selftest",
    "apply_bundle",
)
SCREEN_STATES = ("attract", "in_session", "out_of_service", "maintenance", "unknown")
MAX_REASON_CHARS = 500  # wire ShortText
MAX_SCREENSHOT_BYTES = 3 * 1024 * 1024  # base64 of it stays under the wire's 4 MiB result cap
MAX_REQUEST_BYTES = 2 * 1024 * 1024  # a signed bundle is the largest argument
COMMAND_TIMEOUT_S = 60.0
_SUN_PATH_MAX = 107  # sockaddr_un.sun_path minus the NUL


@dataclass(frozen=True)
class CommandOutcome:
    status: Literal["done", "failed", "rejected"]
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail[:MAX_REASON_CHARS], "data": self.data}


class HealthSource(Protocol):
    """What the health endpoint serves. `snapshot()` is async because some parts (the
    outbox's pending count) live behind the database's thread."""

    async def snapshot(self) -> dict[str, Any]: ...

    async def command(self, name: str, args: dict[str, Any]) -> CommandOutcome: ...


@runtime_checkable
class KioskActions(Protocol):
    """What the touch UI does for the health endpoint (tests use a small object of their own).
    Optional: `async apply_bundle(kind, bundle) -> str` (the installed version), and
    `cabinet() -> {"door_open": bool|None, "tamper": bool|None}` where sensors exist."""

    def screen_state(self) -> str: ...

    def set_out_of_service(self, reason: str) -> None: ...

    def set_in_service(self) -> None: ...

    async def reload_catalogue(self) -> None: ...

    async def reload_config(self) -> None: ...

    async def screenshot(self) -> bytes: ...


class InvalidPng(ValueError):
    pass


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, or `InvalidPng`."""
    if len(data) < 24 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise InvalidPng("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= 100_000 and 0 < height <= 100_000):
        raise InvalidPng(f"implausible PNG size {width}x{height}")
    return width, height


def config_version(path: Path | None) -> str:
    """The config's version as the fleet sees it: the first 16 hex digits of its SHA-256
    (an empty file and the built-in defaults both give "defaults")."""
    if path is None or not Path(path).is_file():
        return "defaults"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class ServicesHealthSource:
    """The kiosk's health: devices from the `DeviceSet`, the outbox's pending count, the
    telemetry totals, versions; commands go to the devices (selftest) or to the UI."""

    def __init__(self, services, telemetry, actions: KioskActions, started_at: float) -> None:
        self.services = services
        self.telemetry = telemetry
        self.actions = actions
        self.started_at = started_at  # time.time() when the app started
        self.catalogue_version = ""
        self.catalogue_published_at: float | None = None
        self.config_version = config_version(getattr(services.config, "source", None))
        self._reason = ""

    def catalogue_loaded(self, catalogue) -> None:
        """Called by the app with each `SignedCatalogue` it starts to use."""
        self.catalogue_version = str(catalogue.version)
        self.catalogue_published_at = float(catalogue.issued_at)

    async def snapshot(self) -> dict[str, Any]:
        screen = self.actions.screen_state()
        if screen not in SCREEN_STATES:
            screen = "unknown"
        try:
            pending = await self.services.outbox.pending_count()
        except Exception as exc:  # the outbox's own problem must not hide the rest
            _log.warning("health: outbox pending count failed: %s", type(exc).__name__)
            pending = 0
        published = self.catalogue_published_at
        cabinet = getattr(self.actions, "cabinet", None)
        events = getattr(self.actions, "events", None)  # handed over once: the agent keeps them
        return {
            "events": events() if callable(events) else [],
            "app": {
                "state": "running",
                "screen": screen,
                "out_of_service_reason": self._reason if screen == "out_of_service" else "",
                "uptime_s": round(max(0.0, time.time() - self.started_at), 1),
                "outbox_pending": pending,
            },
            "devices": [status.to_json() for status in self.services.devices.statuses()],
            "totals": self.telemetry.totals(),
            "versions": {
                "app": kiosk.__version__,
                "catalogue": self.catalogue_version,
                "catalogue_published_at": (
                    None
                    if published is None
                    else dt.datetime.fromtimestamp(published, dt.UTC).isoformat()
                ),
                "config": self.config_version,
            },
            "cabinet": cabinet() if callable(cabinet) else {"door_open": None, "tamper": None},
        }

    async def command(self, name: str, args: dict[str, Any]) -> CommandOutcome:
        if name == "out_of_service":
            reason = args.get("reason", "")
            if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
                return CommandOutcome("rejected", "args.reason must be 1-500 characters of text")
            self.actions.set_out_of_service(reason.strip())
            self._reason = reason.strip()
            return CommandOutcome("done", "out of service")
        if name == "in_service":
            self.actions.set_in_service()
            self._reason = ""
            return CommandOutcome("done", "in service")
        if name == "reload_catalogue":
            await self.actions.reload_catalogue()
            return CommandOutcome(
                "done", "catalogue reloaded", {"catalogue": self.catalogue_version}
            )
        if name == "reload_config":
            await self.actions.reload_config()
            self.config_version = config_version(getattr(self.services.config, "source", None))
            return CommandOutcome("done", "config reloaded", {"config": self.config_version})
        if name == "screenshot":
            # The window mid-session shows what the citizen sees (their item, answers,
            # results): ops get pictures of the kiosk between citizens only.
            if self.actions.screen_state() == "in_session":
                return CommandOutcome(
                    "rejected", "a citizen is using the kiosk: screenshots only between sessions"
                )
            png = await self.actions.screenshot()
            if len(png) > MAX_SCREENSHOT_BYTES:
                return CommandOutcome("failed", f"screenshot too large ({len(png)} bytes)")
            width, height = png_size(png)
            return CommandOutcome(
                "done",
                f"{width}x{height} PNG",
                {
                    "png_base64": base64.b64encode(png).decode("ascii"),
                    "width": width,
                    "height": height,
                },
            )
        if name == "selftest":
            results = await self.services.devices.selftest()
            failed = [r.device for r in results if not r.ok]
            detail = f"{len(results) - len(failed)}/{len(results)} devices ok"
            if failed:
                detail += "; failed: " + ", ".join(failed)
            return CommandOutcome(
                "done" if not failed else "failed",
                detail,
                {"devices": [r.to_json() for r in results]},
            )
        if name == "apply_bundle":
            kind, bundle = args.get("kind"), args.get("bundle")
            if kind not in ("catalogue", "config") or not isinstance(bundle, dict):
                return CommandOutcome(
                    "rejected", "args must be {kind: catalogue|config, bundle: {...}}"
                )
            apply = getattr(self.actions, "apply_bundle", None)
            if apply is None:
                return CommandOutcome("rejected", "this app does not take bundles")
            version = await apply(kind, bundle)
            return CommandOutcome(
                "done", f"{kind} bundle {version} installed", {"version": str(version)}
            )
        return CommandOutcome("rejected", f"unknown command {name!r}")


# -- the server ---------------------------------------------------------------------------

SOURCE_KEY = web.AppKey("source", HealthSource)


async def _health(request: web.Request) -> web.Response:
    snapshot = await request.app[SOURCE_KEY].snapshot()
    return web.json_response(snapshot)


async def _command(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in COMMANDS:
        outcome = CommandOutcome("rejected", f"unknown command {name!r}")
        return web.json_response(outcome.to_json(), status=404)
    try:
        args = await request.json() if request.can_read_body else {}
    except (ValueError, UnicodeDecodeError):
        outcome = CommandOutcome("rejected", "body is not JSON")
        return web.json_response(outcome.to_json(), status=400)
    if not isinstance(args, dict):
        return web.json_response(
            CommandOutcome("rejected", "args must be a JSON object").to_json(), status=400
        )
    started = time.perf_counter()
    try:
        outcome = await asyncio.wait_for(
            request.app[SOURCE_KEY].command(name, args), COMMAND_TIMEOUT_S
        )
    except TimeoutError:
        outcome = CommandOutcome("failed", f"no answer within {COMMAND_TIMEOUT_S:.0f}s")
    except Exception as exc:  # an action's failure is the command's result, not a 500
        _log.warning("health: command %s failed: %s", name, type(exc).__name__)
        outcome = CommandOutcome("failed", f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS])
    _log.info(
        "health: command %s → %s in %.0f ms",
        name, outcome.status, (time.perf_counter() - started) * 1000,
    )
    return web.json_response(outcome.to_json())


def make_app(source: HealthSource) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[SOURCE_KEY] = source
    app.router.add_get("/health", _health)
    app.router.add_post("/commands/{name}", _command)
    return app


class HealthServer:
    """`await HealthServer(source, path).start()` ... `await .stop()`.

    `group`: the agent's group (name or gid) to own the socket; None keeps the process's
    own group (fine when the agent runs as the same user, as in tests and the demo)."""

    def __init__(
        self,
        source: HealthSource,
        socket_path: Path | str,
        *,
        group: str | int | None = None,
        mode: int = 0o660,
    ) -> None:
        self.source = source
        self.socket_path = Path(socket_path)
        self.group = group
        self.mode = mode
        self._runner: web.AppRunner | None = None
        if len(os.fsencode(self.socket_path)) > _SUN_PATH_MAX:
            raise ValueError(f"socket path longer than {_SUN_PATH_MAX} bytes: {self.socket_path}")

    async def start(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_socket(self.socket_path)
        runner = web.AppRunner(make_app(self.source), access_log=None, handle_signals=False)
        await runner.setup()
        # Created under a restrictive umask, so there is no moment where others could connect.
        old_umask = os.umask(0o117)
        try:
            await web.UnixSite(runner, str(self.socket_path)).start()
        except BaseException:
            await runner.cleanup()
            raise
        finally:
            os.umask(old_umask)
        os.chmod(self.socket_path, self.mode)
        if self.group is not None:
            gid = self.group if isinstance(self.group, int) else grp.getgrnam(self.group).gr_gid
            os.chown(self.socket_path, -1, gid)
        self._runner = runner
        _log.info("health endpoint on %s", self.socket_path)

    async def stop(self) -> None:
        if self._runner is None:
            return
        await self._runner.cleanup()
        self._runner = None
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def _remove_stale_socket(path: Path) -> None:
    """A socket file left by a killed app is removed; one that still answers is not ours to
    take (another app instance runs) and is an error."""
    if not path.exists():
        return
    if not path.is_socket():
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(0.5)
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise FileExistsError(f"another process answers on {path}")
