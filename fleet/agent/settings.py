"""The agent's settings: built from `kiosk agent` arguments today, from kiosk.toml `[fleet]`
once the lead adds those keys (same names)."""

from __future__ import annotations

import argparse
import shlex
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = "var/fleet"
DEFAULT_HEALTH_SOCKET = "var/run/kiosk-health.sock"
DEFAULT_BUFFER_HOURS = 24.0


@dataclass(frozen=True)
class AgentSettings:
    state_dir: Path  # enrolment (device.key, device.crt, ca.crt, enrolment.json) and agent.sqlite3
    health_socket: Path  # the app's health endpoint (kiosk/health.py)
    data_dir: Path  # the kiosk's data dir: the disk the heartbeat reports
    server_url: str = ""  # "" = the one enrolment recorded
    interval_s: float | None = None  # None = what the server says (30 s by default)
    buffer_hours: float = DEFAULT_BUFFER_HOURS  # heartbeats kept while the server is away
    # Supervised mode: the agent starts the app itself and restarts it when it dies.
    app_command: tuple[str, ...] = ()
    # Otherwise restart_app runs this (e.g. systemctl restart kiosk-app.service).
    restart_command: tuple[str, ...] = ()
    request_timeout_s: float = 10.0
    going_offline_timeout_s: float = 3.0
    ca_file: Path | None = None  # extra CA bundle for an https server_url (None: system CAs)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for app_command

    @property
    def supervised(self) -> bool:
        return bool(self.app_command)

    def buffer_rows(self, interval_s: float) -> int:
        """How many heartbeats cover `buffer_hours` at this interval (at least 10)."""
        return max(10, int(self.buffer_hours * 3600 / max(interval_s, 1.0)))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="enrolment and agent state")
    p.add_argument("--health-socket", default=DEFAULT_HEALTH_SOCKET, help="the app's health socket")
    p.add_argument("--data-dir", default="var", help="the kiosk data dir (disk usage is reported)")
    p.add_argument("--server", default="", help="fleet server URL (default: from enrolment)")
    p.add_argument("--interval", type=float, default=None, help="heartbeat interval in seconds")
    p.add_argument("--buffer-hours", type=float, default=DEFAULT_BUFFER_HOURS)
    p.add_argument("--app-command", default="", help="supervised mode: command that runs the app")
    p.add_argument(
        "--restart-command",
        default="systemctl restart kiosk-app.service",
        help="how restart_app restarts the app when not supervised",
    )
    p.add_argument("--ca-file", default=None, help="CA bundle for an https fleet server")


def from_args(args: argparse.Namespace) -> AgentSettings:
    if args.interval is not None and not 0.05 <= args.interval <= 3600:
        raise ValueError("--interval must be between 0.05 and 3600 seconds")
    if not 0 < args.buffer_hours <= 24 * 14:
        raise ValueError("--buffer-hours must be between 0 and 336")
    return AgentSettings(
        state_dir=Path(args.state_dir),
        health_socket=Path(args.health_socket),
        data_dir=Path(args.data_dir),
        server_url=args.server,
        interval_s=args.interval,
        buffer_hours=args.buffer_hours,
        app_command=tuple(shlex.split(args.app_command)),
        restart_command=tuple(shlex.split(args.restart_command)),
        ca_file=Path(args.ca_file) if args.ca_file else None,
    )
