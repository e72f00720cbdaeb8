"""The receipt printer driver: ESC/POS over TCP 9100, USB or serial, through python-escpos.

A job is one raster image (`GS v 0`, python-escpos' default `image()` implementation, in
960-row fragments) and a cut. Before sending, the driver asks for the real-time status
(`DLE EOT 1..4`, see `status.py`) and refuses to send into a printer that cannot print, so a
citizen never waits on a receipt that is not coming; after sending it asks again, which is
how paper running out mid-job is noticed. Every outcome lands in the shared status model.

Time: a whole job (encode, connect, status, send, status) must finish within `timeout_s`.
The transports get the time left as their own socket/serial/USB timeouts, so a dead
printer gives a typed `ReceiptPrinterOffline` (code `printer.timeout`); `Device._call` with
a little more time is the backstop that aborts (closes) a transport that ignores its timeout.

Network printers get a fresh connection per job and per status poll: printers drop idle
port-9100 connections, and a stale socket would fail a citizen's job for nothing.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from drivers.base import (
    Device,
    DeviceClass,
    DeviceFailure,
    DeviceInfo,
    DeviceState,
    DeviceStatus,
    DeviceTimeout,
    ErrorKind,
    Lifecycle,
    OperatorAction,
    SupplyLevel,
)
from drivers.receipt.status import (
    ALL_QUERIES,
    Assessment,
    RealTimeStatus,
    ReceiptPrinterFailure,
    ReceiptPrinterHardwareError,
    ReceiptPrinterOffline,
    StatusParseError,
    StatusQuery,
    assess,
    parse_answers,
)

_log = logging.getLogger(__name__)
T = TypeVar("T")


def _import_escpos() -> None:
    """Import python-escpos without its side effects.

    Its `capabilities` module, on import, calls `mkdtemp()` (even when told where to cache)
    and `logging.basicConfig()`, which would put an unredacted handler on the root logger.
    The temp dir is made inside a scratch folder removed right after the import (the pickle
    is only read or written during it); the capabilities pickle (saves ~115 ms per start)
    goes to the user's cache unless ESCPOS_CAPABILITIES_PICKLE_DIR says otherwise; handlers
    added to the root logger are removed again.
    """
    if "escpos.capabilities" in sys.modules:
        return
    try:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        cache = Path(base) / "kiosk" / "escpos"
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.environ.setdefault("ESCPOS_CAPABILITIES_PICKLE_DIR", str(cache))
    except (OSError, RuntimeError):
        pass  # no writable home: the pickle is rebuilt in the scratch folder each start
    root = logging.getLogger()
    handlers = list(root.handlers)
    scratch = tempfile.mkdtemp(prefix="kiosk-escpos-")
    saved, tempfile.tempdir = tempfile.tempdir, scratch
    try:
        import escpos.capabilities  # noqa: F401
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(scratch, ignore_errors=True)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)

_import_escpos()

from escpos.exceptions import DeviceNotFoundError  # noqa: E402
from escpos.printer import Dummy, Network, Serial, Usb  # noqa: E402

from kiosk.config import ReceiptPrinterSection  # noqa: E402

CHUNK = 16 * 1024  # bytes per write: keeps each blocking write short and abortable
ABORT_GRACE_S = 1.0  # extra time `_call` waits before it aborts a transport itself

# Real-time commands (DLE EOT n, DLE ENQ n, DLE DC4 fn) are obeyed by a printer wherever
# they appear, even inside image data ("graphic data might accidentally include a data
# string matching this command" - the ESC/POS manuals). A stray DLE DC4 in a receipt image
# could clear the buffer or power the printer off, and a stray DLE EOT would answer status
# bytes nobody asked for. Clearing that one dot (0x10 → 0x00) costs nothing visible.
_REALTIME_IN_DATA = re.compile(rb"\x10(?=[\x04\x05\x14])")


def encode_job(image: Image.Image, profile: str = "TM-T20II") -> bytes:
    """The bytes of one receipt job, as python-escpos writes them: initialise, the image in
    raster mode, feed and cut."""
    out = Dummy(profile=profile)
    width = out.profile.profile_data.get("media", {}).get("width", {}).get("pixels")
    if isinstance(width, int) and image.width > width:
        raise ValueError(f"receipt image is {image.width} dots wide; {profile} prints {width}")
    out.hw("INIT")
    out.image(image, impl="bitImageRaster")  # never "graphics": wrong length past 64 KiB
    out.cut()
    # The only bytes that can hold 10 04/05/14 are image data: our own commands (ESC @,
    # GS v 0 with width 72 and heights ≤ 960, ESC d 6, GS V 0) never do.
    return _REALTIME_IN_DATA.sub(b"\x00", out.output)


# -- transports ----------------------------------------------------------------------------
class _LinkDown(Exception):
    """The transport failed; `code` is the status code to report."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _LinkDown("printer.timeout", "job time limit reached")
    return left


class _LinkBase:
    keep_open = True  # False: a fresh link (connection) per operation
    where = ""

    def __init__(self) -> None:
        self.aborted = False  # set by abort(): the worker using this link was abandoned

    def close(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        """Called from the event loop's thread: closing the transport makes a worker
        blocked in it return at once."""
        self.aborted = True
        self.close()


class _DeviceLink(_LinkBase):
    """A link through a python-escpos device object that `open()` connects (serial, USB);
    `_handle` is the open port or USB device, None while closed."""

    printer: Any
    closed_text = "device closed"

    def __init__(self) -> None:
        super().__init__()
        self._handle: Any = None

    def connect(self, deadline: float) -> None:
        if self._handle is not None:
            return
        self.aborted = False
        try:
            self.printer.open()
        except DeviceNotFoundError as exc:
            raise _LinkDown("printer.unreachable", f"cannot open {self.where}") from exc
        self._handle = self.printer.device

    def _open_handle(self) -> Any:
        handle = self._handle
        if handle is None:  # abort() closed it under us
            raise _LinkDown("printer.disconnected", self.closed_text)
        return handle


class _NetworkLink(_LinkBase):
    keep_open = False

    def __init__(self, section: ReceiptPrinterSection) -> None:
        super().__init__()
        self.printer = Network(section.host, section.port, timeout=section.timeout_s,
                               profile=section.profile)
        self.where = f"{section.host}:{section.port}"
        self._sock: Any = None
        self._closing = threading.Lock()

    def connect(self, deadline: float) -> None:
        if self._sock is not None:
            return
        # Connected here rather than by python-escpos' open(), which leaks the socket when
        # the connection is refused; the printer object then owns it (close() shuts it).
        try:
            sock = socket.create_connection(
                (self.printer.host, self.printer.port), timeout=_left(deadline)
            )
        except TimeoutError:
            raise _LinkDown("printer.timeout", "no connection") from None
        except OSError as exc:
            raise _LinkDown("printer.unreachable", f"cannot connect: {exc}") from None
        # Status queries are 12 bytes right after a big write: without NODELAY, Nagle holds
        # them until the printer ACKs, and embedded stacks delay ACKs by up to 200 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.printer.device = sock
        self._sock = sock

    def _socket(self) -> Any:
        sock = self._sock
        if sock is None:  # abort() closed it under us
            raise _LinkDown("printer.disconnected", "connection closed")
        return sock

    def write(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        sock = self._socket()
        try:
            for start in range(0, len(view), CHUNK):
                sock.settimeout(_left(deadline))
                sock.sendall(view[start : start + CHUNK])
        except TimeoutError:
            raise _LinkDown("printer.timeout", "printer stopped taking data") from None
        except OSError as exc:
            raise _LinkDown("printer.disconnected", f"connection lost: {exc}") from None

    def read(self, size: int, deadline: float) -> bytes:
        got = bytearray()
        sock = self._socket()
        try:
            while len(got) < size:
                sock.settimeout(_left(deadline))
                chunk = sock.recv(size - len(got))
                if not chunk:
                    raise _LinkDown("printer.disconnected", "printer closed the connection")
                got += chunk
        except TimeoutError:
            raise _LinkDown("printer.timeout", "no status answer") from None
        except OSError as exc:
            raise _LinkDown("printer.disconnected", f"connection lost: {exc}") from None
        return bytes(got)

    def discard_input(self) -> None:
        """Drop bytes nobody asked for (a late answer), so answers stay in step."""
        sock = self._socket()
        sock.setblocking(False)
        try:
            while True:
                if not sock.recv(4096):
                    raise _LinkDown("printer.disconnected", "printer closed the connection")
        except BlockingIOError:
            pass
        except OSError as exc:
            raise _LinkDown("printer.disconnected", f"connection lost: {exc}") from None

    def close(self) -> None:
        # Not python-escpos' close(): abort() (loop thread) and the worker may both close,
        # and its check-then-close is not safe across threads.
        with self._closing:
            sock, self._sock = self._sock, None
            if sock is None:
                return
            self.printer.device = False  # python-escpos' "not open" marker
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # a thread blocked in recv/send returns at once
        sock.close()



class _SerialLink(_DeviceLink):
    closed_text = "serial port closed"

    def __init__(self, section: ReceiptPrinterSection) -> None:
        super().__init__()
        if not section.serial_port:
            raise ReceiptPrinterFailure(
                "connection is serial but serial_port is empty",
                code="printer.configuration",
                kind=ErrorKind.SOFTWARE,
                action=OperatorAction.CONFIGURATION,
            )
        self.printer = Serial(section.serial_port, baudrate=section.serial_baudrate,
                              timeout=section.timeout_s, profile=section.profile)
        self.where = section.serial_port

    def _serial(self) -> Any:
        return self._open_handle()

    def write(self, data: bytes, deadline: float) -> None:
        import serial

        view = memoryview(data)
        port = self._serial()
        try:
            for start in range(0, len(view), CHUNK):
                port.write_timeout = _left(deadline)
                port.write(view[start : start + CHUNK])
        except serial.SerialTimeoutException:
            raise _LinkDown("printer.timeout", "printer stopped taking data") from None
        except (serial.SerialException, OSError, TypeError) as exc:
            # pyserial raises TypeError when the port was closed under it by abort()
            raise _LinkDown("printer.disconnected", f"serial port failed: {exc}") from None

    def read(self, size: int, deadline: float) -> bytes:
        import serial

        got = bytearray()
        port = self._serial()
        try:
            while len(got) < size:
                port.timeout = _left(deadline)
                got += port.read(size - len(got))  # b"" when its timeout passes
        except (serial.SerialException, OSError, TypeError) as exc:
            raise _LinkDown("printer.disconnected", f"serial port failed: {exc}") from None
        return bytes(got)

    def discard_input(self) -> None:
        self._serial().reset_input_buffer()

    def close(self) -> None:
        port, self._handle = self._handle, None
        if port is not None:
            # Not python-escpos' close(): it flushes first, which can block forever when the
            # printer holds flow control (paper out, cover open).
            with contextlib.suppress(Exception):
                port.cancel_write()
                port.cancel_read()
            with contextlib.suppress(Exception):
                port.close()
            self.printer._device = False



class _UsbLink(_DeviceLink):
    closed_text = "usb device closed"

    def __init__(self, section: ReceiptPrinterSection) -> None:
        super().__init__()
        # Checked before python-escpos' Usb exists: without pyusb its close() (also run by
        # __del__) raises.
        if not Usb.is_usable():
            raise ReceiptPrinterFailure(
                "connection is usb but pyusb is not installed",
                code="printer.configuration",
                kind=ErrorKind.SOFTWARE,
                action=OperatorAction.CONFIGURATION,
            )
        self.timeout_ms = int(section.timeout_s * 1000)
        self.printer = Usb(section.usb_vendor, section.usb_product, timeout=self.timeout_ms,
                           profile=section.profile)
        self.where = f"usb {section.usb_vendor:04x}:{section.usb_product:04x}"

    def _device(self) -> Any:
        return self._open_handle()

    @staticmethod
    def _ms(deadline: float) -> int:
        return max(1, int(_left(deadline) * 1000))

    def write(self, data: bytes, deadline: float) -> None:
        import usb.core

        dev = self._device()
        try:
            for start in range(0, len(data), CHUNK):
                dev.write(self.printer.out_ep, data[start : start + CHUNK], self._ms(deadline))
        except usb.core.USBTimeoutError:
            raise _LinkDown("printer.timeout", "printer stopped taking data") from None
        except usb.core.USBError as exc:
            raise _LinkDown("printer.disconnected", f"usb transfer failed: {exc}") from None

    def read(self, size: int, deadline: float) -> bytes:
        import usb.core

        got = bytearray()
        dev = self._device()
        try:
            while len(got) < size:
                got += bytes(dev.read(self.printer.in_ep, 64, self._ms(deadline)))
        except usb.core.USBTimeoutError:
            raise _LinkDown("printer.timeout", "no status answer") from None
        except usb.core.USBError as exc:
            raise _LinkDown("printer.disconnected", f"usb transfer failed: {exc}") from None
        return bytes(got[:size])

    def discard_input(self) -> None:
        import usb.core

        dev = self._device()
        with contextlib.suppress(usb.core.USBError):
            while dev.read(self.printer.in_ep, 64, 1):
                pass

    def close(self) -> None:
        self._handle = None
        with contextlib.suppress(Exception):
            self.printer.close()



_Link = _NetworkLink | _SerialLink | _UsbLink
_LINKS: dict[str, type[_NetworkLink] | type[_SerialLink] | type[_UsbLink]] = {
    "network": _NetworkLink,
    "serial": _SerialLink,
    "usb": _UsbLink,
}


# -- the device ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PrintResult:
    bytes_sent: int
    duration_ms: float
    paper: SupplyLevel


@dataclass(frozen=True)
class _JobOutcome:
    before: RealTimeStatus
    after: RealTimeStatus | None  # None: not sent, the printer could not print
    bytes_sent: int


class ReceiptPrinter(Device):
    """`start()`, then `print_receipt(image)`; `refresh_status()` for a periodic poll."""

    device_class = DeviceClass.RECEIPT_PRINTER

    def __init__(
        self, section: ReceiptPrinterSection, *, name: str = "receipt_printer", executor=None
    ) -> None:
        if section.connection not in _LINKS:
            raise ValueError(
                f"connection {section.connection!r}: use create() for the simulator"
            )
        super().__init__(name, command_timeout=section.timeout_s, executor=executor)
        self.section = section
        self.sim: Any = None  # the emulator, when create() started one (demos inject faults)
        self._link: _Link | None = None
        self._active_fault: str | None = None  # code of the condition the status shows now

    # -- lifecycle hooks -----------------------------------------------------------------
    async def _open(self) -> None:
        try:
            self._link = _LINKS[self.section.connection](self.section)
        except KeyError as exc:  # python-escpos knows no such profile
            raise ReceiptPrinterFailure(
                f"unknown python-escpos profile {exc}",
                code="printer.configuration",
                kind=ErrorKind.SOFTWARE,
                action=OperatorAction.CONFIGURATION,
            ) from None
        self._update(info=DeviceInfo(model=self.section.profile, vendor=_vendor(self.section)))
        if self._link.keep_open:  # a missing USB/serial device is `no_device`: open fails
            await self._run(lambda link, deadline: link.connect(deadline))
        # A network printer that is off is only offline: the kiosk starts anyway and the
        # printer is picked up at the next poll or job.
        await self._refresh()

    async def _close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def _abort(self) -> None:
        if self._link is not None:
            self._link.abort()

    async def _selftest(self) -> str:
        if self._status.lifecycle is Lifecycle.CLOSED:
            return await super()._selftest()
        report = await self._run(self._status_blocking)
        assessment = self._apply(report)
        if assessment.failure is not None:
            raise assessment.failure
        return f"{assessment.state}, paper {assessment.paper}"

    # -- commands ------------------------------------------------------------------------
    async def refresh_status(self) -> DeviceStatus:
        """Ask the printer (DLE EOT 1-4) and update the status; device trouble is recorded
        in the status, not raised."""
        self._require(Lifecycle.OPEN, Lifecycle.CLAIMED, Lifecycle.ENABLED)
        await self._refresh()
        return self._status

    async def _refresh(self) -> None:
        with contextlib.suppress(ReceiptPrinterFailure):
            self._apply(await self._run(self._status_blocking))

    async def print_receipt(self, image: Image.Image) -> PrintResult:
        """Print one receipt image (mode "1", at most the roll's width) and cut.

        Raises a `ReceiptPrinterFailure` (paper out, cover open, offline, hardware) with its
        `message_key`; `during_job` says the printer failed after taking data, so the
        receipt may be partial. The status is up to date either way.
        """
        self._require(Lifecycle.ENABLED)
        started = time.perf_counter()
        before_state = self._status.state
        self._update(state=DeviceState.BUSY)
        try:
            outcome = await self._run(functools.partial(self._job_blocking, image))
        except BaseException:
            if self._status.state is DeviceState.BUSY:  # cancelled: state unknown until a poll
                self._update(state=before_state)
            raise
        assessment = self._apply(outcome.before)
        if outcome.after is None:
            assert assessment.failure is not None
            raise assessment.failure
        assessment = self._apply(outcome.after)
        if assessment.failure is not None:
            assessment.failure.during_job = True
            raise assessment.failure
        _log.info("%s: printed a receipt (%d bytes)", self.name, outcome.bytes_sent)
        return PrintResult(
            outcome.bytes_sent, (time.perf_counter() - started) * 1000, assessment.paper
        )

    # -- blocking parts (executor thread) ------------------------------------------------
    def _status_blocking(self, link: _Link, deadline: float) -> RealTimeStatus:
        link.connect(deadline)
        try:
            return self._query(link, deadline)
        finally:
            if not link.keep_open:
                link.close()

    def _job_blocking(self, image: Image.Image, link: _Link, deadline: float) -> _JobOutcome:
        data = encode_job(image, self.section.profile)
        link.connect(deadline)
        try:
            before = self._query(link, deadline)
            if not assess(before).can_print:
                return _JobOutcome(before, None, 0)  # nothing sent: no half receipt
            link.write(data, deadline)
            return _JobOutcome(before, self._query(link, deadline), len(data))
        finally:
            if not link.keep_open:
                link.close()

    @staticmethod
    def _query(link: _Link, deadline: float) -> RealTimeStatus:
        link.discard_input()
        link.write(ALL_QUERIES, deadline)
        return parse_answers(link.read(len(StatusQuery), deadline))

    # -- running and recording -----------------------------------------------------------
    async def _run(self, fn: Callable[[_Link, float], T]) -> T:
        """Run `fn(link, deadline)` in the executor within `timeout_s`; transport trouble
        becomes a recorded, typed `ReceiptPrinterFailure`."""
        limit = self.section.timeout_s
        deadline = time.monotonic() + limit
        try:
            return await self._call(self._attempt, fn, deadline, timeout=limit + ABORT_GRACE_S)
        except _LinkDown as down:
            failure: ReceiptPrinterFailure = ReceiptPrinterOffline(str(down), code=down.code)
            raise self._record(failure, DeviceState.OFFLINE) from None
        except StatusParseError as exc:
            failure = ReceiptPrinterHardwareError(
                str(exc), code="printer.bad_status", action=OperatorAction.RESET
            )
            raise self._record(failure, DeviceState.HARDWARE_ERROR) from None
        except DeviceTimeout as exc:  # the backstop fired; _call has aborted the link
            failure = ReceiptPrinterOffline(str(exc), code="printer.timeout")
            raise self._record(failure, DeviceState.OFFLINE) from None

    def _attempt(self, fn: Callable[[_Link, float], T], deadline: float) -> T | None:
        """In the executor, one operation at a time (`_call` holds the command lock)."""
        link = self._link
        if link is None:
            raise _LinkDown("printer.closed", "printer is closed")
        if not link.keep_open:
            # A fresh link per operation: an aborted worker still finishing keeps its own.
            link = self._link = type(link)(self.section)
        try:
            return fn(link, deadline)
        except (_LinkDown, StatusParseError) as exc:
            link.close()  # reconnecting also resynchronises a garbled byte stream
            if link.aborted:
                return None  # `_call` gave up on this worker: nobody reads the result
            if isinstance(exc, _LinkDown):
                raise _LinkDown(exc.code, f"{link.where}: {exc}") from None
            raise StatusParseError(f"{link.where}: {exc}") from None
        except Exception:
            if link.aborted:
                return None
            raise

    def _record(self, failure: DeviceFailure, state: DeviceState) -> DeviceFailure:
        """Put a failure in the status. The same condition seen again (every poll and every
        refused job while the paper is out) only restores the state, so ops get one `error`
        event per occurrence; a healthy status ends the occurrence."""
        last = self._status.last_error
        if failure.code == self._active_fault and last is not None and last.code == failure.code:
            self._update(state=state)
            return failure
        self._active_fault = failure.code
        return self._fail(failure, state)

    def _apply(self, report: RealTimeStatus) -> Assessment:
        assessment = assess(report)
        self._update(supplies={**self._status.supplies, "paper": assessment.paper})
        if assessment.failure is None:
            self._active_fault = None
            self._update(state=assessment.state)
        else:
            self._record(assessment.failure, assessment.state)
        return assessment


def _vendor(section: ReceiptPrinterSection) -> str:
    try:
        return str(Dummy(profile=section.profile).profile.profile_data.get("vendor", ""))
    except Exception:  # an unknown profile name: python-escpos falls back or raises
        return ""


async def create(
    section: ReceiptPrinterSection,
    *,
    stack: contextlib.AsyncExitStack,
    name: str = "receipt_printer",
) -> ReceiptPrinter:
    """The receipt printer the config asks for, not yet opened. For `connection = "sim"`
    the TCP emulator is started on 127.0.0.1 (ephemeral port) and the printer points at it;
    `stack` stops the emulator and closes the printer (printer first)."""
    sim = None
    if section.connection == "sim":
        from drivers.sim.escpos_printer import EscposPrinterEmulator

        sim = await stack.enter_async_context(EscposPrinterEmulator())
        section = section.model_copy(
            update={"connection": "network", "host": sim.host, "port": sim.port}
        )
    printer = ReceiptPrinter(section, name=name)
    printer.sim = printer.simulator = sim  # `simulator`, as the other drivers call it
    stack.push_async_callback(printer.close)
    return printer
