"""The receipt printer's real-time status: DLE EOT answers parsed, and what they mean.

`DLE EOT n` (10 04 n) makes an ESC/POS printer answer one status byte at once, even while
it is offline. Every answer has the same frame: bit 0 off, bit 1 on, bit 4 on, bit 7 off
(mask 0x93 == 0x12); the other bits depend on n:

- n=1 printer: bit 2 drawer pin 3 high, bit 3 offline, bit 5 waiting for online recovery,
  bit 6 paper-feed button pressed;
- n=2 offline cause: bit 2 cover open, bit 3 paper fed by the feed button, bit 5 printing
  stopped by paper end, bit 6 an error occurred;
- n=3 error cause: bit 2 mechanical error, bit 3 autocutter error, bit 5 unrecoverable
  error, bit 6 automatically recoverable error (head too hot);
- n=4 paper roll sensor: bits 2-3 near-end sensor sees paper running low, bits 5-6 end
  sensor sees no paper.

`parse_answers` turns the four answers into a `RealTimeStatus` or raises `StatusParseError`;
`assess` maps that onto the shared status model (state, paper supply, the failure with its
operator action). Pure: no I/O, so both are tested directly with junk bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.base import DeviceFailure, DeviceState, ErrorKind, OperatorAction, SupplyLevel

FRAME_MASK = 0x93  # the bits every DLE EOT answer has fixed
FRAME_VALUE = 0x12  # ... and their values: bit 1 and bit 4 on


class StatusQuery(enum.IntEnum):
    """The `n` of DLE EOT n."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    PAPER_SENSOR = 4

    @property
    def command(self) -> bytes:
        return bytes((0x10, 0x04, self.value))


# Epson allows up to four DLE EOT in one transmission before reading the answers; one round
# trip instead of four matters on a slow serial line.
ALL_QUERIES = b"".join(q.command for q in StatusQuery)


class StatusParseError(ValueError):
    """Bytes that are not a DLE EOT answer (line noise, another device, a desynced stream)."""


@dataclass(frozen=True)
class PrinterFlags:  # n = 1
    offline: bool = False
    drawer_pin_high: bool = False
    waiting_for_recovery: bool = False
    feed_button_pressed: bool = False


@dataclass(frozen=True)
class OfflineCause:  # n = 2
    cover_open: bool = False
    feeding_by_button: bool = False
    paper_end_stop: bool = False
    error: bool = False


@dataclass(frozen=True)
class ErrorCause:  # n = 3
    mechanical: bool = False
    autocutter: bool = False
    unrecoverable: bool = False
    auto_recoverable: bool = False


@dataclass(frozen=True)
class PaperSensor:  # n = 4
    near_end: bool = False
    end: bool = False


@dataclass(frozen=True)
class RealTimeStatus:
    printer: PrinterFlags = PrinterFlags()
    offline_cause: OfflineCause = OfflineCause()
    error_cause: ErrorCause = ErrorCause()
    paper: PaperSensor = PaperSensor()

    @property
    def paper_out(self) -> bool:
        return self.paper.end or self.offline_cause.paper_end_stop


def _bit(value: int, mask: int) -> bool:
    return bool(value & mask)


def parse_answer(query: StatusQuery | int, value: int) -> (
    PrinterFlags | OfflineCause | ErrorCause | PaperSensor
):
    """One answer byte to DLE EOT `query`."""
    try:
        query = StatusQuery(query)
    except ValueError:
        raise StatusParseError(f"DLE EOT {query!r} is not a status query (1-4)") from None
    if not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise StatusParseError(f"status answer {value!r} is not a byte")
    if value & FRAME_MASK != FRAME_VALUE:
        raise StatusParseError(f"0x{value:02x} is not a DLE EOT {query.value} answer")
    if query is StatusQuery.PRINTER:
        return PrinterFlags(
            offline=_bit(value, 0x08),
            drawer_pin_high=_bit(value, 0x04),
            waiting_for_recovery=_bit(value, 0x20),
            feed_button_pressed=_bit(value, 0x40),
        )
    if query is StatusQuery.OFFLINE_CAUSE:
        return OfflineCause(
            cover_open=_bit(value, 0x04),
            feeding_by_button=_bit(value, 0x08),
            paper_end_stop=_bit(value, 0x20),
            error=_bit(value, 0x40),
        )
    if query is StatusQuery.ERROR_CAUSE:
        return ErrorCause(
            mechanical=_bit(value, 0x04),
            autocutter=_bit(value, 0x08),
            unrecoverable=_bit(value, 0x20),
            auto_recoverable=_bit(value, 0x40),
        )
    # Epson sets bits 2 and 3 (and 5 and 6) together; some models (Citizen) have two
    # near-end sensors, one bit each, so either bit counts.
    return PaperSensor(near_end=_bit(value, 0x0C), end=_bit(value, 0x60))


def parse_answers(data: bytes) -> RealTimeStatus:
    """The four answers to `ALL_QUERIES`, in order (n = 1, 2, 3, 4)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StatusParseError(f"status answers must be bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) != len(StatusQuery):
        raise StatusParseError(f"expected {len(StatusQuery)} status bytes, got {len(data)}")
    printer, offline, error, paper = (parse_answer(q, b) for q, b in zip(StatusQuery, data))
    return RealTimeStatus(printer, offline, error, paper)  # type: ignore[arg-type]


# -- typed failures ----------------------------------------------------------------------
class ReceiptPrinterFailure(DeviceFailure):
    """A receipt could not be printed; `message_key` is what the citizen is told.
    `during_job`: the printer failed after taking data, so a partial receipt may be out."""

    message_key = "device.receipt.failed"
    during_job = False


class ReceiptPaperOut(ReceiptPrinterFailure):
    message_key = "device.receipt.paper_out"

    def __init__(self, detail: str = "paper out") -> None:
        super().__init__(
            detail, code="printer.paper_out", kind=ErrorKind.USER, action=OperatorAction.CLEAR
        )


class ReceiptCoverOpen(ReceiptPrinterFailure):
    message_key = "device.receipt.cover_open"

    def __init__(self, detail: str = "cover open") -> None:
        super().__init__(
            detail, code="printer.cover_open", kind=ErrorKind.USER, action=OperatorAction.CLEAR
        )


class ReceiptPrinterOffline(ReceiptPrinterFailure):
    """Unreachable, connection dropped, no answer in time, or the printer says offline.

    RESET: the driver reconnects on its own at the next job or status poll; the dashboard
    escalates on how long the state stays offline.
    """

    message_key = "device.receipt.offline"

    def __init__(self, detail: str, *, code: str = "printer.unreachable") -> None:
        super().__init__(detail, code=code, kind=ErrorKind.HARDWARE, action=OperatorAction.RESET)


class ReceiptPrinterHardwareError(ReceiptPrinterFailure):
    def __init__(
        self, detail: str, *, code: str, action: OperatorAction = OperatorAction.MAINTENANCE
    ) -> None:
        super().__init__(detail, code=code, kind=ErrorKind.HARDWARE, action=action)


# -- what a status means -----------------------------------------------------------------
@dataclass(frozen=True)
class Assessment:
    state: DeviceState
    paper: SupplyLevel
    failure: ReceiptPrinterFailure | None  # None: a job may be sent

    @property
    def can_print(self) -> bool:
        return self.failure is None


def _failure(status: RealTimeStatus) -> ReceiptPrinterFailure | None:
    # Most severe first: an engineer's problem hides whatever else the sensors say.
    error, offline = status.error_cause, status.offline_cause
    if error.unrecoverable:
        return ReceiptPrinterHardwareError("unrecoverable error", code="printer.unrecoverable")
    if error.autocutter:
        return ReceiptPrinterHardwareError("autocutter error", code="printer.cutter")
    if error.mechanical:
        return ReceiptPrinterHardwareError("mechanical error", code="printer.mechanical")
    if offline.cover_open:
        return ReceiptCoverOpen()
    if status.paper_out:
        return ReceiptPaperOut()
    if offline.error and not error.auto_recoverable:
        return ReceiptPrinterHardwareError(
            "error without a cause", code="printer.error", action=OperatorAction.RESET
        )
    transient = error.auto_recoverable or status.printer.feed_button_pressed or (
        offline.feeding_by_button
    )
    if status.printer.offline and not transient:
        return ReceiptPrinterOffline("printer reports offline", code="printer.offline")
    return None


def assess(status: RealTimeStatus) -> Assessment:
    """State, paper level and the failure (if any) that a status stands for."""
    if status.paper_out:
        paper = SupplyLevel.OUT
    elif status.paper.near_end:
        paper = SupplyLevel.LOW
    else:
        paper = SupplyLevel.FULL
    failure = _failure(status)
    if failure is None:
        # A hot head or the feed button stops printing for a moment; data waits in the
        # printer's buffer, so a job may still be sent.
        busy = status.printer.offline or status.error_cause.auto_recoverable
        state = DeviceState.BUSY if busy else DeviceState.ONLINE
    elif isinstance(failure, ReceiptPrinterOffline):
        state = DeviceState.OFFLINE
    elif failure.kind is ErrorKind.USER:
        state = DeviceState.USER_ERROR
    else:
        state = DeviceState.HARDWARE_ERROR
    return Assessment(state, paper, failure)
