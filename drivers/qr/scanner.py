"""QR scanners as devices: a serial scanner module (lines over pyserial) and a camera (frames
from a `FrameSource`, decoded by the project's pipeline). Both produce `ScanResult`s through
an async iterator, `read()` and callbacks, with repeat suppression and latency measured from
the first byte / the frame's capture.

Blocking work — serial reads, frame grabs, decoding — runs in the executor through
`Device._call`, never on the event loop. A scanned code is a secret: it is never logged,
put into the device status, or shown by `repr`; logs carry its length and latency only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import serial
from PIL import Image

from drivers.base import (
    Device,
    DeviceClass,
    DeviceFailure,
    DeviceState,
    DeviceUnavailable,
    ErrorKind,
    OperatorAction,
)
from drivers.qr.decode import QrDecoder
from drivers.qr.payload import FRAMING, Charset, CodeTooLong, PayloadError, validate

_log = logging.getLogger(__name__)
ScanSource = Literal["camera", "serial"]
_QUEUE_SIZE = 8  # scans nobody has read yet; older ones are dropped (stale for a citizen)
_TERMINATORS = b"\r\n"


@dataclass(frozen=True)
class ScanResult:
    text: str = field(repr=False)  # secret: never logged, never in repr
    source: ScanSource
    latency_ms: float  # from the frame's capture / the line's first byte to this result
    at: float  # wall-clock time (time.time()) the result was produced


@dataclass(frozen=True)
class Frame:
    image: Image.Image
    captured_at: float  # time.monotonic() when the sensor delivered it


class FrameSource(Protocol):
    """Where a `CameraQrScanner` gets frames. All methods block and run in the executor.

    `read(timeout)` returns the newest frame (dropping older buffered ones, so the decoder
    never works on a stale picture), or None if none arrived within `timeout` seconds; it
    raises OSError if the camera is gone. A real V4L2 source needs OpenCV or a V4L2 binding
    (see docs/devices/qr.md); `drivers.sim.camera.LiveFrameSource` is the simulator.
    """

    def open(self) -> None: ...

    def read(self, timeout: float) -> Frame | None: ...

    def close(self) -> None: ...


class ScannerMissing(DeviceFailure):
    message_key = "device.qr.scanner_missing"

    def __init__(self, detail: str, *, code: str = "qr.scanner_missing",
                 kind: ErrorKind = ErrorKind.HARDWARE,
                 action: OperatorAction = OperatorAction.MAINTENANCE) -> None:
        super().__init__(detail, code=code, kind=kind, action=action)


class RepeatFilter:
    """Says whether a code was already seen within `window_s`. The window slides: a phone
    held in front of the scanner for a minute fires once, not every `window_s`. Keeps only
    digests of codes, so the filter holds no secret."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._last_seen: dict[bytes, float] = {}

    def is_repeat(self, key: bytes) -> bool:
        now = self._clock()
        digest = hashlib.sha256(key).digest()
        self._last_seen = {d: t for d, t in self._last_seen.items() if now - t < self.window_s}
        repeat = digest in self._last_seen
        self._last_seen[digest] = now
        return repeat

    def clear(self) -> None:
        self._last_seen.clear()


_STOPPED = object()  # queued when the scanner is disabled: ends iterators and read()


class QrScanner(Device):
    """What both scanners share: validation, repeat suppression, delivery to readers."""

    device_class = DeviceClass.QR_SCANNER
    source: ScanSource

    def __init__(
        self,
        name: str,
        *,
        max_length: int = 1024,
        charset: Charset = Charset.PRINTABLE,
        repeat_suppress_s: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        **kwargs,
    ) -> None:
        super().__init__(name, **kwargs)
        self.max_length = max_length
        self.charset = charset
        # `clock` drives repeat suppression only (tests move it by hand); latency is always
        # time.monotonic(), the clock frame and byte timestamps are taken with.
        self._repeats = RepeatFilter(repeat_suppress_s, clock)
        self._queue: asyncio.Queue[object] = asyncio.Queue(_QUEUE_SIZE)
        self._scan_listeners: list[Callable[[ScanResult], None]] = []
        self._reject_listeners: list[Callable[[PayloadError], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.simulator: object | None = None  # set by create() when it started one
        self.scans_accepted = 0
        self.scans_rejected = 0
        self.scans_suppressed = 0

    # -- for consumers -------------------------------------------------------------------
    def on_scan(self, callback: Callable[[ScanResult], None]) -> Callable[[], None]:
        """Call `callback` on the event loop for every accepted scan; returns unsubscribe."""
        return _add(self._scan_listeners, callback)

    def on_reject(self, callback: Callable[[PayloadError], None]) -> Callable[[], None]:
        """Call `callback` for every refused code (too long, wrong charset, empty)."""
        return _add(self._reject_listeners, callback)

    async def read(self, timeout: float | None = None) -> ScanResult:
        """The next scan. Raises its `PayloadError` if the next code was refused,
        `TimeoutError` if nothing was scanned within `timeout`, and `DeviceUnavailable`
        once the scanner is disabled."""
        item = await asyncio.wait_for(self._queue.get(), timeout)
        if item is _STOPPED:
            self._queue.put_nowait(_STOPPED)  # every other reader must see it too
            raise DeviceUnavailable(f"{self.name} is disabled", code="disabled")
        if isinstance(item, PayloadError):
            raise item
        assert isinstance(item, ScanResult)
        return item

    async def scans(self) -> AsyncIterator[ScanResult]:
        """Accepted scans until the scanner is disabled; refused codes are skipped (they
        reach `on_reject` listeners)."""
        while True:
            try:
                yield await self.read()
            except PayloadError:
                continue
            except DeviceUnavailable:
                return

    def __aiter__(self) -> AsyncIterator[ScanResult]:
        return self.scans()

    def forget_repeats(self) -> None:
        """The session ended: the next citizen's first scan must fire even if it is the
        same code (a shared family phone)."""
        self._repeats.clear()

    # -- lifecycle -----------------------------------------------------------------------
    async def _enable(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._repeats.clear()
        self._task = asyncio.create_task(self._run(), name=f"{self.name}-scan-loop")

    async def _disable(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._put(_STOPPED)

    async def _run(self) -> None:
        raise NotImplementedError

    # -- delivery ------------------------------------------------------------------------
    def _deliver(self, raw: str | bytes, started_at: float) -> None:
        """Validate one scanned code and hand it to readers, unless it is a repeat."""
        key = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
        if self._repeats.is_repeat(key.strip(FRAMING.encode())):
            self.scans_suppressed += 1
            return
        try:
            text = validate(raw, max_length=self.max_length, charset=self.charset)
        except PayloadError as refused:
            self._refuse(refused)
            return
        latency_ms = (time.monotonic() - started_at) * 1000
        result = ScanResult(text, self.source, latency_ms, time.time())
        self.scans_accepted += 1
        _log.info("%s: scan accepted, source=%s len=%d latency_ms=%.1f",
                  self.name, self.source, len(text), latency_ms)
        self._put(result)
        for listener in list(self._scan_listeners):
            _notify(self.name, listener, result)

    def _refuse(self, refused: PayloadError) -> None:
        self.scans_rejected += 1
        _log.info("%s: scan refused, source=%s code=%s (%s)",
                  self.name, self.source, refused.code, refused)
        self._put(refused)
        for listener in list(self._reject_listeners):
            _notify(self.name, listener, refused)

    def _put(self, item: object) -> None:
        if self._queue.full():
            self._queue.get_nowait()  # drop the oldest: a citizen cares about the latest
        self._queue.put_nowait(item)

    def _online(self) -> None:
        if self._status.state is not DeviceState.ONLINE:
            self._update(state=DeviceState.ONLINE)


def _add(listeners: list, callback: Callable) -> Callable[[], None]:
    listeners.append(callback)

    def unsubscribe() -> None:
        if callback in listeners:
            listeners.remove(callback)

    return unsubscribe


def _notify(name: str, listener: Callable, value: object) -> None:
    try:
        listener(value)
    except Exception:  # a broken observer must not stop the scanner
        _log.exception("%s: scan listener failed", name)


@dataclass(frozen=True)
class _Line:
    data: bytes  # without the terminator; empty when `overflow`
    first_byte_at: float
    length: int
    overflow: bool = False


class SerialQrScanner(QrScanner):
    """A scanner module on a serial port (or USB CDC-ACM) sending each code as one line
    ended by CR, LF or CRLF — the factory setting of common kiosk scanner modules."""

    source = "serial"

    def __init__(
        self,
        name: str,
        port: str,
        *,
        baudrate: int = 9600,
        poll_s: float = 0.1,
        partial_timeout_s: float = 0.5,
        reopen_interval_s: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(name, **kwargs)
        self.port = port
        self.baudrate = baudrate
        # The blocking read returns after `poll_s` without data, so the loop notices
        # cancellation and partial lines even if `cancel_read` were not supported.
        self.poll_s = poll_s
        # A line without its terminator for this long is a fragment (the module was
        # unplugged mid-line, or line noise): dropped, never glued to the next code.
        self.partial_timeout_s = partial_timeout_s
        self.reopen_interval_s = reopen_interval_s
        self._serial: serial.Serial | None = None
        # Executor-thread state of the line reader (one read runs at a time: `_call` locks).
        self._buffer = bytearray()
        self._first_byte_at = 0.0
        self._last_byte_at = 0.0
        self._overflow = 0

    def _open_port(self) -> serial.Serial:
        try:
            return serial.Serial(self.port, self.baudrate, timeout=self.poll_s)
        except (serial.SerialException, OSError) as exc:
            raise ScannerMissing(f"cannot open {self.port}: {exc.__class__.__name__}") from None

    async def _open(self) -> None:
        self._serial = await self._call(self._open_port)
        self._buffer.clear()
        self._overflow = 0
        self._update(state=DeviceState.ONLINE, last_error=None)

    async def _close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, port.close)

    def _abort(self) -> None:
        port = self._serial
        if port is not None:
            with contextlib.suppress(Exception):
                port.cancel_read()  # wakes the blocked read at once

    async def _selftest(self) -> str:
        await super()._selftest()
        port = self._serial
        if port is None or not port.is_open:
            raise ScannerMissing(f"{self.port} is not open")
        return f"port {self.port} open at {self.baudrate} baud"

    def _read_line(self) -> _Line | None:
        """Blocking: the next complete line, or None after `poll_s` without one."""
        port = self._serial
        if port is None:
            raise ScannerMissing("port closed")
        while True:
            end = _find_terminator(self._buffer)
            if end >= 0:
                data = bytes(self._buffer[:end])
                del self._buffer[:end + 1]
                line = _Line(data, self._first_byte_at, len(data) + self._overflow,
                             overflow=self._overflow > 0)
                self._overflow = 0
                self._first_byte_at = self._last_byte_at
                return line
            chunk = port.read(port.in_waiting or 1)
            now = time.monotonic()
            if not chunk:
                if (self._buffer or self._overflow) and \
                        now - self._last_byte_at >= self.partial_timeout_s:
                    _log.info("%s: dropped a fragment of %d bytes without terminator",
                              self.name, len(self._buffer) + self._overflow)
                    self._buffer.clear()
                    self._overflow = 0
                return None
            if not self._buffer and not self._overflow:
                self._first_byte_at = now
            self._last_byte_at = now
            self._buffer += chunk
            # Bound memory on a line that never ends: count, don't keep, past the limit.
            end = _find_terminator(self._buffer)
            limit = self.max_length + 8
            if end < 0 and len(self._buffer) > limit:
                self._overflow += len(self._buffer) - limit
                del self._buffer[limit:]

    async def _run(self) -> None:
        while True:
            try:
                line = await self._call(self._read_line, timeout=self.poll_s + 5.0)
            except ScannerMissing as failure:
                self._fail(failure, DeviceState.NO_DEVICE)
                await self._reopen()
                continue
            except (serial.SerialException, OSError) as exc:
                self._fail(ScannerMissing(f"read failed: {exc.__class__.__name__}"),
                           DeviceState.NO_DEVICE)
                await self._reopen()
                continue
            except DeviceFailure:  # a timeout, already in the status; keep reading
                continue
            self._online()
            if line is None or (not line.data and not line.overflow):
                continue  # nothing, or the LF of a CRLF pair
            if line.overflow:
                self._refuse(CodeTooLong(line.length, self.max_length))
            else:
                self._deliver(line.data, line.first_byte_at)

    async def _reopen(self) -> None:
        """The module was unplugged or the port failed: try again every few seconds."""
        old, self._serial = self._serial, None
        if old is not None:
            with contextlib.suppress(Exception):
                old.close()
        while self._serial is None:
            await asyncio.sleep(self.reopen_interval_s)
            try:
                self._serial = await self._call(self._open_port)
            except DeviceFailure:
                continue
        self._buffer.clear()
        self._overflow = 0
        _log.info("%s: port %s reopened", self.name, self.port)


def _find_terminator(buffer: bytearray) -> int:
    cr, lf = buffer.find(b"\r"), buffer.find(b"\n")
    if cr < 0 or lf < 0:
        return max(cr, lf)
    return min(cr, lf)


class CameraQrScanner(QrScanner):
    """A camera looking at the scan window: frames from a `FrameSource`, each decoded by
    the project's pipeline (`drivers.qr.decode.QrDecoder`) in the executor."""

    source = "camera"

    def __init__(
        self,
        name: str,
        frames: FrameSource,
        *,
        decoder: QrDecoder | None = None,
        frame_timeout_s: float = 0.5,
        reopen_interval_s: float = 1.0,
        **kwargs,
    ) -> None:
        super().__init__(name, **kwargs)
        self.frames = frames
        self.reopen_interval_s = reopen_interval_s
        self.decoder = decoder or QrDecoder()
        # Bounded so a stalled camera still lets the loop see cancellation.
        self.frame_timeout_s = frame_timeout_s
        self.frames_decoded = 0

    async def _open(self) -> None:
        try:
            await self._call(self.frames.open)
        except OSError as exc:
            raise ScannerMissing(f"camera did not open: {exc.__class__.__name__}") from None
        self._update(state=DeviceState.ONLINE, last_error=None)

    async def _close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self.frames.close)

    async def _selftest(self) -> str:
        await super()._selftest()
        try:
            frame = await self._call(self.frames.read, self.frame_timeout_s)
        except OSError as exc:
            raise ScannerMissing(f"no frame: {exc.__class__.__name__}") from None
        if frame is None:
            raise ScannerMissing(f"no frame within {self.frame_timeout_s}s")
        return f"camera delivers {frame.image.width}x{frame.image.height} frames"

    async def _run(self) -> None:
        while True:
            try:
                frame = await self._call(self.frames.read, self.frame_timeout_s,
                                         timeout=self.frame_timeout_s + 5.0)
                if frame is None:
                    continue
                decoded = await self._call(self.decoder.decode, frame.image)
            except OSError as exc:
                self._fail(ScannerMissing(f"camera failed: {exc.__class__.__name__}"),
                           DeviceState.NO_DEVICE)
                await self._reopen()
                continue
            except DeviceFailure:  # a timeout, already in the status; keep reading
                continue
            self._online()
            self.frames_decoded += 1
            if decoded is not None:
                self._deliver(decoded.text, frame.captured_at)

    async def _reopen(self) -> None:
        """The camera vanished (USB reset, unplugged): close it and retry opening."""
        with contextlib.suppress(OSError):
            await asyncio.get_running_loop().run_in_executor(self._executor, self.frames.close)
        while True:
            await asyncio.sleep(self.reopen_interval_s)
            try:
                await self._call(self.frames.open)
            except (OSError, DeviceFailure):
                continue
            _log.info("%s: camera reopened", self.name)
            return
