"""QR scanner: the serial module's byte stream, payload validation and base45.

`qr_serial` feeds a real `SerialQrScanner` (its port replaced by a fake that hands out the
generated chunks) and runs its `_read_line` loop and `_deliver` on every line: the line
splitter (CR, LF, CRLF, overlong lines counted but not kept), repeat suppression and
`payload.validate` in both charsets. `qr_payload` calls `validate` and `b45decode` directly
with text and bytes: valid codes, base45 of random binary, framing (STX/ETX, CR/LF/TAB),
non-ASCII bytes, odd Unicode, overlong codes.

Documented errors: `PayloadError` (EmptyCode, CodeTooLong, BadCharset) and `Base45Error`.
`_deliver` itself must never raise: a refused code is queued as the error, not thrown.
"""

from __future__ import annotations

import random
import string

from drivers.qr import payload
from drivers.qr.payload import Base45Error, Charset, PayloadError
from drivers.qr.scanner import SerialQrScanner
from tests.fuzz import mutate
from tests.fuzz.engine import Target

_FRAMING = ("", "\r", "\n", "\r\n", "\t", "\x02", "\x03")


def _code(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.4:  # a 苏服码-like printable code
        return "".join(rng.choice(string.ascii_letters + string.digits + "-_.:/")
                       for _ in range(rng.choice((1, 8, 32, 64, 200, 1024, 1025))))
    if roll < 0.7:
        return payload.b45encode(rng.randbytes(rng.randint(0, 80)))
    if roll < 0.85:
        return mutate.odd_text(rng, 40)
    return "".join(rng.choice(payload.BASE45_ALPHABET) for _ in range(rng.randint(0, 30)))


def _payload_input(rng: random.Random) -> tuple[str | bytes, Charset, int]:
    code = _code(rng)
    if rng.random() < 0.5:
        code = rng.choice(_FRAMING) + code + rng.choice(_FRAMING)
    if rng.random() < 0.3:
        code = mutate.mutate_text(rng, code)
    charset = rng.choice(list(Charset))
    limit = rng.choice((1, 16, 256, 1024))
    if rng.random() < 0.5:
        raw: str | bytes = code.encode("utf-8", "surrogatepass")
        if rng.random() < 0.3:
            raw = mutate.mutate_bytes(rng, raw)
        return raw, charset, limit
    return code, charset, limit


def check_payload(value: tuple[str | bytes, Charset, int]) -> None:
    raw, charset, limit = value
    code = payload.validate(raw, max_length=limit, charset=charset)
    assert code and len(code) <= limit, "validate returned an out-of-bounds code"
    if charset is Charset.BASE45:
        decoded = payload.b45decode(code)
        assert payload.b45decode(payload.b45encode(decoded)) == decoded


QR_PAYLOAD = Target(
    name="qr_payload",
    parser="drivers/qr/payload.py: validate, strip_framing, b45decode",
    generate=_payload_input,
    run=check_payload,
    documented=(PayloadError, Base45Error),
    short_examples=10_000,
    from_bytes=lambda data: (data[1:], list(Charset)[data[0] % 2] if data else Charset.PRINTABLE, 1024),
)


# -- the serial module's byte stream ---------------------------------------------------------


class _FakePort:
    """What `_read_line` uses of a pyserial port: `read(n)` and `in_waiting`."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = list(pieces)
        self.is_open = True

    @property
    def in_waiting(self) -> int:
        return len(self._pieces[0]) if self._pieces else 0

    def read(self, size: int = 1) -> bytes:
        if not self._pieces:
            return b""  # a poll without data: the loop returns None
        piece = self._pieces.pop(0)
        if len(piece) > size:
            self._pieces.insert(0, piece[size:])
            piece = piece[:size]
        return piece


def _stream_input(rng: random.Random) -> tuple[list[bytes], Charset]:
    lines = []
    for _ in range(rng.randint(1, 4)):
        code = _code(rng).encode("utf-8", "surrogatepass")
        ending = rng.choice((b"\r", b"\n", b"\r\n", b"", b"\n\r", b"\r\r"))
        lines.append(code + ending)
    stream = b"".join(lines)
    if rng.random() < 0.4:
        stream = mutate.mutate_bytes(rng, stream)
    if rng.random() < 0.05:
        stream = b"A" * rng.choice((1040, 5000, 70_000)) + b"\r"  # a line that never fits
    return mutate.chunks(rng, stream), rng.choice(list(Charset))


_scanners: dict[Charset, SerialQrScanner] = {}


def _scanner(charset: Charset) -> SerialQrScanner:
    scanner = _scanners.get(charset)
    if scanner is None:
        scanner = _scanners[charset] = SerialQrScanner(
            "fuzz-qr", "/dev/null", charset=charset, max_length=1024, repeat_suppress_s=0.0
        )
    return scanner


def read_stream(value: tuple[list[bytes], Charset]) -> str:
    pieces, charset = value
    scanner = _scanner(charset)
    scanner._serial = _FakePort(pieces)
    scanner._buffer.clear()
    scanner._overflow = 0
    scanner.partial_timeout_s = 3600.0  # keep fragments: the stream is replayed at once
    port = scanner._serial
    accepted, refused = scanner.scans_accepted, scanner.scans_rejected
    # Memory stays bounded: a line's excess is counted, not kept; at most one read's worth of
    # bytes (what the OS had buffered) sits beyond the limit until the next call trims it.
    bound = scanner.max_length + 8 + max((len(p) for p in pieces), default=0)
    for _ in range(2 * len(pieces) + 8):
        line = scanner._read_line()
        if line is None:
            if not port._pieces:
                break
            continue  # an empty read; the module keeps sending
        if line.overflow:
            scanner._refuse(payload.CodeTooLong(line.length, scanner.max_length))
        elif line.data:
            scanner._deliver(line.data, 0.0)
        assert len(scanner._buffer) <= bound, "line buffer grew past its bound"
    while not scanner._queue.empty():  # what read() would hand the journey
        item = scanner._queue.get_nowait()
        assert isinstance(item, PayloadError) or hasattr(item, "text"), item
    if scanner.scans_accepted > accepted:
        return "accepted"
    return "refused" if scanner.scans_rejected > refused else "no line"


QR_SERIAL = Target(
    name="qr_serial",
    parser="drivers/qr/scanner.py: SerialQrScanner._read_line, _deliver (+ payload.validate)",
    generate=_stream_input,
    run=read_stream,
    documented=(PayloadError, Base45Error),
    short_examples=5_000,
)

TARGETS = (QR_PAYLOAD, QR_SERIAL)
