"""SAM module simulator: answers GA/T 467 frames on a pty like the ID card reader module.

The driver opens `simulator.slave_path` with pyserial as it would `/dev/ttyUSB0`; a
background thread answers find / select / read / SAM id / reset / status with real frames.
Test and demo code changes what lies on the reader and how the module misbehaves at run
time: `insert_card`, `remove_card`, `set_fault`. The test citizens below are invented, with
ID numbers that pass the check digit; they are no real people.
"""

from __future__ import annotations

import datetime as _dt
import enum
import errno
import fcntl
import hashlib
import logging
import os
import select
import threading
from dataclasses import dataclass

from drivers.idcard import frames
from drivers.idcard.frames import Command
from drivers.sim.pty import PtyPair
from kiosk.identity import id_number

_log = logging.getLogger(__name__)

DEFAULT_SAM_ID = "05.01-20200601-0000012345-2712345678"
_TICK_S = 0.05  # how often the thread looks at its stop flag while idle
_SELECT_DATA = bytes(8)  # select answers with 8 bytes the driver does not need
_FIND_DATA = bytes(4)
_UNKNOWN_COMMAND_STATUS = 0x21  # "operation failed" in vendor manuals


# -- cards ----------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SimCard:
    """What a card gives the SAM: the 256-byte text block and the 1024-byte photo.
    `label` names it in logs and test output (never personal data)."""

    label: str
    text: bytes
    photo: bytes

    def __repr__(self) -> str:
        return f"SimCard({self.label})"


def _field(value: str, size: int) -> bytes:
    raw = value.encode("utf-16-le")
    if len(raw) > size:
        raise ValueError(f"field value longer than {size // 2} characters")
    return raw + " ".encode("utf-16-le") * ((size - len(raw)) // 2)


def _photo(seed: str) -> bytes:
    """1024 stable pseudo-WLT bytes (the real thing needs a vendor decoder anyway)."""
    out = b""
    counter = 0
    while len(out) < 1024:
        out += hashlib.sha256(f"{seed}/{counter}".encode()).digest()
        counter += 1
    return out[:1024]


def id_number_for(region: str, birth: _dt.date, sequence: int) -> str:
    """A valid 18-character number: region (6 digits), birth date, 3-digit sequence (odd
    for men, even for women), check character."""
    first17 = f"{region}{birth:%Y%m%d}{sequence:03d}"
    return first17 + id_number.check_char(first17)


def resident_card(
    *,
    label: str,
    name: str,
    sex_code: str,
    nation_code: str,
    birth: _dt.date,
    address: str,
    number: str,
    authority: str,
    valid_from: _dt.date,
    valid_to: _dt.date | None,
    photo: bytes | None = None,
) -> SimCard:
    """A resident card's text block built from its fields (valid_to None = 长期)."""
    text = b"".join(
        (
            _field(name, 30),
            _field(sex_code, 2),
            _field(nation_code, 4),
            _field(f"{birth:%Y%m%d}", 16),
            _field(address, 70),
            _field(number, 36),
            _field(authority, 30),
            _field(f"{valid_from:%Y%m%d}", 16),
            _field("长期" if valid_to is None else f"{valid_to:%Y%m%d}", 16),
            _field("", 36),
        )
    )
    return SimCard(label, text, _photo(label) if photo is None else photo)


def foreigner_card(letter: str = "I") -> SimCard:
    """A foreigner permanent residence card: English name 120, sex 2, card number 30,
    nationality 6, Chinese name 30, valid from/to 16+16, birth 16, version 4, authority
    code 8, type letter 2 ("I"; "Y" on the 2023 design), reserved 6."""
    text = b"".join(
        (
            _field("SMITH, JOHN", 120),
            _field("1", 2),
            _field("USA320085031234", 30),
            _field("USA", 6),
            _field("史密斯", 30),
            _field("20200101", 16),
            _field("20300101", 16),
            _field("19850301", 16),
            _field("01", 4),
            _field("3200", 8),
            _field(letter, 2),
            _field("", 6),
        )
    )
    return SimCard(f"foreigner-{letter}", text, _photo("foreigner"))


def residence_permit_card() -> SimCard:
    """A HK/Macau/Taiwan residence permit: resident layout, then permit number 18, issue
    count 4, reserved 6, type letter "J" at 248, reserved 6."""
    birth = _dt.date(1992, 5, 20)
    number = id_number_for("810000", birth, 21)
    body = resident_card(
        label="permit",
        name="陈嘉欣",
        sex_code="2",
        nation_code="",
        birth=birth,
        address="江苏省南京市建邺区江东中路100号",
        number=number,
        authority="南京市公安局",
        valid_from=_dt.date(2021, 3, 1),
        valid_to=_dt.date(2026, 3, 1),
    ).text[:220]
    text = body + _field("H01234567", 18) + _field("01", 4) + _field("", 6)
    text += _field("J", 2) + _field("", 6)
    return SimCard("permit-J", text, _photo("permit"))


# Test citizens: invented people in Nanjing and Wuxi.
ZHANG_WEI = resident_card(
    label="zhang-wei",
    name="张伟",
    sex_code="1",
    nation_code="01",
    birth=_dt.date(1985, 3, 12),
    address="江苏省南京市玄武区中山路18号",
    number=id_number_for("320102", _dt.date(1985, 3, 12), 123),
    authority="南京市公安局玄武分局",
    valid_from=_dt.date(2016, 8, 1),
    valid_to=_dt.date(2036, 8, 1),
)
WANG_FANG = resident_card(
    label="wang-fang",
    name="王芳",
    sex_code="2",
    nation_code="01",
    birth=_dt.date(1990, 7, 8),
    address="江苏省无锡市梁溪区人民中路128号",
    number=id_number_for("320213", _dt.date(1990, 7, 8), 246),
    authority="无锡市公安局梁溪分局",
    valid_from=_dt.date(2019, 5, 20),
    valid_to=_dt.date(2039, 5, 20),
)
LI_XIUYING = resident_card(  # an elderly citizen: 长期 card, Hui nationality, X check char
    label="li-xiuying",
    name="李秀英",
    sex_code="2",
    nation_code="03",
    birth=_dt.date(1948, 11, 23),
    address="江苏省南京市鼓楼区北京西路8号",
    number=id_number_for("320106", _dt.date(1948, 11, 23), 78),
    authority="南京市公安局鼓楼分局",
    valid_from=_dt.date(2012, 4, 10),
    valid_to=None,
)
TEST_CITIZENS = (ZHANG_WEI, WANG_FANG, LI_XIUYING)


# -- faults ---------------------------------------------------------------------------------


class Fault(enum.Enum):
    NONE = "none"
    BAD_CHECKSUM = "bad_checksum"  # every answer's CHK is wrong
    READ_FAILURE = "read_failure"  # read answers 0x41
    SLOW = "slow"  # every answer comes `delay_s` late
    PULL_MID_READ = "pull_mid_read"  # read answer stops after `cut_at` bytes; card gone
    SILENT = "silent"  # no answers at all
    JUNK = "junk"  # junk bytes before every answer (the answer still follows)
    JUNK_ONLY = "junk_only"  # junk bytes instead of every answer
    SAM_FAULT = "sam_fault"  # every answer has status 0x60 (self-test failed)
    RAW = "raw"  # every answer replaced by the bytes given as `raw`


@dataclass(frozen=True)
class FaultSetting:
    fault: Fault = Fault.NONE
    delay_s: float = 2.0
    cut_at: int = 300
    once: bool = False  # clear after the first answer it changed
    raw: bytes = b""


# -- the simulator --------------------------------------------------------------------------


class SamSimulator:
    """`with SamSimulator() as sim:` — a SAM on a pty, answering in a background thread."""

    def __init__(self, *, card: SimCard | None = None, sam_id: str = DEFAULT_SAM_ID) -> None:
        self._pty: PtyPair | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._card = card
        self._selected = False
        self._fault = FaultSetting()
        self._sam_id = frames.encode_sam_id(sam_id)
        self.commands: list[tuple[int, int]] = []  # (CMD, PARA) received, for tests

    # -- control (any thread) ----------------------------------------------------------------
    @property
    def slave_path(self) -> str:
        if self._pty is None:
            raise RuntimeError("simulator not started")
        return self._pty.slave_path

    @property
    def card(self) -> SimCard | None:
        return self._card

    def insert_card(self, card: SimCard) -> None:
        with self._lock:
            self._card, self._selected = card, False

    def remove_card(self) -> None:
        with self._lock:
            self._card, self._selected = None, False

    def set_fault(
        self,
        fault: Fault,
        *,
        delay_s: float = 2.0,
        cut_at: int = 300,
        once: bool = False,
        raw: bytes = b"",
    ) -> None:
        with self._lock:
            self._fault = FaultSetting(fault, delay_s, cut_at, once, raw)

    def clear_fault(self) -> None:
        self.set_fault(Fault.NONE)

    # -- lifetime -----------------------------------------------------------------------------
    def start(self) -> SamSimulator:
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        self._pty = PtyPair()
        flags = fcntl.fcntl(self._pty.master_fd, fcntl.F_GETFL)
        fcntl.fcntl(self._pty.master_fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sam-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stops within about one tick (50 ms), even in the middle of a slow answer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    def __enter__(self) -> SamSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._pty is not None
        fd = self._pty.master_fd
        buffer = bytearray()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([fd], [], [], _TICK_S)
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):  # pty gone: we are stopping
                    return
                raise
            buffer += chunk
            for frame in self._take_frames(buffer):
                self._answer(fd, frame)

    def _take_frames(self, buffer: bytearray) -> list[bytes]:
        """Whole command frames out of the buffer; junk before a preamble is dropped."""
        out = []
        while True:
            start = buffer.find(frames.PREAMBLE)
            if start < 0:
                del buffer[: max(0, len(buffer) - len(frames.PREAMBLE) + 1)]
                return out
            del buffer[:start]
            if len(buffer) < frames.HEADER_LENGTH:
                return out
            total = frames.HEADER_LENGTH + int.from_bytes(buffer[5:7], "big")
            if len(buffer) < total:
                if total - frames.HEADER_LENGTH > 0x200:  # no command is that long
                    del buffer[:total]  # answer "length error" for an absurd LEN
                    out.append(b"")
                return out
            out.append(bytes(buffer[:total]))
            del buffer[:total]

    def _answer(self, fd: int, frame: bytes) -> None:
        with self._lock:
            answer, is_read = self._handle(frame)
            setting = self._fault
            read_only = setting.fault in (Fault.READ_FAILURE, Fault.PULL_MID_READ)
            if read_only and not is_read:
                setting = FaultSetting()  # this fault only touches read answers
            elif setting.once:
                self._fault = FaultSetting()

        fault = setting.fault
        if fault is Fault.READ_FAILURE:
            answer = frames.build_answer(frames.STATUS_READ_FAILED)
        if fault is Fault.SILENT:
            return
        if fault is Fault.SAM_FAULT:
            answer = frames.build_answer(0x60)
        if fault is Fault.SLOW and self._stop.wait(setting.delay_s):
            return
        if fault is Fault.BAD_CHECKSUM:
            answer = answer[:-1] + bytes((answer[-1] ^ 0x5A,))
        if fault is Fault.JUNK:
            answer = _junk(17) + answer
        if fault is Fault.JUNK_ONLY:
            answer = _junk(64)
        if fault is Fault.RAW:
            answer = setting.raw
        if fault is Fault.PULL_MID_READ and is_read:
            answer = answer[: setting.cut_at]
            self.remove_card()  # the citizen took the card away
        self._send(fd, answer)

    def _handle(self, frame: bytes) -> tuple[bytes, bool]:
        """The module's answer to one command frame (called with the lock held)."""
        if not frame:
            return frames.build_answer(frames.STATUS_LENGTH_ERROR), False
        try:
            command = frames.parse_command(frame)
        except frames.FrameError as error:
            status = (
                frames.STATUS_CHECKSUM_ERROR
                if error.code == "sam.bad_checksum"
                else frames.STATUS_LENGTH_ERROR
            )
            return frames.build_answer(status), False
        key = (command.cmd, command.para)
        self.commands.append(key)
        card = self._card
        if key == Command.FIND_CARD.value:
            self._selected = False
            if card is None:
                return frames.build_answer(frames.STATUS_FIND_FAILED), False
            return frames.build_answer(frames.STATUS_CARD_FOUND, _FIND_DATA), False
        if key == Command.SELECT_CARD.value:
            if card is None:
                return frames.build_answer(frames.STATUS_SELECT_FAILED), False
            self._selected = True
            return frames.build_answer(frames.STATUS_OK, _SELECT_DATA), False
        if key == Command.READ_TEXT_PHOTO.value:
            if card is None or not self._selected:
                return frames.build_answer(frames.STATUS_READ_FAILED), True
            data = (
                len(card.text).to_bytes(2, "big")
                + len(card.photo).to_bytes(2, "big")
                + card.text
                + card.photo
            )
            return frames.build_answer(frames.STATUS_OK, data), True
        if key == Command.SAM_ID.value:
            return frames.build_answer(frames.STATUS_OK, self._sam_id), False
        if key in (Command.RESET.value, Command.STATUS.value):
            if key == Command.RESET.value:
                self._selected = False
            return frames.build_answer(frames.STATUS_OK), False
        return frames.build_answer(_UNKNOWN_COMMAND_STATUS), False

    def _send(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view and not self._stop.is_set():
            try:
                _, writable, _ = select.select([], [fd], [], _TICK_S)
                if writable:
                    written = os.write(fd, view)
                    view = view[written:]
            except BlockingIOError:
                continue
            except OSError:
                return  # pty closed under us: stopping


def _junk(count: int) -> bytes:
    """Bytes that never contain 0xAA, so they can never look like a preamble."""
    return bytes((0x31 + 7 * i) % 0xA0 for i in range(count))
