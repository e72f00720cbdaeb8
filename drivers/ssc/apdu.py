"""APDUs of the 社保卡 SSSE application: command builders, status words mapped to typed
failures, and the record codecs (tag-length-value records, GBK text, BCD digits and dates).

Pure: no I/O. `exchange()` drives the ISO 7816 "61 xx" / "6C xx" dialogue through a
`transmit` callable it is given, so the same code runs against pyscard and against the
simulator's card model in tests. Every parser here returns a value or raises an
`SscFailure`; nothing else escapes for any input bytes.

Sources for the layout: the SSSE directory is selected by name (`00 A4 04 00 0F` + GBK of
"sx1.sh.社会保障" = `7378312E73682EC9E7BBE1B1A3D5CF`); EF05 and EF06 are record files under it,
read with `00 B2 <record> 04 <Le>`; each record starts with its data-element tag (EF05:
01..07, EF06: 08..0D) and a one-byte length, as public reader code for these cards shows
(e.g. card number `00B2070400` → `07 09 <9 ASCII>`, 社会保障号码 → `08 12 <18 ASCII>`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass

from drivers.base import DeviceFailure, ErrorKind, OperatorAction

SSSE_NAME = "sx1.sh.社会保障"
EF05 = 0xEF05  # card (issuer) data: 01 card identifier … 07 card number
EF06 = 0xEF06  # holder data: 08 社会保障号码, 09 姓名, 0A 性别, 0B 民族, 0C 出生地, 0D 出生日期

SW_OK = 0x9000
# Status words that mean "this record/file is protected and this terminal has not proved it
# may read it" (ISO 7816-4): security status not satisfied, authentication method blocked,
# reference data invalidated, conditions of use not satisfied.
_ACCESS_DENIED = frozenset({0x6982, 0x6983, 0x6984, 0x6985})
_RECORD_NOT_FOUND = frozenset({0x6A83, 0x6A82})
_NOT_SUPPORTED = frozenset({0x6D00, 0x6E00, 0x6A81})
_MAX_ROUNDS = 8  # 61xx/6Cxx follow-ups before we call the card broken


# -- typed failures -----------------------------------------------------------------------
class SscFailure(DeviceFailure):
    """Base of every 社保卡 failure. Details carry status words and tags, never card data."""

    message_key = "device.ssc.read_failed"

    def __init__(
        self,
        detail: str = "",
        *,
        code: str = "ssc.read_failed",
        kind: ErrorKind = ErrorKind.HARDWARE,
        action: OperatorAction = OperatorAction.RESET,
        message_key: str | None = None,
    ) -> None:
        super().__init__(detail, code=code, kind=kind, action=action, message_key=message_key)


class SscMalformedResponse(SscFailure):
    """The card (or the reader) answered bytes that do not make an APDU response or a record:
    too short, no status word, a length that does not match. Usually a bad contact or a
    damaged card; the citizen can re-insert it."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, code="ssc.malformed_response", kind=ErrorKind.HARDWARE,
            action=OperatorAction.RESET,
        )


class SscStatusError(SscFailure):
    """An unexpected status word. `sw` is kept for the engineer."""

    def __init__(self, sw: int, step: str) -> None:
        super().__init__(
            f"{step}: card answered {sw:04X}", code="ssc.card_status",
            kind=ErrorKind.HARDWARE, action=OperatorAction.RESET,
        )
        self.sw = sw


class SscNotSscCard(SscFailure):
    """The card has no SSSE application (a bank card, a transport card, upside down…)."""

    message_key = "device.ssc.not_ssc_card"

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, code="ssc.not_ssc_card", kind=ErrorKind.USER, action=OperatorAction.NONE,
            message_key="device.ssc.not_ssc_card",
        )


class SscAccessDenied(SscFailure):
    """The card refuses to give a record to this terminal without PSAM/HSM authentication.

    `fields` names the card fields concerned (field names, not values). The kiosk cannot
    fix this for the citizen; a kiosk that sees it often needs a PSAM (configuration)."""

    def __init__(self, detail: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(
            detail, code="ssc.access_denied", kind=ErrorKind.USER,
            action=OperatorAction.CONFIGURATION, message_key="device.ssc.access_denied",
        )
        self.fields = fields


class SscCardInvalid(SscFailure):
    """The card answered well-formed records whose content is not valid 社保卡 data (an ID
    number with a wrong check digit, a required record missing, a damaged chip)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            detail, code="ssc.card_invalid", kind=ErrorKind.USER, action=OperatorAction.NONE,
            message_key="device.ssc.card_invalid",
        )


# -- commands -----------------------------------------------------------------------------
def select_by_name(name: str = SSSE_NAME) -> bytes:
    """SELECT by DF name (`00 A4 04 00 Lc name`); the name goes to the card as GBK bytes."""
    data = name.encode("gbk")
    if not 1 <= len(data) <= 16:  # ISO 7816-5: a DF name is 1..16 bytes
        raise ValueError("a DF name has 1..16 bytes")
    return bytes([0x00, 0xA4, 0x04, 0x00, len(data)]) + data


def select_ef(fid: int) -> bytes:
    """SELECT EF under the current DF by file identifier (`00 A4 02 00 02 FID`)."""
    if not 0 <= fid <= 0xFFFF:
        raise ValueError("a file identifier has two bytes")
    return bytes([0x00, 0xA4, 0x02, 0x00, 0x02, fid >> 8, fid & 0xFF])


def read_record(number: int, le: int = 0) -> bytes:
    """READ RECORD `number` of the current EF (`00 B2 nn 04 Le`); Le 0 = up to 256 bytes."""
    if not 1 <= number <= 0xFE or not 0 <= le <= 0xFF:
        raise ValueError("record 1..254, Le 0..255")
    return bytes([0x00, 0xB2, number, 0x04, le])


def get_response(le: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, le & 0xFF])


# -- responses ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Response:
    data: bytes
    sw1: int
    sw2: int

    @property
    def sw(self) -> int:
        return (self.sw1 << 8) | self.sw2


def parse_response(raw: bytes) -> Response:
    """Split a response APDU into data and SW1 SW2 (a short response is 2..258 bytes)."""
    raw = bytes(raw)
    if len(raw) < 2:
        raise SscMalformedResponse(f"response of {len(raw)} byte(s) has no status word")
    if len(raw) > 258:
        raise SscMalformedResponse(f"response of {len(raw)} bytes is longer than 258")
    sw1 = raw[-2]
    # Valid SW1 values are 6x and 9x (ISO 7816-3 §10.3.3), except 60 (a T=0 procedure byte).
    if sw1 >> 4 not in (0x6, 0x9) or sw1 == 0x60:
        raise SscMalformedResponse(f"{sw1:02X} is not a status byte")
    return Response(raw[:-2], sw1, raw[-1])


def _is_case2(command: bytes) -> bool:
    """CLA INS P1 P2 Le: the only case where "6C xx" means "send again with Le = xx"."""
    return len(command) == 5 and command[1] in (0xB0, 0xB2, 0xC0, 0xCA)


def exchange(transmit: Callable[[bytes], bytes], command: bytes) -> Response:
    """Send `command` and follow the card's "61 xx" (GET RESPONSE) and "6C xx" (wrong Le,
    resend) answers, as T=0 cards require; returns the final response with all the data.

    PC/SC does not do this for the caller, and real 社保卡 answer the SSSE SELECT with 61 xx.
    """
    collected = b""
    response = parse_response(transmit(command))
    for _ in range(_MAX_ROUNDS):
        if response.sw1 == 0x61:
            collected += response.data
            response = parse_response(transmit(get_response(response.sw2)))
        elif response.sw1 == 0x6C and _is_case2(command):
            command = command[:4] + bytes([response.sw2])
            response = parse_response(transmit(command))
        else:
            return Response(collected + response.data, response.sw1, response.sw2)
    raise SscMalformedResponse(f"card kept asking for more exchanges ({response.sw:04X})")


def check_select(response: Response, step: str) -> None:
    """A SELECT (of the SSSE directory or of an EF) must answer 90 00."""
    sw = response.sw
    if sw == SW_OK:
        return
    if sw in _RECORD_NOT_FOUND or sw in _NOT_SUPPORTED:
        raise SscNotSscCard(f"{step}: card answered {sw:04X}")
    if sw in _ACCESS_DENIED:
        raise SscAccessDenied(f"{step}: card answered {sw:04X}")
    raise _status_failure(sw, step)


class RecordOutcome:
    """What a READ RECORD answer means for the record scan."""

    DATA = "data"
    END = "end"  # no such record: the file has no more
    DENIED = "denied"  # protected: needs PSAM/HSM authentication


def classify_record(response: Response, step: str) -> str:
    sw = response.sw
    if sw == SW_OK:
        return RecordOutcome.DATA
    if sw in _RECORD_NOT_FOUND:
        return RecordOutcome.END
    if sw in _ACCESS_DENIED:
        return RecordOutcome.DENIED
    if sw in _NOT_SUPPORTED:
        raise SscNotSscCard(f"{step}: card answered {sw:04X}")
    raise _status_failure(sw, step)


def _status_failure(sw: int, step: str) -> SscFailure:
    if sw in (0x6581, 0x6F00) or sw >> 8 == 0x64:  # memory failure, no precise diagnosis
        return SscCardInvalid(f"{step}: card reports a fault ({sw:04X})")
    return SscStatusError(sw, step)


# -- records ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    tag: int
    value: bytes

    def __repr__(self) -> str:  # the value may be personal data: never print it
        return f"Record(tag={self.tag:02X}, len={len(self.value)})"


_PAD = b"\x00\xff"


def parse_record(data: bytes) -> Record:
    """One SSC record: tag (1 byte), length (1 byte, or 81 LL), value; trailing 00/FF
    padding is tolerated (some cards answer Le=00 with a fixed-size record)."""
    data = bytes(data)
    if len(data) < 2:
        raise SscMalformedResponse(f"record of {len(data)} byte(s) has no tag and length")
    tag, length, start = data[0], data[1], 2
    if tag in (0x00, 0xFF):
        raise SscMalformedResponse(f"record tag {tag:02X} is not a data element")
    if length == 0x81:  # BER long form, in case a card uses it for a long field
        if len(data) < 3:
            raise SscMalformedResponse("record length 81 without the length byte")
        length, start = data[2], 3
    elif length > 0x7F:
        raise SscMalformedResponse(f"record length byte {length:02X} is not supported")
    value = data[start:start + length]
    if len(value) != length:
        raise SscMalformedResponse(
            f"record {tag:02X} says {length} bytes but has {len(value)}"
        )
    if data[start + length:].strip(_PAD):
        raise SscMalformedResponse(f"record {tag:02X} has bytes after its value")
    return Record(tag, value)


# -- value codecs ---------------------------------------------------------------------------
def _strip(value: bytes) -> bytes:
    return value.rstrip(b"\x00\xff\x20").lstrip(b"\x20")


def ascii_text(value: bytes, tag: int) -> str:
    """'an' fields: ASCII letters and digits, padded with 00/FF/space."""
    raw = _strip(value)
    if not all(0x20 <= b < 0x7F for b in raw):
        raise SscMalformedResponse(f"record {tag:02X}: not printable ASCII")
    return raw.decode("ascii")


def gbk_text(value: bytes, tag: int) -> str:
    """姓名 and other Chinese text: GBK (GB 18030 decodes a superset, so rare characters
    in names survive), padded with 00/FF/spaces (also the full-width space A1A1)."""
    raw = _strip(value)
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        raise SscMalformedResponse(f"record {tag:02X}: not GBK text") from None
    text = text.strip(" \u3000")
    if any(not ch.isprintable() for ch in text):
        raise SscMalformedResponse(f"record {tag:02X}: control characters in text")
    return text


def bcd_digits(value: bytes, tag: int) -> str:
    """'cn' fields: packed BCD, two digits a byte, right-padded with F nibbles."""
    digits = value.hex().upper().rstrip("F")
    if not digits.isdigit():
        raise SscMalformedResponse(f"record {tag:02X}: not BCD digits")
    return digits


def date_value(value: bytes, tag: int) -> _dt.date | None:
    """A date as cards store it: 4 bytes BCD YYYYMMDD (the standard), or 8 ASCII digits
    (seen on some issuers' cards). All zeros / all F = not set → None."""
    if not value.strip(b"\x00") or not value.strip(b"\xff"):
        return None
    if len(value) == 4:
        text = value.hex()
    elif len(value) == 8:
        text = value.decode("ascii", "replace")
    else:
        raise SscMalformedResponse(f"record {tag:02X}: a date has 4 or 8 bytes, not {len(value)}")
    if not (text.isascii() and text.isdigit()):
        raise SscMalformedResponse(f"record {tag:02X}: date is not digits")
    try:
        return _dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise SscMalformedResponse(f"record {tag:02X}: not a real date") from None


def hex_or_text(value: bytes, tag: int) -> str:
    """Fields whose coding differs between issuers: printable ASCII as text, else hex."""
    raw = _strip(value)
    if raw and all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")
    return value.hex().upper()
