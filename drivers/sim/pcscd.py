"""Start and stop a pcscd in the foreground, with vsmartcard-vpcd as its only reader driver,
for tests and the demo (the virtual 社保卡 plugs into that reader).

pcscd reads its reader list from a private `--config` folder, so the machine's own
/etc/reader.conf.d does not matter and the vpcd port can be chosen. The daemon's socket
cannot be made private: Debian 12's pcscd 1.9.9 ignores PCSCLITE_CSOCK_NAME (only the client
library honours it) and always serves /run/pcscd/pcscd.comm, so `start()` refuses to run
beside another pcscd instead of fighting over that socket.

Ready means pcscd answers and lists the "Virtual PCD" reader (polled through pyscard).
Stop closes your own PC/SC connections first (a reader's `close()`); `stop()` then
terminates pcscd and waits for its PID to exit, so the next one can bind vpcd's port.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from smartcard import scard

from drivers.sim.ssc_card import VPCD_PORT

_log = logging.getLogger(__name__)

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_READER = "Virtual PCD"  # vpcd's first slot shows up as "Virtual PCD 00 00"


class PcscdError(RuntimeError):
    """pcscd could not be started or stopped; the message carries the end of its log."""


class PcscdAlreadyRunning(PcscdError):
    """Another pcscd already serves /run/pcscd/pcscd.comm."""


def pcsc_readers() -> list[str] | None:
    """The reader names pcscd lists, [] for none, or None when no pcscd answers."""
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        return None
    try:
        result, names = scard.SCardListReaders(context, [])
        if result == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if result != scard.SCARD_S_SUCCESS:
            return None
        return list(names)
    finally:
        scard.SCardReleaseContext(context)


def wait_for_card_state(
    present: bool, *, reader: str = f"{VPCD_READER} 00 00", timeout: float = 5.0
) -> bool:
    """Wait until pcscd reports a card in `reader` (present=True) or none (False).

    pcscd polls vpcd every ~400 ms, so a virtual card's connect or disconnect shows up a
    little later; tests wait for that instead of sleeping a guessed time."""
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        return False
    try:
        deadline = time.monotonic() + timeout
        state = scard.SCARD_STATE_UNAWARE
        while True:
            result, states = scard.SCardGetStatusChange(context, 100, [(reader, state)])
            if result == scard.SCARD_S_SUCCESS:
                state = states[0][1] & ~scard.SCARD_STATE_CHANGED
            elif result != scard.SCARD_E_TIMEOUT:
                return False
            if bool(state & scard.SCARD_STATE_PRESENT) == present and state & (
                scard.SCARD_STATE_PRESENT | scard.SCARD_STATE_EMPTY
            ):
                return True
            if time.monotonic() >= deadline:
                return False
    finally:
        scard.SCardReleaseContext(context)


class Pcscd:
    """One pcscd process. `start()` / `stop()` / `restart()`; a context manager too."""

    def __init__(
        self,
        *,
        vpcd_port: int = VPCD_PORT,
        binary: str = "pcscd",
        debug: bool = False,
    ) -> None:
        self.vpcd_port = vpcd_port
        self.binary = binary
        self.debug = debug
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path | None:
        return self._dir / "pcscd.log" if self._dir is not None else None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        if shutil.which(self.binary) is None:
            raise PcscdError(f"{self.binary} is not installed (Debian package pcscd)")
        if not VPCD_DRIVER.is_file():
            raise PcscdError(f"{VPCD_DRIVER} is missing (Debian package vsmartcard-vpcd)")
        if pcsc_readers() is not None:
            raise PcscdAlreadyRunning("another pcscd is already running on this machine")
        self._dir = Path(tempfile.mkdtemp(prefix="kiosk-pcscd-"))
        config = self._dir / "reader.conf.d"
        config.mkdir()
        # DEVICENAME /dev/null:PORT makes vpcd listen for a virtual card on PORT.
        (config / "vpcd").write_text(
            f'FRIENDLYNAME "{VPCD_READER}"\n'
            f"DEVICENAME   /dev/null:0x{self.vpcd_port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{self.vpcd_port:04X}\n",
            encoding="ascii",
        )
        assert self.log_path is not None
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [self.binary, "--foreground", "--config", str(config),
                 "--debug" if self.debug else "--info"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is ours to forward
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                tail = self._log_tail()
                self._cleanup()
                raise PcscdError(f"pcscd exited with {self._process.returncode}:\n{tail}")
            names = pcsc_readers()
            if names and any(VPCD_READER in name for name in names):
                _log.info("pcscd %s ready (vpcd on port %s)", self.pid, self.vpcd_port)
                return
            if time.monotonic() > deadline:
                self.stop()
                raise PcscdError(f"pcscd not ready after {timeout}s")
            time.sleep(0.02)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate pcscd and wait until its PID has exited (SIGKILL after `timeout`)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                _log.warning("pcscd %s ignored SIGTERM for %ss; killing it", process.pid, timeout)
                process.kill()
                process.wait(timeout)
        self._process = None
        self._cleanup()

    def restart(self, timeout: float = 10.0) -> None:
        self.stop()
        self.start(timeout)

    def __enter__(self) -> Pcscd:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _log_tail(self, lines: int = 20) -> str:
        path = self.log_path
        if path is None or not path.is_file():
            return ""
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])

    def _cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
