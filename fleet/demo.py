"""The fleet part of `kiosk demo`: a real fleet server on 127.0.0.1, this kiosk enrolled with
it and its agent sending heartbeats read from the app's health socket; headless, screenshots
of the dashboard.

Synchronous on purpose: the UI tour runs its own asyncio loop in the main thread, so the
server and the agent are subprocesses (the same commands ops type: `kiosk fleet-server`,
`kiosk provision`, `kiosk agent`), HTTP is urllib, and only the short screenshot job runs
its own `asyncio.run`. Every wait is bounded and names the log file to read when it fails;
`__exit__` leaves nothing running, also after a failure half-way or a KeyboardInterrupt.

    with FleetDemo(config, work_dir) as fleet:
        ... run the app (it serves the health socket) ...
        fleet.wait_for_heartbeats()
        fleet.screenshots(out_dir / "fleet")
        print(fleet.summary())
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig

ADMIN = "demo-admin"
# The demo kiosk's site: a bank branch in Wuxi (GB/T 2260 320200), coordinates of Binhu.
SITE = {
    "site_id": "demo-wuxi-bank",
    "site_type": "bank",
    "name": "无锡 演示网点",
    "address": "江苏省无锡市滨湖区蠡湖大道 1 号",
    "region": "320200",
    "longitude": 120.2693,
    "latitude": 31.5353,
}
_ROOT = Path(__file__).resolve().parents[1]
_STOP_TIMEOUT_S = 10.0  # the agent's going_offline has 3 s; the server drains in well under 10


class FleetDemoError(Exception):
    """A step of the fleet demo failed; the message says which and which log to read."""


class _Child:
    """A subprocess with its output in a log file, in its own session so a Ctrl-C at the
    terminal reaches only the demo, which then stops the children in order."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("ab")
        try:
            self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env, cwd=_ROOT,
                                         start_new_session=True)
        except BaseException:
            self._log.close()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = _STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FleetDemo:
    """A fleet server, this kiosk enrolled with it, and its agent; all stopped on exit."""

    def __init__(self, config: KioskConfig, work_dir: Path, *, interval_s: float = 5.0,
                 ready_timeout_s: float = 30.0) -> None:
        self.config = config
        self.work_dir = Path(work_dir).resolve()
        self.interval_s = interval_s
        self.ready_timeout_s = ready_timeout_s
        self.server_dir = self.work_dir / "fleet-server"
        self.state_dir = config.resolve(config.fleet.state_dir).resolve()
        self.server_log = self.work_dir / "fleet-server.log"
        self.agent_log = self.work_dir / "fleet-agent.log"
        self.password = secrets.token_urlsafe(12)
        self.base_url = ""
        self.device_id = ""
        self.server: _Child | None = None
        self.agent: _Child | None = None
        self._token = ""  # the admin's bearer token
        self._detail: dict[str, Any] | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> FleetDemo:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        # Agent first, while the server can still take its going_offline; each stop runs
        # even if the one before it failed.
        try:
            if self.agent is not None:
                self.agent.stop()
        finally:
            if self.server is not None:
                self.server.stop()

    def _start(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._run("fleet-server init", ["fleet-server", "init", "--state-dir",
                                        str(self.server_dir), "--admin", ADMIN,
                                        "--password-env", "FLEET_DEMO_PASSWORD"],
                  self.server_log)
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.server = _Child("fleet server", self._kiosk_argv(
            "fleet-server", "serve", "--state-dir", str(self.server_dir), "--host", "127.0.0.1",
            "--port", str(port), "--interval", str(max(1, round(self.interval_s)))),
            self.server_log, self._env())
        self._wait_healthy()
        self._token = str(self._api("POST", "/api/v1/auth/login",
                                    {"username": ADMIN, "password": self.password})["token"])
        self._api("POST", "/api/v1/sites", SITE)
        token = str(self._api("POST", f"/api/v1/sites/{SITE['site_id']}/enrolment-tokens",
                              {"ttl_s": 600})["token"])
        self._enrol(token)
        self.agent = _Child("fleet agent", self._agent_argv(), self.agent_log, self._env())

    # --- steps --------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_ROOT), env.get("PYTHONPATH", "")) if p)
        env["FLEET_DEMO_PASSWORD"] = self.password
        env.pop("FLEET_DB_URL", None)  # the demo's server is always its own SQLite
        env.pop("FLEET_STATE_DIR", None)
        return env

    @staticmethod
    def _kiosk_argv(*args: str) -> list[str]:
        return [sys.executable, "-m", "kiosk", *args]

    def _run(self, what: str, args: list[str], log_path: Path) -> str:
        """A one-shot `kiosk ...` command; its output goes to the log; stdout is returned."""
        try:
            done = subprocess.run(self._kiosk_argv(*args), capture_output=True, text=True,
                                  env=self._env(), cwd=_ROOT, stdin=subprocess.DEVNULL,
                                  timeout=self.ready_timeout_s)
        except subprocess.TimeoutExpired:
            raise FleetDemoError(f"`kiosk {what}` took more than {self.ready_timeout_s:.0f} s"
                                 ) from None
        with log_path.open("a", encoding="utf-8") as log:
            log.write(f"$ kiosk {what}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise FleetDemoError(f"`kiosk {what}` failed (exit {done.returncode}): "
                                 f"{done.stderr.strip()[-500:]} (see {log_path})")
        return done.stdout

    def _wait_healthy(self) -> None:
        assert self.server is not None
        deadline = time.monotonic() + self.ready_timeout_s
        while time.monotonic() < deadline:
            if not self.server.running():
                raise FleetDemoError(f"the fleet server exited early (exit "
                                     f"{self.server.proc.returncode}); read {self.server_log}:\n"
                                     f"{self.server.tail()}")
            if _healthy(self.base_url):
                return
            time.sleep(0.1)
        raise FleetDemoError(f"the fleet server did not answer /healthz within "
                             f"{self.ready_timeout_s:.0f} s; read {self.server_log}")

    def _enrol(self, token: str) -> None:
        """`kiosk provision` into the config's state dir. An enrolment left there by an
        earlier demo, whose loopback server is gone, is replaced (with the agent's buffer of
        heartbeats for that old kiosk); any other enrolment is kept and the demo refuses."""
        from provisioning.device import DeviceIdentity, IdentityError, NotEnrolled

        force = False
        try:
            old = DeviceIdentity.load(self.state_dir)
        except NotEnrolled:
            old = None
        except IdentityError:  # half-written or broken: nothing worth keeping
            force = True
            old = None
        if old is not None:
            host = urllib.parse.urlsplit(old.server_url).hostname or ""
            if host not in ("127.0.0.1", "localhost", "::1") or _healthy(old.server_url):
                raise FleetDemoError(
                    f"{self.state_dir} holds the enrolment of kiosk {old.device_id} with "
                    f"{old.server_url}; the demo will not replace it. Point [fleet] state_dir "
                    "at a folder of its own for the demo.")
            force = True
        if force:
            for name in ("agent.sqlite3", "agent.sqlite3-wal", "agent.sqlite3-shm"):
                (self.state_dir / name).unlink(missing_ok=True)
        args = ["provision", "--server", self.base_url, "--token", token,
                "--state-dir", str(self.state_dir)]
        self._run("provision", args + (["--force"] if force else []), self.agent_log)
        self.device_id = DeviceIdentity.load(self.state_dir).device_id

    def _agent_argv(self) -> list[str]:
        """`kiosk agent` with its flags from [fleet] (through the kiosk CLI when the config
        came from a file), pointed at this server, never supervising the app: the demo runs
        the app itself."""
        overrides = ["--server", self.base_url, "--interval", str(self.interval_s),
                     "--app-command", "", "--state-dir", str(self.state_dir)]
        if self.config.source is not None:
            return self._kiosk_argv("--config", str(self.config.source.resolve()), "agent",
                                    *overrides)
        c, fleet = self.config, self.config.fleet
        argv = ["--health-socket", str(c.resolve(fleet.health_socket).resolve()),
                "--data-dir", str(c.resolve(c.paths.data_dir).resolve()),
                "--buffer-hours", str(fleet.buffer_hours),
                "--restart-command", fleet.restart_command]
        return self._kiosk_argv("agent", *argv, *overrides)

    # --- HTTP ---------------------------------------------------------------------------

    def _api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise FleetDemoError(f"{method} {path}: HTTP {exc.code} {detail} "
                                 f"(see {self.server_log})") from None
        except (urllib.error.URLError, OSError) as exc:
            raise FleetDemoError(f"{method} {path}: {exc} (see {self.server_log})") from None

    # --- what the demo shows ------------------------------------------------------------

    def wait_for_heartbeats(self, count: int = 1, timeout: float = 30) -> dict[str, Any]:
        """Until the server holds `count` heartbeats from this kiosk with the app running;
        returns the kiosk's detail (GET /api/v1/kiosks/<id>)."""
        if self.agent is None:
            raise FleetDemoError("the fleet demo is not running")
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            if not self.agent.running():
                raise FleetDemoError(f"the fleet agent exited (exit {self.agent.proc.returncode})"
                                     f"; read {self.agent_log}:\n{self.agent.tail()}")
            detail = self._api("GET", f"/api/v1/kiosks/{self.device_id}")
            seen = _running_heartbeats(detail)
            self._detail = detail
            if seen >= count:
                return detail
            if time.monotonic() >= deadline:
                raise FleetDemoError(
                    f"{seen} of {count} heartbeats with the app running after {timeout:.0f} s; "
                    f"read {self.agent_log} (is the app's health socket "
                    f"{self.config.resolve(self.config.fleet.health_socket)} up?)")
            time.sleep(min(0.25, max(0.05, self.interval_s / 4)))

    def screenshots(self, out_dir: Path) -> list[Path]:
        """Every dashboard page as the demo admin sees it, in real Chromium."""
        from fleet.server.dashboard.screenshots import dashboard_screenshots

        return asyncio.run(dashboard_screenshots(self.base_url, ADMIN, self.password, out_dir))

    def summary(self) -> str:
        detail = self._detail
        if detail is None and self.device_id and self.server and self.server.running():
            detail = self._api("GET", f"/api/v1/kiosks/{self.device_id}")
        state = detail["kiosk"]["state"] if detail else "unknown"
        beats = _running_heartbeats(detail) if detail else 0
        return (f"fleet dashboard {self.base_url}/ (user {ADMIN}, password {self.password})\n"
                f"kiosk {self.device_id} at {SITE['name']}: {state}, {beats} heartbeats with the "
                "app running")


def _running_heartbeats(detail: dict[str, Any]) -> int:
    return sum(1 for h in detail.get("heartbeats", ())
               if h.get("kind") == "heartbeat" and h.get("app_state") == "running")


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url.rstrip("/") + "/healthz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


__all__ = ["ADMIN", "SITE", "FleetDemo", "FleetDemoError", "free_port"]
