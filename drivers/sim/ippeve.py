"""CUPS' `ippeveprinter` as the A4 printer's peer: a real IPP Everywhere printer on a free
localhost port, with A4 paper loaded and faults on demand, for tests and the demo.

ippeveprinter needs a D-Bus bus even with DNS-SD off (`-r off`), so each simulator runs its
own `dbus-daemon` on a socket in its temporary folder. Jobs run a small print command whose
behaviour files beside it decide: how long a job takes, and a one-shot fault for the next
job (a jam that lasts until `clear_jam()`, or an abort). Paper and toner levels are set
through ippeveprinter's web forms (`GET /media?...`, `GET /supplies?...`), which set the
same printer-state-reasons a real printer would report. `-k` keeps every job's document in
the spool folder, so tests compare what the printer received byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path

import aiohttp

from drivers.a4 import ipp

_log = logging.getLogger(__name__)

A4 = "iso_a4_210x297mm"
# ippeveprinter's default trays: media-source-supported = auto, main, manual, by-pass-tray.
_MAIN_TRAY, _BYPASS_TRAY = 1, 3
# printer-supply values: 0 = waste toner tank, 1 = black toner. The form must carry both,
# or ippeveprinter drops the missing one from printer-supply for good.
_WASTE_TANK_LEVEL = 25

# The print command ippeveprinter runs for each job with the spooled file as $1. Lines on
# stderr starting "STATE:" change printer-state-reasons; a non-zero exit aborts the job.
_PRINT_COMMAND = """#!/bin/sh
# ippeveprinter print command (simulator): the files beside it decide each job's fate.
here=$(dirname "$0")
seconds=$(cat "$here/job-seconds" 2>/dev/null || echo 0.2)
fault=none
# mv is atomic: exactly one job takes a one-shot fault.
if mv "$here/next-fault" "$here/fault.$$" 2>/dev/null; then
  fault=$(cat "$here/fault.$$")
  rm -f "$here/fault.$$"
fi
case "$fault" in
  jam)
    echo "STATE: +media-jam" >&2
    echo "ERROR: paper jam (simulated)" >&2
    i=0
    while [ ! -e "$here/jam-cleared" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done
    rm -f "$here/jam-cleared"
    echo "STATE: -media-jam" >&2
    exit 1
    ;;
  abort)
    echo "ERROR: job aborted (simulated)" >&2
    exit 1
    ;;
esac
echo "INFO: printing" >&2
sleep "$seconds"
exit 0
"""


class SimulatorError(RuntimeError):
    """The simulator could not start or a control request failed."""


def free_port() -> int:
    """A TCP port nobody listens on now (ephemeral range, so never a default service port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class IppEvePrinter:
    """`async with IppEvePrinter() as sim:` — then print to `sim.uri`."""

    def __init__(
        self,
        name: str = "Kiosk A4 (simulated)",
        *,
        port: int | None = None,
        job_seconds: float = 0.2,
        executable: str = "ippeveprinter",
        dbus_daemon: str = "dbus-daemon",
    ) -> None:
        self.name = name
        self.port = port
        self._job_seconds = job_seconds
        self._executable = executable
        self._dbus_daemon = dbus_daemon
        self._dir: Path | None = None
        self._dbus: asyncio.subprocess.Process | None = None
        self._printer: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._request_ids = 0

    # -- where things are --------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return f"ipp://localhost:{self.port}/ipp/print"

    @property
    def web_url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def directory(self) -> Path:
        if self._dir is None:
            raise SimulatorError("the simulator is not running")
        return self._dir

    @property
    def spool_dir(self) -> Path:
        return self.directory / "spool"

    @property
    def log_path(self) -> Path:
        return self.directory / "ippeveprinter.log"

    # -- start and stop ----------------------------------------------------------------------
    async def __aenter__(self) -> IppEvePrinter:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 15.0) -> None:
        if self._dir is not None:
            raise SimulatorError("already started")
        for tool in (self._executable, self._dbus_daemon):
            if shutil.which(tool) is None:
                raise SimulatorError(f"{tool} not found (Debian: cups-ipp-utils, dbus-daemon)")
        self._dir = Path(tempfile.mkdtemp(prefix="ippeve-"))
        try:
            (self._dir / "spool").mkdir()
            command = self._dir / "print-command.sh"
            command.write_text(_PRINT_COMMAND, encoding="ascii")
            command.chmod(0o755)
            self.set_job_seconds(self._job_seconds)
            self._session = aiohttp.ClientSession()
            bus = await self._start_dbus(timeout)
            port_given = self.port is not None
            for _ in range(1 if port_given else 3):
                if not port_given:
                    self.port = free_port()
                if await self._start_printer(bus, command, timeout):
                    break
            else:
                raise SimulatorError(
                    f"ippeveprinter did not start; its log: {self._tail_log()}"
                )
            await self.load_paper()
            await self.set_toner(100)
        except BaseException:
            await self.stop()
            raise
        _log.info("ippeveprinter %r ready at %s", self.name, self.uri)

    async def _start_dbus(self, timeout: float) -> str:
        address = f"unix:path={self.directory / 'dbus.sock'}"
        self._dbus = await asyncio.create_subprocess_exec(
            self._dbus_daemon, "--session", f"--address={address}", "--nofork",
            "--nopidfile", "--print-address",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert self._dbus.stdout is not None
        try:
            line = await asyncio.wait_for(self._dbus.stdout.readline(), timeout)
        except TimeoutError:
            raise SimulatorError("dbus-daemon did not print its address") from None
        if not line.strip():
            raise SimulatorError("dbus-daemon exited at start")
        return address

    async def _start_printer(self, bus: str, command: Path, timeout: float) -> bool:
        """Start ippeveprinter on `self.port`; False if it exited (port taken), so the
        caller can try another port."""
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus, DBUS_SESSION_BUS_ADDRESS=bus)
        log = open(self.log_path, "ab")  # noqa: SIM115 — the child writes it until stop()
        try:
            self._printer = await asyncio.create_subprocess_exec(
                self._executable,
                "-p", str(self.port),
                "-n", "localhost",
                "-f", "application/pdf",
                "-d", str(self.spool_dir),
                "-k",
                "-r", "off",
                "-c", str(command),
                self.name,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                cwd=self.directory,
                # Its own session: stop() can end print commands still running, and only those.
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._printer.returncode is not None:
                self._printer = None
                return False
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, ipp.IppError):
                await self.printer_attributes("printer-state")
                return True
            await asyncio.sleep(0.05)
        raise SimulatorError(f"ippeveprinter not answering on port {self.port} after {timeout}s")

    async def stop(self) -> None:
        """Stop ippeveprinter, its print commands and dbus-daemon, and wait for them."""
        if self._dir is not None:
            with contextlib.suppress(OSError):
                (self._dir / "jam-cleared").touch()  # let a jammed print command finish
        printer, self._printer = self._printer, None
        if printer is not None:
            await _terminate(printer)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(printer.pid, signal.SIGTERM)  # print commands left in its session
        dbus, self._dbus = self._dbus, None
        if dbus is not None:
            await _terminate(dbus)
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _tail_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    # -- paper and toner ---------------------------------------------------------------------
    async def load_paper(self, sheets: int = 250, size: str = A4) -> None:
        """Fill the main tray: 0 sheets → media-empty (jobs wait for paper), 1–24 →
        media-low. The by-pass tray is left empty with an unknown level, so it does not
        count as empty."""
        await self._web(
            "/media",
            {
                f"size{_MAIN_TRAY}": size,
                f"type{_MAIN_TRAY}": "stationery",
                f"level{_MAIN_TRAY}": str(sheets),
                f"size{_BYPASS_TRAY}": "",
                f"type{_BYPASS_TRAY}": "",
                f"level{_BYPASS_TRAY}": "-2",
            },
        )

    async def paper_out(self) -> None:
        await self.load_paper(0)

    async def set_toner(self, percent: int) -> None:
        """Black toner level: below 10 → toner-low, 0 → toner-empty."""
        await self._web("/supplies", {"supply0": str(_WASTE_TANK_LEVEL), "supply1": str(percent)})

    async def _web(self, path: str, query: dict[str, str]) -> None:
        if self._session is None:
            raise SimulatorError("the simulator is not running")
        async with self._session.get(
            self.web_url + path, params=query, timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            await response.read()
            if response.status != 200:
                raise SimulatorError(f"GET {path}: HTTP {response.status}")

    # -- job behaviour -----------------------------------------------------------------------
    def set_job_seconds(self, seconds: float) -> None:
        """How long each job takes to 'print' (a second job meanwhile gets server-error-busy)."""
        _write_atomically(self.directory / "job-seconds", f"{seconds:.3f}\n")

    def jam_next_job(self) -> None:
        """The next job jams the paper: printer-state-reasons gets media-jam, and the job
        stays stuck until `clear_jam()`, then aborts."""
        (self.directory / "jam-cleared").unlink(missing_ok=True)
        _write_atomically(self.directory / "next-fault", "jam\n")

    def clear_jam(self) -> None:
        """Staff opened the cover and pulled the sheet out."""
        (self.directory / "jam-cleared").touch()

    def abort_next_job(self) -> None:
        """The next job's print command fails: the job ends aborted."""
        _write_atomically(self.directory / "next-fault", "abort\n")

    def clear_faults(self) -> None:
        (self.directory / "next-fault").unlink(missing_ok=True)

    # -- what the printer has ------------------------------------------------------------------
    def spooled_documents(self) -> list[Path]:
        """Documents received so far (`-k` keeps them as `<job-id>-<job-name>.pdf`)."""
        return sorted(self.spool_dir.glob("*.pdf"), key=lambda p: p.stat().st_mtime)

    def document(self, job_id: int) -> bytes:
        """The bytes the printer received for a job."""
        matches = [p for p in self.spool_dir.glob(f"{job_id}-*") if p.suffix == ".pdf"]
        if len(matches) != 1:
            raise SimulatorError(f"job {job_id}: {len(matches)} spooled documents")
        return matches[0].read_bytes()

    async def _request(self, message: ipp.Message) -> ipp.Message:
        if self._session is None:
            raise SimulatorError("the simulator is not running")
        async with self._session.post(
            f"http://localhost:{self.port}/ipp/print",
            data=ipp.encode(message),
            headers={"Content-Type": ipp.MIME_TYPE},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as response:
            return ipp.decode(await response.read()).raise_for_status()

    def _next_id(self) -> int:
        self._request_ids += 1
        return self._request_ids

    async def printer_attributes(self, *names: str) -> ipp.Group:
        response = await self._request(
            ipp.request(
                ipp.Operation.GET_PRINTER_ATTRIBUTES, self._next_id(), self.uri,
                user_name="simulator", requested_attributes=names,
            )
        )
        return response.group(ipp.GroupTag.PRINTER) or ipp.Group(ipp.GroupTag.PRINTER)

    async def job_state(self, job_id: int) -> ipp.JobState:
        response = await self._request(
            ipp.request(
                ipp.Operation.GET_JOB_ATTRIBUTES, self._next_id(), self.uri,
                user_name="simulator", job_id=job_id, requested_attributes=("job-state",),
            )
        )
        group = response.group(ipp.GroupTag.JOB) or ipp.Group(ipp.GroupTag.JOB)
        return ipp.JobState(group.get("job-state"))

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Until the printer has no job in progress (after a fault, before the next test)."""
        deadline = time.monotonic() + timeout
        while True:
            group = await self.printer_attributes("printer-state", "queued-job-count")
            if group.get("printer-state") == ipp.PrinterState.IDLE and not group.get(
                "queued-job-count", 0
            ):
                return
            if time.monotonic() > deadline:
                raise SimulatorError(f"printer still busy after {timeout}s")
            await asyncio.sleep(0.05)


def _write_atomically(path: Path, text: str) -> None:
    # The print command may read while we write: it must see the old or the new file whole.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="ascii")
    temporary.replace(path)


async def _terminate(process: asyncio.subprocess.Process, grace: float = 5.0) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
    await process.wait()
