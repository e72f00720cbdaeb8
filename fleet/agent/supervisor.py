"""Supervised mode: the agent starts the kiosk app itself and starts it again when it dies.

Used where no service manager does it (a laptop, the demo, the fault tests); on a kiosk with
systemd the unit restarts the app and the agent runs `restart_command` instead. A crash is
reported at once (the agent sends a heartbeat with the app "down"); restarts back off
(1, 2, 5, 10, 30 s) so a crash loop does not spin, and the backoff resets once the app has
stayed up for a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_log = logging.getLogger(__name__)

BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_S = 60.0


@dataclass(frozen=True)
class AppExit:
    pid: int
    returncode: int  # negative: killed by that signal
    ran_s: float
    at: float  # Unix time

    def describe(self) -> str:
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            how = f"killed by {name}"
        else:
            how = f"exited with status {self.returncode}"
        return f"app (pid {self.pid}) {how} after {self.ran_s:.1f} s"


class AppSupervisor:
    def __init__(
        self,
        argv: Sequence[str],
        *,
        on_exit: Callable[[AppExit], None] = lambda e: None,
        env: dict[str, str] | None = None,
        stop_timeout_s: float = 10.0,
        backoff_s: Sequence[float] = BACKOFF_S,
    ) -> None:
        if not argv:
            raise ValueError("app command is empty")
        self.argv = list(argv)
        self.on_exit = on_exit
        self.env = env
        self.stop_timeout_s = stop_timeout_s
        self.backoff_s = tuple(backoff_s)
        self.crashes = 0
        self.last_exit: AppExit | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._started_at = 0.0
        self._task: asyncio.Task | None = None
        self._restart = asyncio.Event()
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running else None

    @property
    def up_for_s(self) -> float:
        """Seconds since the running app was started (0 when it is not running)."""
        return time.monotonic() - self._started_at if self.running else 0.0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._watch(), name="app-supervisor")

    async def _spawn(self) -> None:
        env = None if self.env is None else {**os.environ, **self.env}
        # Its own process group, so stopping it also stops what it started (simulators).
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, env=env, start_new_session=True
        )
        self._started_at = time.monotonic()
        _log.info("app started (pid %d)", self._proc.pid)

    async def _watch(self) -> None:
        failures_in_a_row = 0
        while not self._stopping:
            proc = self._proc
            assert proc is not None
            waiting = asyncio.create_task(proc.wait())
            restart = asyncio.create_task(self._restart.wait())
            await asyncio.wait({waiting, restart}, return_when=asyncio.FIRST_COMPLETED)
            restart.cancel()
            if self._stopping:
                waiting.cancel()
                return
            if self._restart.is_set():  # asked for: stop it and start again at once
                self._restart.clear()
                await self._terminate(proc)
                waiting.cancel()
                await self._spawn()
                failures_in_a_row = 0
                continue
            ran = time.monotonic() - self._started_at
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # what the dead app left running
            self.last_exit = AppExit(proc.pid, proc.returncode, ran, time.time())
            self.crashes += 1
            failures_in_a_row = 0 if ran >= STABLE_AFTER_S else failures_in_a_row
            delay = self.backoff_s[min(failures_in_a_row, len(self.backoff_s) - 1)]
            failures_in_a_row += 1
            _log.warning("%s; restarting in %.0f s", self.last_exit.describe(), delay)
            try:
                self.on_exit(self.last_exit)
            except Exception:
                _log.exception("app exit listener failed")
            await _sleep_or(self._restart, delay)
            self._restart.clear()
            if self._stopping:
                return
            await self._spawn()

    async def restart(self) -> int:
        """Stop the app (SIGTERM, then SIGKILL after the timeout) and start it again; returns
        the new pid once started."""
        if self._task is None:
            raise RuntimeError("supervisor not started")
        old = self._proc.pid if self._proc else None
        self._restart.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_timeout_s + 5 + max(self.backoff_s)
        while loop.time() < deadline:
            if self.running and self._proc.pid != old:
                return self._proc.pid
            await asyncio.sleep(0.02)
        raise TimeoutError("the app did not start again")

    async def stop(self) -> None:
        self._stopping = True
        self._restart.set()
        if self._proc is not None:
            await self._terminate(self._proc)
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _terminate(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.stop_timeout_s)
        except TimeoutError:
            _log.warning(
                "app (pid %d) ignored SIGTERM for %.0f s: SIGKILL", proc.pid, self.stop_timeout_s
            )
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _sleep_or(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
