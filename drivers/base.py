"""The status model every device shares, and the async base class drivers build on.

Vocabulary from XFS4IoT / UnifiedPOS (DESIGN §4), so ops tools can reason about any device:
lifecycle `closed → open → claimed → enabled`; a `state`; `supplies` by name; the
`last_error` with its kind and the **operator action** that fixes it (`clear`: branch staff
can, e.g. reload paper; `maintenance`: send an engineer); `info`; and events
`status_changed` (the delta only), `error` and `threshold` (a supply crossed low/out).

Blocking I/O (pyscard, pyserial, USB) runs on the device's own daemon threads
(`drivers/executor.py`) through `Device._call`, which applies the command timeout and turns a
timeout or cancellation into the driver's `_abort()` so the blocking call is interrupted
rather than left running; a call that cannot be interrupted is left behind without blocking
other devices or the process's exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from drivers.executor import DeviceExecutor, ExecutorSaturated

_log = logging.getLogger(__name__)
T = TypeVar("T")


class DeviceClass(enum.StrEnum):
    ID_CARD_READER = "id_card_reader"
    SSC_READER = "ssc_reader"
    QR_SCANNER = "qr_scanner"
    RECEIPT_PRINTER = "receipt_printer"
    A4_PRINTER = "a4_printer"


class Lifecycle(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    CLAIMED = "claimed"
    ENABLED = "enabled"


class DeviceState(enum.StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    POWER_OFF = "power_off"
    NO_DEVICE = "no_device"
    HARDWARE_ERROR = "hardware_error"
    USER_ERROR = "user_error"
    BUSY = "busy"
    FRAUD_ATTEMPT = "fraud_attempt"


class SupplyLevel(enum.StrEnum):
    UNKNOWN = "unknown"
    FULL = "full"
    LOW = "low"
    OUT = "out"
    JAMMED = "jammed"


class ErrorKind(enum.StrEnum):
    HARDWARE = "hardware"
    SOFTWARE = "software"
    USER = "user"
    FRAUD = "fraud"


class OperatorAction(enum.StrEnum):
    NONE = "none"  # nothing for a person to do (e.g. the citizen pulled the card early)
    RESET = "reset"  # the software can reset the device itself
    CLEAR = "clear"  # branch staff can fix it: reload paper, clear a jam, close a cover
    MAINTENANCE = "maintenance"  # send an engineer
    CONFIGURATION = "configuration"  # the kiosk's configuration is wrong
    SUSPEND = "suspend"  # take the device out of use until ops decide


@dataclass(frozen=True)
class DeviceError:
    kind: ErrorKind
    action: OperatorAction
    code: str  # typed completion code, e.g. "sam.read_failed", "printer.paper_out"
    vendor_text: str = ""  # what the device or library said, for the engineer
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class DeviceInfo:
    model: str = ""
    serial: str = ""
    firmware: str = ""
    vendor: str = ""


@dataclass(frozen=True)
class DeviceStatus:
    device_class: DeviceClass
    name: str
    lifecycle: Lifecycle = Lifecycle.CLOSED
    state: DeviceState = DeviceState.OFFLINE
    supplies: Mapping[str, SupplyLevel] = field(default_factory=lambda: MappingProxyType({}))
    last_error: DeviceError | None = None
    info: DeviceInfo = DeviceInfo()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, for the health endpoint, heartbeats and `kiosk devices`."""
        error = self.last_error
        return {
            "device_class": str(self.device_class),
            "name": self.name,
            "lifecycle": str(self.lifecycle),
            "state": str(self.state),
            "supplies": {name: str(level) for name, level in self.supplies.items()},
            "last_error": None if error is None else {
                "kind": str(error.kind),
                "action": str(error.action),
                "code": error.code,
                "vendor_text": error.vendor_text,
                "at": error.at,
            },
            "info": asdict(self.info),
        }


class DeviceFailure(Exception):
    """A device command failed. Typed by subclass and `code`; never carries personal data.

    `message_key` is the i18n key of the plain-language text a citizen sees (what happened
    and what to do); `error` is what goes into the device status for ops.
    """

    message_key = "device.failed"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        kind: ErrorKind = ErrorKind.HARDWARE,
        action: OperatorAction = OperatorAction.RESET,
        message_key: str | None = None,
    ) -> None:
        super().__init__(detail or type(self).__name__)
        self.code = code or type(self).__name__
        self.kind = kind
        self.action = action
        if message_key is not None:
            self.message_key = message_key

    def as_error(self) -> DeviceError:
        return DeviceError(self.kind, self.action, self.code, str(self))


class DeviceTimeout(DeviceFailure):
    message_key = "device.timeout"


class DeviceUnavailable(DeviceFailure):
    """Not connected, powered off or not enabled."""

    message_key = "device.unavailable"


class LifecycleError(DeviceFailure):
    """A command was called in the wrong lifecycle state: a programming error."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, code="lifecycle", kind=ErrorKind.SOFTWARE, action=OperatorAction.RESET
        )


@dataclass(frozen=True)
class DeviceEvent:
    kind: str  # "status_changed" | "error" | "threshold"
    device: str
    changes: Mapping[str, Any] = field(default_factory=dict)  # status_changed: the delta
    error: DeviceError | None = None
    supply: str | None = None  # threshold: which supply
    level: SupplyLevel | None = None


@dataclass(frozen=True)
class SelfTestResult:
    device: str
    device_class: DeviceClass
    ok: bool
    detail: str
    status: DeviceStatus
    duration_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "device_class": str(self.device_class),
            "ok": self.ok,
            "detail": self.detail,
            "duration_ms": round(self.duration_ms, 1),
            "status": self.status.to_json(),
        }


Listener = Callable[[DeviceEvent], None]


def _consume(future: asyncio.Future) -> None:
    """Retrieve an abandoned call's outcome so asyncio does not report it as lost."""
    if not future.cancelled():
        future.exception()
_THRESHOLD_LEVELS = (SupplyLevel.LOW, SupplyLevel.OUT, SupplyLevel.JAMMED)


class Device:
    """Base class of every driver. Subclasses set `device_class` and implement the hooks
    `_open`, `_close` (and optionally `_claim`, `_enable`, `_disable`, `_abort`, `_selftest`).
    """

    device_class: ClassVar[DeviceClass]

    def __init__(
        self,
        name: str,
        *,
        command_timeout: float = 5.0,
        executor: Executor | None = None,
    ) -> None:
        self.name = name
        self.command_timeout = command_timeout
        self._executor: Executor = executor or DeviceExecutor(name)
        self._status = DeviceStatus(self.device_class, name)
        self._listeners: list[Listener] = []
        self._command_lock = asyncio.Lock()

    # -- status and events ---------------------------------------------------------------
    @property
    def status(self) -> DeviceStatus:
        return self._status

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, event: DeviceEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken observer must not break the device
                _log.exception("device %s: listener failed on %s", self.name, event.kind)

    def _update(self, **changes: Any) -> None:
        """Change status fields; emits `status_changed` with only what really changed,
        `error` when a new error is recorded, `threshold` when a supply crosses low/out."""
        if "supplies" in changes:
            changes["supplies"] = MappingProxyType(dict(changes["supplies"]))
        old = self._status
        new = replace(old, **changes)
        delta = {k: v for k, v in changes.items() if getattr(old, k) != v}
        if not delta:
            return
        self._status = new
        self._emit(DeviceEvent("status_changed", self.name, changes=delta))
        if "last_error" in delta and new.last_error is not None:
            self._emit(DeviceEvent("error", self.name, error=new.last_error))
        if "supplies" in delta:
            for supply, level in new.supplies.items():
                if level in _THRESHOLD_LEVELS and old.supplies.get(supply) != level:
                    self._emit(DeviceEvent("threshold", self.name, supply=supply, level=level))

    def _fail(self, failure: DeviceFailure, state: DeviceState | None = None) -> DeviceFailure:
        """Record a failure in the status and return it, for `raise self._fail(...)`."""
        if state is None:
            state = {
                ErrorKind.USER: DeviceState.USER_ERROR,
                ErrorKind.FRAUD: DeviceState.FRAUD_ATTEMPT,
            }.get(failure.kind, DeviceState.HARDWARE_ERROR)
        self._update(state=state, last_error=failure.as_error())
        return failure

    # -- lifecycle -----------------------------------------------------------------------
    def _require(self, *allowed: Lifecycle) -> None:
        if self._status.lifecycle not in allowed:
            raise LifecycleError(
                f"{self.name}: {self._status.lifecycle} is not one of "
                + ", ".join(str(a) for a in allowed)
            )

    async def open(self) -> None:
        self._require(Lifecycle.CLOSED)
        try:
            await self._open()
        except DeviceFailure as failure:
            raise self._fail(failure, DeviceState.NO_DEVICE) from failure
        self._update(lifecycle=Lifecycle.OPEN)

    async def claim(self) -> None:
        self._require(Lifecycle.OPEN)
        await self._claim()
        self._update(lifecycle=Lifecycle.CLAIMED)

    async def enable(self) -> None:
        self._require(Lifecycle.CLAIMED)
        await self._enable()
        self._update(lifecycle=Lifecycle.ENABLED)

    async def start(self) -> None:
        """open → claim → enable, as a kiosk does at start-up."""
        await self.open()
        await self.claim()
        await self.enable()

    async def disable(self) -> None:
        self._require(Lifecycle.ENABLED)
        await self._disable()
        self._update(lifecycle=Lifecycle.CLAIMED)

    async def close(self) -> None:
        """From any state back to closed; never raises for a device already gone."""
        if self._status.lifecycle is Lifecycle.CLOSED:
            return
        with contextlib.suppress(DeviceFailure):
            if self._status.lifecycle is Lifecycle.ENABLED:
                await self._disable()
        try:
            await self._close()
        except DeviceFailure as failure:
            _log.warning("device %s: close failed: %s", self.name, failure)
        self._update(lifecycle=Lifecycle.CLOSED, state=DeviceState.OFFLINE)
        if isinstance(self._executor, DeviceExecutor):
            self._executor.shutdown(wait=False)
            self._executor = DeviceExecutor(self.name)  # a closed device may be reopened

    async def selftest(self) -> SelfTestResult:
        started = time.perf_counter()
        try:
            detail = await asyncio.wait_for(self._selftest(), self.command_timeout)
            ok = True
        except DeviceFailure as failure:
            ok, detail = False, f"{failure.code}: {failure}"
        except TimeoutError:
            ok, detail = False, f"no answer within {self.command_timeout}s"
        return SelfTestResult(
            self.name,
            self.device_class,
            ok,
            detail,
            self._status,
            (time.perf_counter() - started) * 1000,
        )

    # -- hooks for subclasses ------------------------------------------------------------
    async def _open(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        raise NotImplementedError

    async def _claim(self) -> None:
        return None

    async def _enable(self) -> None:
        return None

    async def _disable(self) -> None:
        return None

    def _abort(self) -> None:
        """Interrupt a blocking call running in the executor (close the port, cancel the
        transaction). Called from the event loop's thread on timeout or cancellation."""
        return None

    async def _selftest(self) -> str:
        if self._status.lifecycle is Lifecycle.CLOSED:
            raise DeviceUnavailable("device is closed", code="closed")
        return f"{self._status.state}"

    # -- running commands ----------------------------------------------------------------
    async def _call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run blocking `fn(*args)` in the executor, one command at a time per device.

        On timeout the driver's `_abort()` runs and `DeviceTimeout` is raised; on
        cancellation `_abort()` runs and the cancellation propagates.
        """
        limit = self.command_timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        async with self._command_lock:
            try:
                future = loop.run_in_executor(self._executor, functools.partial(fn, *args))
            except ExecutorSaturated as exc:
                raise self._fail(
                    DeviceFailure(
                        str(exc),
                        code="driver_stuck",
                        kind=ErrorKind.SOFTWARE,
                        action=OperatorAction.RESET,
                    )
                ) from None
            try:
                return await asyncio.wait_for(asyncio.shield(future), limit)
            except TimeoutError:
                future.add_done_callback(_consume)  # abandoned: it may still fail later
                self._abort()
                raise self._fail(
                    DeviceTimeout(f"no answer within {limit}s", code="timeout"),
                    DeviceState.OFFLINE,
                ) from None
            except asyncio.CancelledError:
                future.add_done_callback(_consume)
                self._abort()
                raise
