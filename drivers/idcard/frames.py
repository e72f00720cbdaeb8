"""SAM frame codec (GA/T 467 serial protocol of the resident ID card security module).

Pure functions, no I/O: build command frames, reassemble answer frames from a byte stream,
parse them, and turn the module's status byte into one typed error.

Command frame:  AA AA AA 96 69 | LEN (2, big-endian) | CMD | PARA | data | CHK
Answer frame:   AA AA AA 96 69 | LEN (2, big-endian) | SW1 SW2 SW3 | data | CHK

LEN counts everything after itself up to and including CHK; CHK is the XOR of every byte
after the 5-byte preamble (LEN included). SW1 and SW2 are 00 00 on the modules we know; SW3
is the status. Examples of real answers (vendor manuals and public reader code):

    find card ok   AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97
    select ok      AA AA AA 96 69 00 0C 00 00 90 00*8 9C
    read failed    AA AA AA 96 69 00 04 00 00 41 45
    read ok        AA AA AA 96 69 05 08 00 00 90 | 01 00 | 04 00 | 256 text | 1024 photo | CHK

The read answer's data starts with the text length and the photo length (2 bytes each,
big-endian: 0x0100 = 256 and 0x0400 = 1024), then the text block and the photo.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from drivers.base import DeviceFailure, DeviceTimeout, ErrorKind, OperatorAction

PREAMBLE = bytes((0xAA, 0xAA, 0xAA, 0x96, 0x69))
HEADER_LENGTH = len(PREAMBLE) + 2  # preamble + LEN
MIN_ANSWER_LENGTH = 4  # SW1 SW2 SW3 CHK
# The longest answer we know is "read text, photo and fingerprints" (30 10, LEN 0x090A).
# A LEN beyond this is a broken frame, not a reason to wait for 64 KiB that never come.
MAX_ANSWER_LENGTH = 0x0A00
SAM_ID_LENGTH = 16

STATUS_OK = 0x90
STATUS_CARD_FOUND = 0x9F
STATUS_FIND_FAILED = 0x80
STATUS_SELECT_FAILED = 0x81
STATUS_READ_FAILED = 0x41
STATUS_CHECKSUM_ERROR = 0x10
STATUS_LENGTH_ERROR = 0x11


class Command(enum.Enum):
    """(CMD, PARA) of the commands the driver sends, with the statuses that mean success."""

    RESET = (0x10, 0xFF)
    STATUS = (0x11, 0xFF)
    SAM_ID = (0x12, 0xFF)
    FIND_CARD = (0x20, 0x01)
    SELECT_CARD = (0x20, 0x02)
    READ_TEXT_PHOTO = (0x30, 0x01)

    @property
    def ok(self) -> tuple[int, ...]:
        return (STATUS_CARD_FOUND,) if self is Command.FIND_CARD else (STATUS_OK,)


# -- typed failures -------------------------------------------------------------------------


class IdCardFailure(DeviceFailure):
    """Base of every ID card reader failure. Messages name what went wrong, never what a
    card says (no names, numbers, addresses)."""

    message_key = "device.idcard.read_failed"
    default_code = "sam.failed"
    default_kind = ErrorKind.HARDWARE
    default_action = OperatorAction.RESET

    def __init__(
        self,
        detail: str = "",
        *,
        code: str | None = None,
        kind: ErrorKind | None = None,
        action: OperatorAction | None = None,
        message_key: str | None = None,
    ) -> None:
        super().__init__(
            detail,
            code=code or self.default_code,
            kind=kind or self.default_kind,
            action=action or self.default_action,
            message_key=message_key,
        )


class FrameError(IdCardFailure):
    """The bytes from the module are not a well-formed answer: no preamble, impossible
    length, wrong checksum, cut short. Usually line noise or a module in a bad state; the
    driver can reset it."""

    default_code = "sam.bad_frame"


class SamTimeout(IdCardFailure, DeviceTimeout):
    """The module did not answer in time."""

    message_key = "device.idcard.no_answer"
    default_code = "sam.no_answer"


class SamStatusError(IdCardFailure):
    """The module answered with a status that is not success; `sw3` says which."""

    def __init__(self, sw3: int, detail: str = "", *, code: str | None = None) -> None:
        self.sw3 = sw3
        super().__init__(detail or f"SAM status SW3=0x{sw3:02X}", code=code)


class NoCard(SamStatusError):
    """Find card failed (0x80): nothing on the reader. Normal while polling."""

    message_key = "device.idcard.no_card"
    default_code = "sam.no_card"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.NONE


class SelectFailed(SamStatusError):
    """Select card failed (0x81): the card moved or left the field between find and select."""

    message_key = "device.idcard.read_failed"
    default_code = "sam.select_failed"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.NONE


class ReadFailed(SamStatusError):
    """Read failed (0x41): mostly a card moved during the read; a damaged card also does it."""

    message_key = "device.idcard.read_failed"
    default_code = "sam.read_failed"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.NONE


class CommandRejected(SamStatusError):
    """The module says our command arrived broken (0x10 checksum, 0x11 length): the line or
    the module is at fault, a reset usually helps."""

    message_key = "device.idcard.reader_fault"
    default_code = "sam.command_rejected"


class SamFault(SamStatusError):
    """Any other status: the module itself is faulty (self-test failed, not authorised...)."""

    message_key = "device.idcard.reader_fault"
    default_code = "sam.fault"
    default_action = OperatorAction.MAINTENANCE


# -- frames ---------------------------------------------------------------------------------


def checksum(body: bytes | bytearray | memoryview) -> int:
    value = 0
    for byte in body:
        value ^= byte
    return value


def _frame(payload: bytes) -> bytes:
    """Preamble + LEN + payload + CHK, where payload is CMD PARA data or SW1 SW2 SW3 data."""
    length = len(payload) + 1
    if length > 0xFFFF:
        raise ValueError("frame payload too long")
    body = length.to_bytes(2, "big") + payload
    return PREAMBLE + body + bytes((checksum(body),))


def build_command(command: Command | tuple[int, int], data: bytes = b"") -> bytes:
    cmd, para = command.value if isinstance(command, Command) else command
    return _frame(bytes((cmd, para)) + data)


def build_answer(sw3: int, data: bytes = b"", *, sw1: int = 0, sw2: int = 0) -> bytes:
    """An answer frame as the module sends it (used by the simulator and tests)."""
    return _frame(bytes((sw1, sw2, sw3)) + data)


@dataclass(frozen=True)
class Answer:
    sw1: int
    sw2: int
    sw3: int
    data: bytes

    def __repr__(self) -> str:  # the data of a read answer is personal: never in a repr
        sw = f"{self.sw1:02X}{self.sw2:02X}{self.sw3:02X}"
        return f"Answer(sw=0x{sw}, data={len(self.data)} bytes)"


@dataclass(frozen=True)
class CommandFrame:
    cmd: int
    para: int
    data: bytes


def _split(frame: bytes, minimum: int) -> bytes:
    """Check preamble, LEN and CHK of one whole frame; return what lies between LEN and CHK."""
    if frame[: len(PREAMBLE)] != PREAMBLE[: len(frame)]:
        raise FrameError("frame does not start with the SAM preamble", code="sam.bad_preamble")
    if len(frame) < HEADER_LENGTH:
        raise FrameError(f"frame of {len(frame)} bytes is too short", code="sam.truncated")
    length = int.from_bytes(frame[5:7], "big")
    if length < minimum:
        raise FrameError(f"length field {length} is below {minimum}", code="sam.bad_length")
    if len(frame) < HEADER_LENGTH + length:
        raise FrameError(
            f"frame cut short: {len(frame)} of {HEADER_LENGTH + length} bytes", code="sam.truncated"
        )
    if len(frame) > HEADER_LENGTH + length:
        raise FrameError(
            f"{len(frame) - HEADER_LENGTH - length} bytes after the frame", code="sam.bad_length"
        )
    if checksum(frame[5:-1]) != frame[-1]:
        raise FrameError("checksum does not match", code="sam.bad_checksum")
    return bytes(frame[HEADER_LENGTH:-1])


def parse_answer(frame: bytes) -> Answer:
    """One complete answer frame → `Answer`, or `FrameError`."""
    payload = _split(frame, MIN_ANSWER_LENGTH)
    return Answer(payload[0], payload[1], payload[2], payload[3:])


def parse_command(frame: bytes) -> CommandFrame:
    """One complete command frame → `CommandFrame`, or `FrameError` (for the simulator)."""
    payload = _split(frame, 3)
    return CommandFrame(payload[0], payload[1], payload[2:])


_STATUS_ERRORS: dict[int, tuple[type[SamStatusError], str | None]] = {
    STATUS_FIND_FAILED: (NoCard, None),
    STATUS_SELECT_FAILED: (SelectFailed, None),
    STATUS_READ_FAILED: (ReadFailed, None),
    STATUS_CHECKSUM_ERROR: (CommandRejected, "sam.command_checksum"),
    STATUS_LENGTH_ERROR: (CommandRejected, "sam.command_length"),
}


def status_error(sw3: int) -> SamStatusError:
    """The typed error for a non-success status byte."""
    cls, code = _STATUS_ERRORS.get(sw3, (SamFault, None))
    return cls(sw3, code=code)


def expect(answer: Answer, ok: tuple[int, ...] = (STATUS_OK,)) -> Answer:
    """Return the answer if its status is one of `ok`, else raise its typed error."""
    if answer.sw3 in ok:
        return answer
    if answer.sw3 in (STATUS_OK, STATUS_CARD_FOUND):
        # Success, but not the success this command answers with: the module is confused.
        raise FrameError(f"unexpected status 0x{answer.sw3:02X}", code="sam.unexpected_status")
    raise status_error(answer.sw3)


def parse_read_data(data: bytes) -> tuple[bytes, bytes]:
    """Data of a read-text+photo answer → (text block, photo), checking the two lengths."""
    if len(data) < 4:
        raise FrameError("read answer lacks the length fields", code="sam.bad_read_data")
    text_length = int.from_bytes(data[0:2], "big")
    photo_length = int.from_bytes(data[2:4], "big")
    if 4 + text_length + photo_length != len(data):
        raise FrameError(
            f"read answer lengths {text_length}+{photo_length} do not add up to "
            f"{len(data) - 4} bytes",
            code="sam.bad_read_data",
        )
    return bytes(data[4 : 4 + text_length]), bytes(data[4 + text_length :])


def parse_sam_id(data: bytes) -> str:
    """The 16-byte SAM id → the printed form `05.01-20101206-0012345678-1234567890`.

    Fields are little-endian: two 2-byte numbers, then three 4-byte numbers, printed in
    decimal with widths 2, 2, 8, 10, 10 as the vendor tools do.
    """
    if len(data) != SAM_ID_LENGTH:
        raise FrameError(f"SAM id has {len(data)} bytes, not 16", code="sam.bad_sam_id")
    parts = [
        int.from_bytes(data[a:b], "little") for a, b in ((0, 2), (2, 4), (4, 8), (8, 12), (12, 16))
    ]
    return "{:02d}.{:02d}-{:08d}-{:010d}-{:010d}".format(*parts)


def encode_sam_id(text: str) -> bytes:
    """Inverse of `parse_sam_id` (for the simulator)."""
    try:
        a, b, c, d, e = text.replace(".", "-").split("-")
        sizes = (2, 2, 4, 4, 4)
        return b"".join(int(v).to_bytes(n, "little") for v, n in zip((a, b, c, d, e), sizes))
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"not a SAM id: {text!r}") from exc


class AnswerAssembler:
    """Reassembles one answer frame from the bytes as they arrive on the serial line.

    Bytes before the preamble are junk and are dropped (counted in `discarded`). `feed()`
    returns the whole frame once it is complete (not yet checked: pass it to
    `parse_answer`), else None; an impossible LEN raises `FrameError` at once.
    """

    def __init__(self, max_length: int = MAX_ANSWER_LENGTH) -> None:
        self._buffer = bytearray()
        self._max_length = max_length
        self.discarded = 0
        self.started = False  # the preamble has been seen

    @property
    def received(self) -> int:
        return self.discarded + len(self._buffer)

    def feed(self, data: bytes) -> bytes | None:
        self._buffer += data
        if not self.started:
            start = self._buffer.find(PREAMBLE)
            if start < 0:
                # Keep a tail that could be the start of a preamble split across reads.
                keep = len(PREAMBLE) - 1
                drop = max(0, len(self._buffer) - keep)
                self.discarded += drop
                del self._buffer[:drop]
                return None
            self.discarded += start
            del self._buffer[:start]
            self.started = True
        if len(self._buffer) < HEADER_LENGTH:
            return None
        length = int.from_bytes(self._buffer[5:7], "big")
        if not MIN_ANSWER_LENGTH <= length <= self._max_length:
            raise FrameError(f"length field {length} is out of range", code="sam.bad_length")
        total = HEADER_LENGTH + length
        if len(self._buffer) < total:
            return None
        # Anything after the frame is stale or junk: one command, one answer.
        return bytes(self._buffer[:total])
