"""`IdCardReader`: the resident ID card reader, a SAM module on a serial port.

pyserial runs in the executor through `Device._call`, one command at a time. Each exchange
has its own deadline (the configured timeout) so a silent or slow module ends in a typed
`SamTimeout` from the I/O thread itself; `_call`'s own timeout is only a backstop. On
cancellation or that backstop, `_abort` cancels the pending read (pyserial's
`cancel_read`) and marks the exchange stale, so the thread ends at once instead of
holding the port.

Reading a card is find (20 01) → select (20 02) → read text+photo (30 01). Failures are
recorded in the status with their operator action; "no card" while polling is not a
failure and leaves the status alone. Logs never carry what a card says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import serial

from drivers.base import (
    Device,
    DeviceClass,
    DeviceInfo,
    DeviceState,
    DeviceTimeout,
    ErrorKind,
    Lifecycle,
    OperatorAction,
)
from drivers.idcard import card as card_codec
from drivers.idcard import frames
from drivers.idcard.card import ResidentIdCard
from drivers.idcard.frames import (
    AnswerAssembler,
    Command,
    FrameError,
    IdCardFailure,
    NoCard,
    ReadFailed,
    SamTimeout,
)

if TYPE_CHECKING:
    from drivers.sim.sam import SamSimulator
    from kiosk.config import IdCardReaderSection

_log = logging.getLogger(__name__)

MODEL = "SAM module (GA/T 467, serial)"
_READ_TICK_S = 0.05  # pyserial read timeout: how often the I/O thread checks for abort
_BACKSTOP_S = 1.0  # extra time `_call` allows beyond an exchange's own deadline
_PROBE_TIMEOUT_S = 1.0  # "is the card still there?" after a failed read


class CardRemoved(IdCardFailure):
    """The card left the reader during the read: the citizen should put it back."""

    message_key = "device.idcard.card_removed"
    default_code = "sam.card_removed"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.NONE


class PortError(IdCardFailure):
    """The serial port cannot be opened, or failed under us (cable, USB adapter)."""

    message_key = "device.idcard.reader_fault"
    default_code = "sam.port_error"
    default_action = OperatorAction.MAINTENANCE


class _Aborted:
    """Returned by an exchange that `_abort` made stale: nobody is waiting for it."""


_ABORTED = _Aborted()


class IdCardReader(Device):
    device_class = DeviceClass.ID_CARD_READER

    def __init__(
        self,
        name: str = "id_card",
        *,
        port: str,
        baudrate: int = 115_200,
        timeout_s: float = 3.0,
        poll_interval_s: float = 0.3,
        gap_s: float = 0.3,
        executor: Executor | None = None,
    ) -> None:
        super().__init__(name, command_timeout=timeout_s, executor=executor)
        self.port = port
        self.baudrate = baudrate
        self.poll_interval_s = poll_interval_s
        # Silence inside an answer longer than this means the answer was cut short. At
        # 9600 baud a byte takes ~1 ms, so 0.3 s is far beyond any healthy module.
        self.gap_s = gap_s
        self.simulator: SamSimulator | None = None  # set by create() for port = "sim"
        self._serial: serial.Serial | None = None
        self._io_lock = threading.Lock()
        self._generation = 0  # bumped by _abort: exchanges of an older generation stop

    # -- public commands -----------------------------------------------------------------
    async def read_card(self) -> ResidentIdCard:
        """One attempt: find, select, read and decode the card on the reader.

        Raises `NoCard` if nothing is there (status untouched), otherwise a typed
        `IdCardFailure` recorded in the status.
        """
        self._require(Lifecycle.ENABLED)
        with self._recording():
            await self._command(Command.FIND_CARD)
            await self._command(Command.SELECT_CARD)
            try:
                answer = await self._command(Command.READ_TEXT_PHOTO)
            except (ReadFailed, FrameError, SamTimeout) as failure:
                if await self._card_gone():
                    detail = f"card left the reader during the read ({failure.code})"
                    raise CardRemoved(detail) from failure
                raise
            text, photo = frames.parse_read_data(answer.data)
            try:
                card = card_codec.decode(text, photo)
            except card_codec.UnsupportedCard as unsupported:
                _log.info("card read: unsupported card type %s", unsupported.card_type)
                raise
        _log.info("card read ok (card type: %s)", card.card_type)
        return card

    async def wait_for_card(self) -> ResidentIdCard:
        """Poll every `poll_interval_s` until a card is read. Any failure other than "no
        card" is raised; cancel the task (or wrap it in `asyncio.timeout`) to stop waiting."""
        while True:
            try:
                return await self.read_card()
            except NoCard:
                await asyncio.sleep(self.poll_interval_s)

    async def wait_for_removal(self) -> None:
        """Poll until the reader reports no card, so one card is not read twice."""
        self._require(Lifecycle.ENABLED)
        while True:
            try:
                with self._recording():
                    await self._command(Command.FIND_CARD)
            except NoCard:
                return
            await asyncio.sleep(self.poll_interval_s)

    async def cards(self) -> AsyncIterator[ResidentIdCard]:
        """Every card presented, once each: after yielding a card, waits until it is
        taken away before looking again. Failures end the iteration with their error."""
        while True:
            yield await self.wait_for_card()
            await self.wait_for_removal()

    async def sam_id(self) -> str:
        """The module's SAM id (also kept in `status.info.serial`)."""
        self._require(Lifecycle.OPEN, Lifecycle.CLAIMED, Lifecycle.ENABLED)
        with self._recording():
            return await self._query_sam_id()

    async def reset(self) -> None:
        """Reset the module (10 FF): the fix for frame errors and rejected commands."""
        self._require(Lifecycle.OPEN, Lifecycle.CLAIMED, Lifecycle.ENABLED)
        with self._recording():
            await self._command(Command.RESET)
        _log.info("id card reader %s: module reset", self.name)

    # -- Device hooks ----------------------------------------------------------------------
    async def _open(self) -> None:
        await self._call(self._open_port)
        try:
            await self._query_sam_id()
        except BaseException:
            await self._close()
            raise
        self._update(state=DeviceState.ONLINE)

    async def _close(self) -> None:
        self._abort()
        port, self._serial = self._serial, None
        if port is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_port, port)

    def _abort(self) -> None:
        self._generation += 1
        port = self._serial
        if port is not None:
            with contextlib.suppress(Exception):  # a port already closed has nothing to cancel
                port.cancel_read()

    async def _selftest(self) -> str:
        await super()._selftest()
        return f"SAM {await self.sam_id()} answers"

    # -- commands --------------------------------------------------------------------------
    async def _query_sam_id(self) -> str:
        answer = await self._command(Command.SAM_ID)
        sam_id = frames.parse_sam_id(answer.data)
        self._update(info=DeviceInfo(model=MODEL, serial=sam_id))
        return sam_id

    async def _command(self, command: Command, *, timeout: float | None = None) -> frames.Answer:
        """Send one command, return its successful answer or raise its typed error."""
        limit = self.command_timeout if timeout is None else timeout
        result = await self._call(
            self._exchange, frames.build_command(command), limit, timeout=limit + _BACKSTOP_S
        )
        if isinstance(result, _Aborted):  # aborted by a newer command's cancellation
            raise SamTimeout(f"{command.name} was aborted")
        try:
            answer = frames.expect(result, command.ok)
        except NoCard:
            self._responding()
            raise
        self._responding()
        return answer

    async def _card_gone(self) -> bool:
        """After a failed read: is the card still on the reader? Unknown counts as no."""
        try:
            probe_timeout = min(self.command_timeout, _PROBE_TIMEOUT_S)
            await self._command(Command.FIND_CARD, timeout=probe_timeout)
        except NoCard:
            return True
        except (IdCardFailure, DeviceTimeout):
            return False
        return False

    def _responding(self) -> None:
        """The module answered sensibly: it is online again whatever happened before."""
        if self._status.state is not DeviceState.ONLINE:
            self._update(state=DeviceState.ONLINE)

    @contextlib.contextmanager
    def _recording(self) -> Iterator[None]:
        """Record typed failures in the status (except "no card", which is no failure)."""
        try:
            yield
        except NoCard:
            raise
        except IdCardFailure as failure:
            state = DeviceState.OFFLINE if isinstance(failure, DeviceTimeout) else None
            self._fail(failure, state)
            _log.warning("id card reader %s: %s (%s)", self.name, failure.code, failure)
            raise

    # -- blocking I/O (executor threads) ---------------------------------------------------
    def _open_port(self) -> None:
        try:
            self._serial = serial.Serial(
                self.port,
                self.baudrate,
                timeout=_READ_TICK_S,
                write_timeout=self.command_timeout,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PortError(
                f"cannot open serial port {self.port}: {exc}", code="sam.port_unavailable"
            ) from None

    def _close_port(self, port: serial.Serial) -> None:
        # Wait briefly for an aborted exchange to let go of the port before closing it.
        acquired = self._io_lock.acquire(timeout=1.0)
        try:
            port.close()
        except (serial.SerialException, OSError) as exc:
            _log.debug("id card reader %s: close: %s", self.name, exc)
        finally:
            if acquired:
                self._io_lock.release()

    def _exchange(self, frame: bytes, deadline_s: float) -> frames.Answer | _Aborted:
        generation = self._generation
        with self._io_lock:
            try:
                return self._exchange_locked(frame, deadline_s, generation)
            except Exception:
                if generation != self._generation:
                    return _ABORTED  # the port was cancelled under us on purpose
                raise

    def _exchange_locked(
        self, frame: bytes, deadline_s: float, generation: int
    ) -> frames.Answer | _Aborted:
        port = self._serial
        if generation != self._generation:
            return _ABORTED
        if port is None or not port.is_open:
            raise PortError("serial port is not open", code="sam.port_closed")
        try:
            port.reset_input_buffer()  # a late answer to an earlier command is stale now
            port.write(frame)
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"write failed: {exc}") from None
        assembler = AnswerAssembler()
        started = time.monotonic()
        deadline = started + deadline_s
        last_byte = started
        while True:
            if generation != self._generation:
                return _ABORTED
            try:
                chunk = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, TypeError) as exc:
                raise PortError(f"read failed: {exc}") from None
            now = time.monotonic()
            if chunk:
                last_byte = now
                whole = assembler.feed(chunk)
                if whole is not None:
                    return frames.parse_answer(whole)
            # Silence is judged only after a read came back empty, so a thread that was
            # merely descheduled for a while reads what arrived before it calls it a gap.
            elif assembler.started and now - last_byte > self.gap_s:
                raise FrameError(
                    f"answer stopped after {assembler.received} bytes", code="sam.truncated"
                )
            if now >= deadline:
                if assembler.started:
                    raise FrameError(f"answer incomplete after {deadline_s}s", code="sam.truncated")
                if assembler.discarded:
                    raise FrameError(
                        f"{assembler.discarded} bytes without a frame in {deadline_s}s",
                        code="sam.garbled",
                    )
                raise SamTimeout(f"no answer within {deadline_s}s")


async def create(
    section: IdCardReaderSection,
    *,
    stack: contextlib.AsyncExitStack,
    name: str = "id_card",
) -> IdCardReader:
    """An unopened reader for the `[devices.id_card]` section. `port = "sim"` starts the
    SAM simulator on a pty (stopped by `stack`) and points the reader at it."""
    port = section.port
    simulator = None
    if port == "sim":
        from drivers.sim.sam import SamSimulator

        simulator = SamSimulator().start()
        stack.callback(simulator.stop)
        port = simulator.slave_path
    reader = IdCardReader(
        name,
        port=port,
        baudrate=section.baudrate,
        timeout_s=section.timeout_s,
        poll_interval_s=section.poll_interval_s,
    )
    reader.simulator = simulator
    return reader
