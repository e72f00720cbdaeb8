"""The 社保卡 reader: PC/SC through pyscard, with the blocking calls in the executor.

`wait_for_card()` waits for a card in slices (so it can be cancelled; `_abort` also calls
SCardCancel to end a wait at once); `read_card()` selects the SSSE directory and reads
EF05 and EF06 record by record, returning `SscCardData`. Records the card protects
(69 82: needs PSAM/HSM authentication) are reported, never guessed: if a field the caller
requires is protected the read fails with `SscAccessDenied`, otherwise the data comes back
with that field listed in `unreadable`.

pcscd going away kills the PC/SC context; the reader drops it, reports `offline`, and a
background watch re-establishes it and reports `online` when pcscd is back.
`create()` builds the reader from the config section and, for `reader = "sim"`, starts a
private pcscd and the virtual card first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Collection
from concurrent.futures import Executor
from typing import TypeVar

from smartcard import scard

from drivers.base import (
    Device,
    DeviceClass,
    DeviceFailure,
    DeviceInfo,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    ErrorKind,
    Lifecycle,
    OperatorAction,
)
from drivers.ssc import apdu, card
from drivers.ssc.apdu import SscCardInvalid, SscFailure
from drivers.ssc.card import IDENTITY_FIELDS, RecordScan, SscCardData, SscField
from kiosk.config import SscReaderSection

_log = logging.getLogger(__name__)
T = TypeVar("T")

_MAX_RECORDS = 16  # a record file has at most this many records worth scanning
# pcscd polls a reader for card presence every 400 ms; a card pulled mid-command shows up
# as a mute answer first and as "empty" only after that poll.
_REMOVAL_GRACE_S = 1.0

_SERVICE_DOWN = frozenset(
    {
        scard.SCARD_E_NO_SERVICE,
        scard.SCARD_E_SERVICE_STOPPED,
        scard.SCARD_F_COMM_ERROR,
        scard.SCARD_E_INVALID_HANDLE,
        scard.SCARD_E_NO_MEMORY,
    }
)
_READER_GONE = frozenset(
    {
        scard.SCARD_E_NO_READERS_AVAILABLE,
        scard.SCARD_E_UNKNOWN_READER,
        scard.SCARD_E_READER_UNAVAILABLE,
    }
)
_CARD_GONE = frozenset({scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD})
_CARD_MUTE = frozenset(
    {scard.SCARD_W_UNRESPONSIVE_CARD, scard.SCARD_W_UNPOWERED_CARD, scard.SCARD_E_PROTO_MISMATCH}
)


# -- typed failures of the reader (the card's own are in apdu.py) ---------------------------
class SscNoCard(SscFailure):
    def __init__(self, detail: str = "no card in the reader") -> None:
        super().__init__(
            detail, code="ssc.no_card", kind=ErrorKind.USER, action=OperatorAction.NONE,
            message_key="device.ssc.no_card",
        )


class SscCardRemoved(SscFailure):
    def __init__(self, detail: str = "card removed during the read") -> None:
        super().__init__(
            detail, code="ssc.card_removed", kind=ErrorKind.USER, action=OperatorAction.NONE,
            message_key="device.ssc.card_removed",
        )


class SscReaderMissing(DeviceUnavailable):
    """pcscd runs but the configured reader is not there (unplugged, dead, wrong name)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, code="ssc.reader_missing", kind=ErrorKind.HARDWARE,
            action=OperatorAction.MAINTENANCE, message_key="device.ssc.reader_missing",
        )


class SscServiceDown(DeviceUnavailable):
    """No PC/SC service: pcscd is not running or has just restarted."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, code="ssc.pcsc_unavailable", kind=ErrorKind.HARDWARE,
            action=OperatorAction.MAINTENANCE, message_key="device.ssc.reader_missing",
        )


def _hex(result: int) -> str:
    return f"{result & 0xFFFFFFFF:08X}"


def _state_for(failure: DeviceFailure) -> DeviceState | None:
    if isinstance(failure, SscServiceDown):
        return DeviceState.OFFLINE
    if isinstance(failure, SscReaderMissing):
        return DeviceState.NO_DEVICE
    return None  # by kind: user → user_error, hardware → hardware_error


class SscReader(Device):
    device_class = DeviceClass.SSC_READER

    def __init__(
        self,
        name: str = "ssc",
        *,
        reader: str = "",
        command_timeout: float = 5.0,
        poll_interval: float = 0.25,
        watch_interval: float | None = 2.0,
        executor: Executor | None = None,
    ) -> None:
        super().__init__(name, command_timeout=command_timeout, executor=executor)
        self.reader_filter = reader  # part of the PC/SC reader name; "" = the first reader
        self.poll_interval = poll_interval
        self.watch_interval = watch_interval
        self.sim_card: object | None = None  # the virtual card, when create() started one
        # PC/SC handles; only touched by blocking helpers, which run one at a time under
        # the command lock (the exception is _abort, which only calls SCardCancel).
        self._context: int | None = None
        self._reader: str | None = None
        self._card: int | None = None
        self._protocol = 0
        self._reader_state = scard.SCARD_STATE_UNAWARE
        self._watch_task: asyncio.Task[None] | None = None

    # -- lifecycle hooks --------------------------------------------------------------------
    async def _open(self) -> None:
        reader, _ = await self._call(self._check)
        self._update(state=DeviceState.ONLINE, info=DeviceInfo(model=reader, vendor="PC/SC"))

    async def _enable(self) -> None:
        if self.watch_interval:
            self._watch_task = asyncio.create_task(self._watch(), name=f"{self.name}-watch")

    async def _disable(self) -> None:
        await self._stop_watch()

    async def _close(self) -> None:
        await self._stop_watch()
        await self._call(self._release)

    def _abort(self) -> None:
        context = self._context
        if context is not None:
            # Ends a SCardGetStatusChange in progress. A transmit in progress cannot be
            # interrupted from the client; the next command disconnects that card handle.
            scard.SCardCancel(context)

    async def _selftest(self) -> str:
        if self.status.lifecycle is Lifecycle.CLOSED:
            raise DeviceUnavailable("device is closed", code="closed")
        reader, present = await self._call(self._check)
        return f"reader {reader!r} ready, {'a card' if present else 'no card'} inserted"

    # -- public commands ----------------------------------------------------------------------
    async def refresh(self) -> DeviceState:
        """Check pcscd and the reader now (reconnecting if pcscd came back); returns the
        state. Used by the background watch; cheap enough to call from a health check."""
        try:
            await self._call(self._check)
        except DeviceTimeout:
            return self.status.state
        except DeviceFailure as failure:
            state = _state_for(failure) or DeviceState.HARDWARE_ERROR
            if self.status.state is not state:  # report a change once, not every tick
                _log.warning("device %s: %s (%s)", self.name, failure.code, failure)
                self._fail(failure, state)
            return state
        if self.status.state in (DeviceState.OFFLINE, DeviceState.NO_DEVICE):
            _log.info("device %s: reader back", self.name)
            self._update(state=DeviceState.ONLINE)
        return self.status.state

    async def card_present(self) -> bool:
        self._require(Lifecycle.ENABLED)
        return await self._guard(self._call(self._poll_card, 0))

    async def wait_for_card(self, timeout: float | None = None) -> None:
        """Return once a card is in the reader; `SscNoCard` after `timeout` seconds.

        Polls in short slices, so cancelling the awaiting task stops it promptly."""
        self._require(Lifecycle.ENABLED)
        deadline = None if timeout is None else time.monotonic() + timeout
        slice_ms = max(1, int(self.poll_interval * 1000))
        while True:
            present = await self._guard(
                self._call(self._poll_card, slice_ms, timeout=self.poll_interval + 5.0)
            )
            self._mark_working()
            if present:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise SscNoCard(f"no card within {timeout}s")

    async def read_card(self, *, require: Collection[SscField] = IDENTITY_FIELDS) -> SscCardData:
        """Read the inserted card. Fields in `require` must be readable (else the typed
        failure: `SscAccessDenied` if protected, `SscCardInvalid` if the card lacks them);
        others that the card protects are returned as None and listed in `unreadable`."""
        self._require(Lifecycle.ENABLED)
        self._update(state=DeviceState.BUSY)
        try:
            data = await self._guard(self._read())
        except asyncio.CancelledError:
            self._mark_working()
            raise
        try:
            data.require(require)
        except SscFailure as failure:
            _log.info("device %s: card read refused: %s", self.name, failure.code)
            raise self._fail(failure) from None
        self._update(state=DeviceState.ONLINE)
        return data

    # -- helpers on the event loop -------------------------------------------------------------
    async def _guard(self, awaitable: Awaitable[T]) -> T:
        """Record a typed failure in the status (timeouts are recorded by `_call`)."""
        try:
            return await awaitable
        except DeviceTimeout:
            raise
        except DeviceFailure as failure:
            _log.info("device %s: %s", self.name, failure.code)
            raise self._fail(failure, _state_for(failure)) from None

    def _mark_working(self) -> None:
        """The reader answered: leave an error state a past card or outage left behind."""
        if self.status.state not in (DeviceState.ONLINE, DeviceState.BUSY):
            self._update(state=DeviceState.ONLINE)

    async def _read(self) -> SscCardData:
        await self._call(self._connect_card)
        try:
            await self._exchange_ok(apdu.select_by_name(), "select SSSE")
            ef05 = await self._scan(apdu.EF05)
            ef06 = await self._scan(apdu.EF06)
        except (DeviceTimeout, asyncio.CancelledError):
            raise  # the handle may be inside a blocked transmit; the next connect cleans up
        except DeviceFailure:
            with contextlib.suppress(DeviceFailure):
                await self._call(self._disconnect_card)
            raise
        await self._call(self._disconnect_card)
        return card.build(ef05, ef06)

    async def _exchange(self, command: bytes) -> apdu.Response:
        return await self._call(apdu.exchange, self._transmit, command)

    async def _exchange_ok(self, command: bytes, step: str) -> None:
        apdu.check_select(await self._exchange(command), step)

    async def _scan(self, fid: int) -> RecordScan:
        """Read the EF's records in order until the card says there are no more.

        The tag inside each record says which field it is, so a card with an extra record
        (some issuers add one) is still read right; a refused record has no tag, so its
        field is inferred from the standard layout after the last tag seen."""
        await self._exchange_ok(apdu.select_ef(fid), f"select {fid:04X}")
        layout = card.LAYOUTS[fid]
        scan = RecordScan()
        last_tag: int | None = None
        for number in range(1, _MAX_RECORDS + 1):
            step = f"read {fid:04X} record {number}"
            response = await self._exchange(apdu.read_record(number))
            outcome = apdu.classify_record(response, step)
            if outcome == apdu.RecordOutcome.END:
                break
            if outcome == apdu.RecordOutcome.DENIED:
                tag = card.tag_at(layout, last_tag)
                if tag is not None:
                    _log.info("device %s: %s is protected (69 82)", self.name, step)
                    scan.denied.add(tag)
                    last_tag = tag
                continue
            record = apdu.parse_record(response.data)
            scan.records.setdefault(record.tag, record.value)
            last_tag = record.tag
            if all(t in scan.records or t in scan.denied for t in layout):
                break  # every field of the file is accounted for
        return scan

    async def _watch(self) -> None:
        assert self.watch_interval
        while True:
            await asyncio.sleep(self.watch_interval)
            if self._command_lock.locked():
                continue  # a read or wait is running and will report trouble itself
            with contextlib.suppress(DeviceFailure):
                await self.refresh()

    async def _stop_watch(self) -> None:
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- blocking helpers (executor) -----------------------------------------------------------
    def _drop_context(self) -> None:
        if self._context is not None:
            scard.SCardReleaseContext(self._context)  # fails harmlessly on a dead context
        self._context, self._reader, self._card = None, None, None
        self._reader_state = scard.SCARD_STATE_UNAWARE

    def _service_down(self, result: int, step: str) -> SscServiceDown:
        self._drop_context()
        return SscServiceDown(f"{step}: PC/SC {_hex(result)} {scard.SCardGetErrorMessage(result)}")

    def _ensure_context(self) -> int:
        if self._context is None:
            result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if result != scard.SCARD_S_SUCCESS:
                raise SscServiceDown(f"no PC/SC service ({_hex(result)})")
            self._context = context
        return self._context

    def _ensure_reader(self) -> str:
        had_context = self._context is not None
        context = self._ensure_context()
        result, names = scard.SCardListReaders(context, [])
        if result in _SERVICE_DOWN and had_context:
            # A context from before a pcscd restart is dead even though the new pcscd is up:
            # try once with a fresh one, so the citizen who comes next is not refused.
            self._drop_context()
            context = self._ensure_context()
            result, names = scard.SCardListReaders(context, [])
        if result in _SERVICE_DOWN:
            raise self._service_down(result, "list readers")
        if result in _READER_GONE or (result == scard.SCARD_S_SUCCESS and not names):
            raise SscReaderMissing("no PC/SC reader connected")
        if result != scard.SCARD_S_SUCCESS:
            raise SscFailure(f"list readers: PC/SC {_hex(result)}", code="ssc.pcsc_error")
        wanted = self.reader_filter.lower()
        matches = [n for n in names if wanted in n.lower()]
        if not matches:
            raise SscReaderMissing(f"no reader matching {self.reader_filter!r}")
        if self._reader != matches[0]:
            self._reader, self._reader_state = matches[0], scard.SCARD_STATE_UNAWARE
        return self._reader

    def _reader_event(self, timeout_ms: int) -> int:
        """The reader's state after waiting up to `timeout_ms` for a change. The state
        keeps pcsc-lite's event counter (high word), so a card swapped between two polls
        still counts as a change."""
        reader = self._ensure_reader()
        context = self._ensure_context()
        result, states = scard.SCardGetStatusChange(
            context, timeout_ms, [(reader, self._reader_state)]
        )
        if result in _SERVICE_DOWN:
            raise self._service_down(result, "reader status")
        if result in _READER_GONE:
            raise SscReaderMissing("reader went away")
        if result in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
            return self._reader_state
        if result != scard.SCARD_S_SUCCESS:
            raise SscFailure(f"reader status: PC/SC {_hex(result)}", code="ssc.pcsc_error")
        state = states[0][1]
        if state & scard.SCARD_STATE_UNKNOWN:
            self._reader, self._reader_state = None, scard.SCARD_STATE_UNAWARE
            raise SscReaderMissing("reader went away")
        self._reader_state = state & ~scard.SCARD_STATE_CHANGED
        return self._reader_state

    def _check(self) -> tuple[str, bool]:
        present = bool(self._reader_event(0) & scard.SCARD_STATE_PRESENT)
        assert self._reader is not None
        return self._reader, present

    def _poll_card(self, timeout_ms: int) -> bool:
        return bool(self._reader_event(timeout_ms) & scard.SCARD_STATE_PRESENT)

    def _card_gone(self, within_s: float) -> bool:
        """Wait up to `within_s` for pcscd to see the card leave (it polls every 400 ms)."""
        deadline = time.monotonic() + within_s
        while True:
            state = self._reader_event(50)
            if state & scard.SCARD_STATE_EMPTY:
                return True
            if time.monotonic() >= deadline:
                return False

    def _connect_card(self) -> None:
        self._disconnect_card()  # a handle left by a timed-out or cancelled read
        context, reader = self._ensure_context(), self._ensure_reader()
        result, handle, protocol = scard.SCardConnect(
            context, reader, scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if result in _SERVICE_DOWN:
            raise self._service_down(result, "connect")
        if result in _CARD_GONE:
            raise SscNoCard()
        if result in _CARD_MUTE:
            raise SscCardInvalid(f"card does not answer ({_hex(result)})")
        if result in _READER_GONE:
            raise SscReaderMissing("reader went away")
        if result == scard.SCARD_E_SHARING_VIOLATION:
            raise SscFailure("another program holds the card", code="ssc.reader_busy")
        if result != scard.SCARD_S_SUCCESS:
            raise SscFailure(f"connect: PC/SC {_hex(result)}", code="ssc.pcsc_error")
        self._card, self._protocol = handle, protocol

    def _disconnect_card(self) -> None:
        handle, self._card = self._card, None
        if handle is not None:
            # Reset, so no selection or security state survives the citizen's session.
            scard.SCardDisconnect(handle, scard.SCARD_RESET_CARD)

    def _transmit(self, command: bytes) -> bytes:
        if self._card is None:
            raise SscCardRemoved("no card connection")
        result, response = scard.SCardTransmit(self._card, self._protocol, list(command))
        if result == scard.SCARD_S_SUCCESS and response:
            return bytes(response)
        if result in _SERVICE_DOWN:
            raise self._service_down(result, "transmit")
        if result in _CARD_GONE:
            raise SscCardRemoved()
        # A mute answer (empty, or "not transacted") is what a card pulled mid-command
        # gives; tell that apart from a card that answers nonsense by asking pcscd.
        if self._card_gone(_REMOVAL_GRACE_S):
            raise SscCardRemoved()
        if result == scard.SCARD_S_SUCCESS:
            return b""  # the parser reports the empty answer as malformed
        raise SscFailure(f"transmit: PC/SC {_hex(result)}", code="ssc.transmit_failed")

    def _release(self) -> None:
        if self._card is not None:
            scard.SCardDisconnect(self._card, scard.SCARD_RESET_CARD)
        self._drop_context()


async def create(
    section: SscReaderSection,
    *,
    stack: contextlib.AsyncExitStack,
    name: str = "ssc",
) -> SscReader:
    """The reader the config asks for, unopened. With `reader = "sim"`, first start a
    private pcscd (unless one with a vpcd reader already runs) and the virtual card, and
    register their shutdown on `stack`; open/close of the reader stay with the caller."""
    if section.reader != "sim":
        return SscReader(name, reader=section.reader, command_timeout=section.timeout_s)

    from drivers.sim.pcscd import VPCD_READER, Pcscd, PcscdAlreadyRunning, PcscdError, pcsc_readers
    from drivers.sim.ssc_card import VirtualSscCard

    pcscd = Pcscd()
    try:
        await asyncio.to_thread(pcscd.start)
    except PcscdAlreadyRunning:
        names = await asyncio.to_thread(pcsc_readers) or []
        if not any(VPCD_READER in n for n in names):
            raise DeviceUnavailable(
                "a pcscd without a vpcd reader is running; stop it to use the simulator",
                code="ssc.sim_failed", action=OperatorAction.CONFIGURATION,
                message_key="device.ssc.reader_missing",
            ) from None
        _log.info("simulator: using the pcscd already running, it has a vpcd reader")
    except PcscdError as exc:
        raise DeviceUnavailable(
            f"simulator pcscd did not start: {exc}", code="ssc.sim_failed",
            action=OperatorAction.CONFIGURATION, message_key="device.ssc.reader_missing",
        ) from None
    else:
        stack.push_async_callback(asyncio.to_thread, pcscd.stop)
    # A kiosk starts with an empty slot: a card there at start-up would begin a visit.
    virtual_card = VirtualSscCard("wang").start(inserted=False)
    stack.push_async_callback(asyncio.to_thread, virtual_card.stop)
    reader = SscReader(name, reader=f"{VPCD_READER} 00 00", command_timeout=section.timeout_s)
    reader.sim_card = virtual_card
    return reader
