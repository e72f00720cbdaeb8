"""The doctor's view of one kiosk: its config, where its files are, and the devices, opened
once and shared by the checks that need them (opening twice would fight over serial ports
and start every simulator twice)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from drivers.registry import DeviceSet
from kiosk.config import KioskConfig
from kiosk.doctor.model import DoctorOptions

_log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.sqlite3"  # kiosk/services.py opens the outbox here, in the data dir
KEYS_DIR = "keys"  # ... and its key store here
STATE_FILES = ("device.key", "device.crt", "ca.crt", "enrolment.json")  # provisioning/device.py


class DoctorContext:
    def __init__(self, config: KioskConfig, options: DoctorOptions) -> None:
        self.config = config
        self.options = options
        self._devices: asyncio.Task[DeviceSet] | None = None
        self._device_set: DeviceSet | None = None

    # -- where things are --------------------------------------------------------------------
    @property
    def config_file(self) -> str:
        return str(self.config.source) if self.config.source else "kiosk.toml"

    @property
    def data_dir(self) -> Path:
        return self.config.resolve(self.config.paths.data_dir).absolute()

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / OUTBOX_FILE

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / KEYS_DIR

    @property
    def state_dir(self) -> Path:
        if self.options.state_dir is not None:
            return self.options.state_dir.absolute()
        fleet = getattr(self.config, "fleet", None)  # the [fleet] section, once it exists
        configured = getattr(fleet, "state_dir", None)
        if configured:
            return self.config.resolve(str(configured)).absolute()
        return self.data_dir / "fleet"

    # -- the running app ---------------------------------------------------------------------
    def app_pid(self) -> int | None:
        """The process holding the outbox's writer lock (the running kiosk app), or None.

        Read passively from /proc/locks: taking the lock to test it could, at the wrong
        instant, make the app's own start fail."""
        return flock_holder(self.outbox_path.with_name(self.outbox_path.name + ".lock"))

    # -- devices -----------------------------------------------------------------------------
    async def devices(self) -> DeviceSet:
        """The configured devices, started (simulators included). Shared: the first caller
        starts them, later callers wait for the same start."""
        if self._devices is None:
            self._devices = asyncio.ensure_future(self._open_devices())
        return await asyncio.shield(self._devices)

    async def _open_devices(self) -> DeviceSet:
        device_set = DeviceSet(self.config.devices)
        self._device_set = device_set
        await device_set.__aenter__()
        return device_set

    async def aclose(self) -> None:
        task, self._devices = self._devices, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        device_set, self._device_set = self._device_set, None
        if device_set is not None:
            try:
                await asyncio.wait_for(device_set.__aexit__(None, None, None), 10)
            except Exception as exc:  # closing must not hide the report
                _log.warning("doctor: closing the devices failed: %s", exc)


def flock_holder(path: Path, locks: Path = Path("/proc/locks")) -> int | None:
    """PID holding a flock() on `path` according to the kernel, or None."""
    try:
        st = path.stat()
        text = locks.read_text("ascii", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK":  # "-> FLOCK" lines are waiters
            continue
        try:
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == (
                os.major(st.st_dev), os.minor(st.st_dev), st.st_ino
            ):
                return int(fields[4])
        except ValueError:
            continue
    return None
