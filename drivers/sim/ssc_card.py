"""A virtual 社保卡 that plugs into Debian's vsmartcard-vpcd, so the real pcscd sees a card.

`SscCardModel` is the card: the SSSE directory (selected by its GBK name), EF05 card data
and EF06 holder data as TLV records, answering ISO 7816-4 SELECT / READ RECORD / GET RESPONSE
like a real card (61 xx after the SSSE select; 6C xx for a wrong Le when asked to). Faults
per record: protected (69 82, needs PSAM), no status word, wrong length, card pulled.

`VirtualSscCard` is the vpcd client: a TCP connection to vpcd (127.0.0.1:35963 by default)
is a card in the reader, closing it pulls the card. Frames are a 2-byte big-endian length and
a payload; a one-byte payload is a control code (0 power off, 1 power on, 2 reset, 4 get
ATR), anything else an APDU to answer. TCP_QUICKACK is set before every receive: without
it Linux delays our ACKs and each APDU costs ~48 ms. Test-only: vpcd listens on 0.0.0.0.
"""

from __future__ import annotations

import datetime as _dt
import enum
import logging
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from kiosk.identity import id_number

_log = logging.getLogger(__name__)

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963
SSSE_NAME = "sx1.sh.社会保障"
EF05 = 0xEF05
EF06 = 0xEF06
_SFI = {5: EF05, 6: EF06}  # READ RECORD may name the file by its short identifier
_NAME_LENGTH = 30  # 姓名 is a fixed 30-byte field, GBK, zero-padded


def _atr(historical: bytes) -> bytes:
    """A T=1 ATR: TS 3B, T0 (TD1 present + K historical bytes), TD1 = T=1, history, TCK."""
    body = bytes([0x80 | len(historical), 0x01]) + historical
    tck = 0
    for byte in body:
        tck ^= byte
    return b"\x3b" + body + bytes([tck])


DEFAULT_ATR = _atr(b"SSC-SIM3")


def id_number_for(region: str, born: _dt.date, sequence: str) -> str:
    """A valid 18-character number: region, birth date, sequence (odd = male), check."""
    first17 = f"{region}{born:%Y%m%d}{sequence}"
    return first17 + id_number.check_char(first17)


@dataclass(frozen=True)
class TestCitizen:
    """A fictional card holder; numbers are valid (check digit) but made up."""

    key: str
    name: str
    sex: str  # GB/T 2261.1: "1" male, "2" female
    nation: str  # GB/T 3304: "01" 汉族, "05" 维吾尔族
    birth_place: str  # GB/T 2260 region code
    birth_date: _dt.date
    sequence: str  # three digits, odd for men and even for women
    card_number: str
    card_region: str = "320200"  # 无锡市: where the card was issued
    spec_version: str = "3.00"
    issued_on: _dt.date = _dt.date(2021, 9, 1)
    valid_until: _dt.date = _dt.date(2031, 9, 1)

    @property
    def social_security_number(self) -> str:
        return id_number_for(self.birth_place, self.birth_date, self.sequence)


CITIZENS: dict[str, TestCitizen] = {
    c.key: c
    for c in (
        TestCitizen("wang", "王晓明", "1", "01", "320211", _dt.date(1985, 6, 15), "131",
                    "A32021131"),
        TestCitizen("li", "李秀英", "2", "01", "320102", _dt.date(1948, 3, 2), "024",
                    "B32010224", spec_version="2.00", issued_on=_dt.date(2014, 5, 20),
                    valid_until=_dt.date(2024, 5, 20)),
        TestCitizen("ayguli", "阿依古丽·买买提", "2", "05", "650102", _dt.date(1992, 11, 30),
                    "046", "C65010246"),
    )
}


class Fault(enum.StrEnum):
    PROTECTED = "protected"  # 69 82: needs PSAM/HSM authentication first
    NO_STATUS_WORD = "no_status_word"  # one byte, no SW1 SW2
    WRONG_LENGTH = "wrong_length"  # TLV length says more bytes than the record has; 90 00
    PULL = "pull"  # the card leaves the reader instead of answering


class _Pulled:
    """Answer marker: the card was pulled out while this APDU was on its way."""


PULLED = _Pulled()


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits)


def holder_records(holder: TestCitizen) -> dict[int, list[tuple[int, bytes]]]:
    """EF05 and EF06 as (tag, value) records, in file order, encoded like a real card."""
    name = holder.name.encode("gbk").ljust(_NAME_LENGTH, b"\x00")
    identifier = _bcd(holder.card_region) + bytes.fromhex("D156000005") + bytes.fromhex(
        holder.sequence.rjust(8, "0")
    ) + b"\xff" * 4
    return {
        EF05: [
            (0x01, identifier),
            (0x02, b"1"),
            (0x03, holder.spec_version.encode("ascii")),
            (0x04, (holder.card_region + "000000").encode("ascii")),
            (0x05, _bcd(f"{holder.issued_on:%Y%m%d}")),
            (0x06, _bcd(f"{holder.valid_until:%Y%m%d}")),
            (0x07, holder.card_number.encode("ascii")),
        ],
        EF06: [
            (0x08, holder.social_security_number.encode("ascii")),
            (0x09, name),
            (0x0A, holder.sex.encode("ascii")),
            (0x0B, _bcd(holder.nation)),
            (0x0C, _bcd(holder.birth_place)),
            (0x0D, _bcd(f"{holder.birth_date:%Y%m%d}")),
        ],
    }


def _sw(value: int) -> bytes:
    return value.to_bytes(2, "big")


class SscCardModel:
    """The card's answers, without any transport. Thread-safe: faults may change while the
    card is in use (tests flip them between reads)."""

    def __init__(
        self,
        holder: TestCitizen,
        *,
        faults: Mapping[tuple[int, int], Fault] | None = None,
        exact_le: bool = False,
        atr: bytes = DEFAULT_ATR,
    ) -> None:
        self.holder = holder
        self.atr = atr
        # exact_le: answer 6C xx unless Le is the record's exact length, as T=0 cards do.
        self.exact_le = exact_le
        self._files = holder_records(holder)
        self._faults: dict[tuple[int, int], Fault] = dict(faults or {})
        self._lock = threading.Lock()
        self.apdu_count = 0
        self.reset()

    def set_fault(self, fid: int, tag: int, fault: Fault | None) -> None:
        with self._lock:
            if fault is None:
                self._faults.pop((fid, tag), None)
            else:
                self._faults[(fid, tag)] = fault

    def reset(self) -> None:
        """Power-on or warm reset: back to the MF, no file selected, nothing pending."""
        with self._lock:
            self._in_ssse = False
            self._ef: int | None = None
            self._pending = b""

    def answer(self, command: bytes) -> bytes | _Pulled:
        with self._lock:
            self.apdu_count += 1
            return self._answer(bytes(command))

    def _answer(self, c: bytes) -> bytes | _Pulled:
        if len(c) < 4:
            return _sw(0x6700)
        cla, ins, p1, p2 = c[:4]
        if cla != 0x00:
            return _sw(0x6E00)
        body = c[4:]
        if ins == 0xA4:
            return self._select(p1, body)
        if ins == 0xB2:
            return self._read_record(p1, p2, body)
        if ins == 0xC0:
            return self._get_response(body)
        return _sw(0x6D00)

    def _select(self, p1: int, body: bytes) -> bytes:
        self._pending = b""
        if not body or len(body) < 1 + body[0]:
            return _sw(0x6700)
        data = body[1:1 + body[0]]
        if p1 == 0x04:
            if data != SSSE_NAME.encode("gbk"):
                return _sw(0x6A82)
            self._in_ssse, self._ef = True, None
            # File control information, fetched with GET RESPONSE as real cards want.
            self._pending = b"\x6f" + bytes([len(data) + 2 + 5]) + b"\x84" + bytes(
                [len(data)]
            ) + data + b"\xa5\x03\x88\x01\x05"
            return b"\x61" + bytes([len(self._pending)])
        if p1 in (0x00, 0x02) and len(data) == 2:
            fid = int.from_bytes(data, "big")
            if fid == 0x3F00:
                self._in_ssse, self._ef = False, None
                return _sw(0x9000)
            if self._in_ssse and fid in self._files:
                self._ef = fid
                return _sw(0x9000)
            return _sw(0x6A82)
        return _sw(0x6A86)

    def _read_record(self, number: int, p2: int, body: bytes) -> bytes | _Pulled:
        if p2 & 0x07 != 0x04 or len(body) > 1:
            return _sw(0x6A86)
        fid = self._ef
        if p2 >> 3:
            fid = _SFI.get(p2 >> 3) if self._in_ssse else None
            if fid is None:
                return _sw(0x6A82)
            self._ef = fid
        if fid is None:
            return _sw(0x6986)  # no current EF
        records = self._files[fid]
        if not 1 <= number <= len(records):
            return _sw(0x6A83)
        tag, value = records[number - 1]
        fault = self._faults.get((fid, tag))
        if fault is Fault.PROTECTED:
            return _sw(0x6982)
        if fault is Fault.PULL:
            return PULLED
        if fault is Fault.NO_STATUS_WORD:
            return b"\x90"
        record = bytes([tag, len(value)]) + value
        if fault is Fault.WRONG_LENGTH:
            record = bytes([tag, len(value) + 7]) + value
        le = body[0] if body else 0
        if self.exact_le and le != len(record):
            return b"\x6c" + bytes([len(record)])
        return record + _sw(0x9000)

    def _get_response(self, body: bytes) -> bytes:
        if not self._pending:
            return _sw(0x6985)
        le = body[0] if body else 0
        if le not in (0, len(self._pending)):
            return b"\x6c" + bytes([len(self._pending)])
        data, self._pending = self._pending, b""
        return data + _sw(0x9000)


class VirtualSscCard:
    """The card in vpcd's reader slot, served from a background thread.

    `insert()` / `remove()` put the card in and take it out at runtime; while inserted the
    card reconnects on its own when vpcd goes away (pcscd restarted). `delay_s` slows every
    answer; `pulled` is set when a PULL fault took the card out.
    """

    def __init__(
        self,
        holder: TestCitizen | str = "wang",
        *,
        host: str = VPCD_HOST,
        port: int = VPCD_PORT,
        faults: Mapping[tuple[int, int], Fault] | None = None,
        exact_le: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        if isinstance(holder, str):
            holder = CITIZENS[holder]
        self.model = SscCardModel(holder, faults=faults, exact_le=exact_le)
        self.host, self.port = host, port
        self.delay_s = delay_s
        self.pulled = threading.Event()
        self._inserted = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sock_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def holder(self) -> TestCitizen:
        return self.model.holder

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # -- lifetime ---------------------------------------------------------------------------
    def start(self, *, inserted: bool = True) -> VirtualSscCard:
        if self._thread is not None:
            raise RuntimeError("virtual card already started")
        if inserted:
            self._inserted.set()
        self._thread = threading.Thread(target=self._run, name="virtual-ssc-card", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._inserted.clear()
        self._wake.set()
        self._drop_socket()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"virtual card thread still running after {timeout}s")
            self._thread = None

    def __enter__(self) -> VirtualSscCard:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the citizen's hand -------------------------------------------------------------------
    def set_holder(self, holder: TestCitizen) -> None:
        """Another citizen's card (take the current one out first)."""
        if self._inserted.is_set():
            raise RuntimeError("remove the card before changing its holder")
        self.model = SscCardModel(holder, exact_le=self.model.exact_le, atr=self.model.atr)

    def insert(self) -> None:
        self.pulled.clear()
        self._inserted.set()
        self._wake.set()

    def remove(self, timeout: float = 2.0) -> None:
        """Take the card out (closes the connection; vpcd reports the card gone)."""
        self._inserted.clear()
        self._drop_socket()
        self._wake.set()
        deadline = time.monotonic() + timeout
        while self._connected.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self._connected.wait(timeout)

    def set_fault(self, fid: int, tag: int, fault: Fault | None) -> None:
        self.model.set_fault(fid, tag, fault)

    # -- the thread ---------------------------------------------------------------------------
    def _drop_socket(self) -> None:
        with self._sock_lock:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._inserted.is_set():
                self._wake.wait(0.1)
                self._wake.clear()
                continue
            try:
                sock = socket.create_connection((self.host, self.port), timeout=0.5)
            except OSError:
                self._stop.wait(0.05)  # vpcd not listening (pcscd down or restarting)
                continue
            with self._sock_lock:
                self._sock = sock
            self.model.reset()
            self._connected.set()
            try:
                self._serve(sock)
            except OSError as exc:
                _log.debug("virtual card connection ended: %s", exc)
            finally:
                with self._sock_lock:
                    self._sock = None
                sock.close()
                self._connected.clear()

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(0.1)  # short, so stop()/remove() are noticed between frames
        while not self._stop.is_set() and self._inserted.is_set():
            header = self._recv_exact(sock, 2)
            if header is None:
                return
            payload = self._recv_exact(sock, int.from_bytes(header, "big"))
            if payload is None:
                return
            if len(payload) == 1:
                code = payload[0]
                if code == 4:
                    self._send(sock, self.model.atr)
                elif code in (0, 1, 2):  # power off / on / reset: no answer expected
                    self.model.reset()
                continue
            if self.delay_s and self._stop.wait(self.delay_s):
                return
            answer = self.model.answer(payload)
            if isinstance(answer, _Pulled):
                self.pulled.set()
                self._inserted.clear()
                return
            self._send(sock, answer)

    def _recv_exact(self, sock: socket.socket, size: int) -> bytes | None:
        """`size` bytes, or None when vpcd closed or the card is stopped/removed."""
        buffer = b""
        while len(buffer) < size:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            try:
                chunk = sock.recv(size - len(buffer))
            except TimeoutError:
                if self._stop.is_set() or not self._inserted.is_set():
                    return None
                continue
            if not chunk:
                return None
            buffer += chunk
        return buffer

    @staticmethod
    def _send(sock: socket.socket, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(2, "big") + payload)
