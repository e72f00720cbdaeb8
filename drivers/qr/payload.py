"""Validation of scanned QR text, and base45 (RFC 9285) for binary content.

Pure functions, no I/O: `validate()` takes what a scanner module sent (bytes) or a decoder
read (str), strips the framing scanner modules add (CR / LF / CRLF / TAB suffixes, STX/ETX),
and returns the code or raises one typed `PayloadError`. Payloads are text: printable ASCII
by default (the 苏服码 is), or the base45 alphabet for binary content (which also fits QR's
compact alphanumeric mode). Errors carry lengths and positions, never the text: a scanned
code is a secret (kiosk/privacy.py).
"""

from __future__ import annotations

import enum

from drivers.base import DeviceFailure, ErrorKind, OperatorAction

BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_INDEX = {c: i for i, c in enumerate(BASE45_ALPHABET)}
_PRINTABLE = frozenset(chr(c) for c in range(0x20, 0x7F))
_BASE45 = frozenset(BASE45_ALPHABET)
# What scanner modules put around a code: a configurable suffix (CR, LF, CRLF, TAB) and on
# some models STX/ETX framing. Spaces are kept: base45 uses them.
FRAMING = "\r\n\t\x02\x03"


class Charset(enum.StrEnum):
    PRINTABLE = "printable"  # printable ASCII, 0x20–0x7E
    BASE45 = "base45"


class PayloadError(DeviceFailure):
    """A scanned code the kiosk refuses. The citizen's fault or the code's, not the device's:
    kind `user`, no operator action."""

    code_name = "qr.invalid"

    def __init__(self, detail: str, *, message_key: str) -> None:
        super().__init__(detail, code=self.code_name, kind=ErrorKind.USER,
                         action=OperatorAction.NONE, message_key=message_key)


class EmptyCode(PayloadError):
    code_name = "qr.empty"

    def __init__(self) -> None:
        super().__init__("empty code", message_key="device.qr.unreadable")


class CodeTooLong(PayloadError):
    code_name = "qr.too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"code of {length} characters exceeds the limit of {limit}",
                         message_key="device.qr.too_long")
        self.length = length
        self.limit = limit


class BadCharset(PayloadError):
    code_name = "qr.bad_charset"

    def __init__(self, position: int, charset: Charset) -> None:
        super().__init__(f"character at position {position} is outside {charset}",
                         message_key="device.qr.bad_charset")
        self.position = position
        self.charset = charset


def strip_framing(raw: str) -> str:
    return raw.strip(FRAMING)


def validate(
    raw: str | bytes,
    *,
    max_length: int = 1024,
    charset: Charset = Charset.PRINTABLE,
) -> str:
    """The code inside `raw`, or a `PayloadError`. Bytes must be ASCII (scanner modules send
    ASCII for text payloads); any other byte is a charset error at its position."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError as exc:
            framing = len(raw) - len(raw.lstrip(FRAMING.encode()))
            raise BadCharset(exc.start - framing, charset) from None
    else:
        text = raw
    code = strip_framing(text)
    if not code:
        raise EmptyCode()
    # Length before charset: an overlong line of junk is reported as overlong, and the check
    # is O(1) before the O(n) scan.
    if len(code) > max_length:
        raise CodeTooLong(len(code), max_length)
    allowed = _BASE45 if charset is Charset.BASE45 else _PRINTABLE
    for position, char in enumerate(code):
        if char not in allowed:
            raise BadCharset(position, charset)
    return code


class Base45Error(ValueError):
    """Text that is not valid base45 (RFC 9285)."""


def b45encode(data: bytes) -> str:
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        n, c = divmod(n, 45)
        e, d = divmod(n, 45)
        out += (BASE45_ALPHABET[c], BASE45_ALPHABET[d], BASE45_ALPHABET[e])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        out += (BASE45_ALPHABET[c], BASE45_ALPHABET[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    try:
        values = [_BASE45_INDEX[c] for c in text]
    except KeyError:
        raise Base45Error("character outside the base45 alphabet") from None
    if len(values) % 3 == 1:
        raise Base45Error("length leaves a single trailing character")
    out = bytearray()
    for i in range(0, len(values), 3):
        chunk = values[i:i + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 45 * 45
            if n > 0xFFFF:
                raise Base45Error("triplet out of range")
            out.extend(divmod(n, 256))
        else:
            n = chunk[0] + chunk[1] * 45
            if n > 0xFF:
                raise Base45Error("pair out of range")
            out.append(n)
    return bytes(out)
