"""ID card reader: SAM answer frames (GA/T 467) and the card's 256-byte text block.

`sam_frames` replays what the reader's serial loop does with the bytes of one answer:
`AnswerAssembler.feed` chunk by chunk, `parse_answer`, `expect` for the command that was
sent, then `parse_read_data` + `card.decode` (read) or `parse_sam_id` (SAM id). Inputs are
valid answers of every command, answers whose payload was mutated and then re-framed with a
correct LEN and checksum (so they get past the frame checks into the data parsers), frames
mutated after framing (broken lengths and checksums), junk around frames, and random bytes.

`idcard_text` goes straight at `card.decode` with valid text blocks whose fields were
replaced one at a time (odd UCS-2, impossible dates, wrong check digits, other card types).
Documented errors: `IdCardFailure` and its subclasses (FrameError, SamStatusError...,
InvalidCard, UnsupportedCard).
"""

from __future__ import annotations

import datetime as dt
import random

from drivers.idcard import card as card_codec
from drivers.idcard import frames
from drivers.idcard.frames import AnswerAssembler, Command, IdCardFailure
from drivers.sim.sam import (
    DEFAULT_SAM_ID,
    foreigner_card,
    id_number_for,
    residence_permit_card,
    resident_card,
)
from tests.fuzz import mutate
from tests.fuzz.engine import Target

TODAY = dt.date(2026, 11, 22)
_FIELD_SLOTS = card_codec._FIELDS + (("reserved", 220, 36),)
_STATUSES = (0x90, 0x9F, 0x80, 0x81, 0x41, 0x10, 0x11, 0x21, 0x00, 0xFF)


def _chinese(rng: random.Random, low: int, high: int) -> str:
    return "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(rng.randint(low, high)))


def _date(rng: random.Random, low: int, high: int) -> dt.date:
    return dt.date(rng.randint(low, high), rng.randint(1, 12), rng.randint(1, 28))


def resident_text(rng: random.Random) -> bytes:
    """A consistent resident card text block with random fields."""
    birth = _date(rng, 1900, 2024)
    number = id_number_for(rng.choice(("320211", "110105", "650102", "810000")), birth,
                           rng.randrange(1000))
    valid_from = min(TODAY, birth + dt.timedelta(days=rng.randint(0, 365 * 70)))
    valid_to = None if rng.random() < 0.3 else valid_from + dt.timedelta(
        days=365 * rng.choice((5, 10, 20)) + rng.randint(0, 4)
    )
    return resident_card(
        label="fuzz",
        name=_chinese(rng, 1, 15),
        sex_code=rng.choice("12"),
        nation_code=f"{rng.choice((1, 2, 5, 56, 97, 98)):02d}",
        birth=birth,
        address=_chinese(rng, 1, 35),
        number=number if rng.random() < 0.9 else number.lower(),
        authority=_chinese(rng, 1, 15),
        valid_from=valid_from,
        valid_to=valid_to,
        photo=b"",
    ).text


def _field_value(rng: random.Random, size: int) -> bytes:
    roll = rng.randrange(8)
    if roll == 0:
        return rng.randbytes(size)
    if roll == 1:  # a lone surrogate or a non-character in UCS-2
        unit = rng.choice((0xD800, 0xDC00, 0xDBFF, 0xFFFE, 0xFFFF, 0x0000, 0x0085, 0x0007))
        return unit.to_bytes(2, "little") * (size // 2)
    if roll == 2:
        text = rng.choice(("20230230", "00000000", "99991231", "18491231", "长期", "长 期",
                           "2023-1-1", "１９９０", "1", "3", "99", "X", "19900101"))
    elif roll == 3:
        text = mutate.odd_text(rng, size // 2)
    elif roll == 4:
        text = ""
    elif roll == 5:
        text = "".join(rng.choice("0123456789Xx") for _ in range(rng.randint(0, 18)))
    else:
        text = _chinese(rng, 0, size // 2)
    raw = text.encode("utf-16-le", "surrogatepass")[:size]
    return raw + b" \x00" * ((size - len(raw)) // 2) + b"\x00" * ((size - len(raw)) % 2)


def card_text(rng: random.Random) -> bytes:
    """A text block: valid, or with fields replaced, a type mark set, or mutated bytes."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice((foreigner_card(rng.choice("IYZ")), residence_permit_card())).text
    text = bytearray(resident_text(rng))
    if roll < 0.2:
        return bytes(text)
    if roll < 0.7:
        for _ in range(rng.choice((1, 1, 2))):
            _, start, size = rng.choice(_FIELD_SLOTS)
            text[start : start + size] = _field_value(rng, size)
        if rng.random() < 0.1:
            text[248:250] = rng.choice(("I", "Y", "J", "Q", "\x00", " ")).encode("utf-16-le")
        return bytes(text)
    if roll < 0.95:
        return mutate.mutate_bytes(rng, bytes(text))
    return mutate.random_bytes(rng, 300)


def decode_text(value: tuple[bytes, bytes]) -> None:
    text, photo = value
    decoded = card_codec.decode(text, photo, today=TODAY)
    repr(decoded)
    decoded.sex, decoded.nation, decoded.expired(TODAY)


def _text_input(rng: random.Random) -> tuple[bytes, bytes]:
    photo = rng.choice((b"", bytes(1024), rng.randbytes(rng.choice((1, 1023, 1025)))))
    return card_text(rng), photo


IDCARD_TEXT = Target(
    name="idcard_text",
    parser="drivers/idcard/card.py: decode (ID card text block)",
    generate=_text_input,
    run=decode_text,
    documented=(IdCardFailure,),
    short_examples=10_000,
    from_bytes=lambda data: (data, b""),
)


# -- frames -------------------------------------------------------------------------------------


def _payload(rng: random.Random, command: Command) -> tuple[int, bytes]:
    """(SW3, data) of an answer to `command`, valid or nearly so."""
    if rng.random() < 0.15:
        return rng.choice(_STATUSES), b""
    if command is Command.FIND_CARD:
        return 0x9F, bytes(4)
    if command is Command.SELECT_CARD:
        return 0x90, bytes(8)
    if command is Command.SAM_ID:
        data = frames.encode_sam_id(DEFAULT_SAM_ID) if rng.random() < 0.7 else rng.randbytes(16)
        return 0x90, data
    if command is Command.READ_TEXT_PHOTO:
        text = card_text(rng) if rng.random() < 0.5 else resident_text(rng)
        photo = bytes(1024) if rng.random() < 0.8 else rng.randbytes(rng.choice((0, 1, 1023)))
        lengths = len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big")
        if rng.random() < 0.1:
            lengths = rng.randbytes(4)
        return 0x90, lengths + text + photo
    return 0x90, b""


def _frame_input(rng: random.Random) -> tuple[Command, list[bytes]]:
    command = rng.choice(list(Command))
    sw3, data = _payload(rng, command)
    roll = rng.random()
    if roll < 0.2:
        frame = frames.build_answer(sw3, data)
    elif roll < 0.55:  # mutate SW and data, then frame correctly: reaches the data parsers
        payload = mutate.mutate_bytes(rng, bytes((0, 0, sw3)) + data)
        frame = frames.build_answer(payload[2], payload[3:], sw1=payload[0], sw2=payload[1]) \
            if len(payload) >= 3 else frames._frame(payload)
    elif roll < 0.9:  # mutate the framed bytes: broken LEN, CHK, preamble
        frame = mutate.mutate_bytes(rng, frames.build_answer(sw3, data))
    else:
        frame = frames.PREAMBLE * rng.randint(0, 1) + mutate.random_bytes(rng, 40)
    if rng.random() < 0.15:
        frame = rng.randbytes(rng.randint(1, 12)) + frame  # line noise before the answer
    if rng.random() < 0.1:
        frame += rng.randbytes(rng.randint(1, 12))  # stale bytes after it
    return command, mutate.chunks(rng, frame)


def read_answer(value: tuple[Command, list[bytes]]) -> str | None:
    """What IdCardReader._exchange_locked and read_card/sam_id do with the answer bytes."""
    command, pieces = value
    assembler = AnswerAssembler()
    whole = None
    for piece in pieces:
        whole = assembler.feed(piece)
        if whole is not None:
            break
    if whole is None:
        return "incomplete"  # the reader would time out: SamTimeout / FrameError(truncated)
    answer = frames.expect(frames.parse_answer(whole), command.ok)
    repr(answer)
    if command is Command.READ_TEXT_PHOTO:
        text, photo = frames.parse_read_data(answer.data)
        decode_text((text, photo))
    elif command is Command.SAM_ID:
        frames.parse_sam_id(answer.data)
    return None


def _frame_from_bytes(data: bytes) -> tuple[Command, list[bytes]]:
    """First byte: the command the answer is for (low bits) and whether the rest is sent as
    it is (bit 7) or framed first with a correct LEN and checksum, so a coverage-guided
    fuzzer explores the answer parsers rather than searching for the preamble."""
    if not data:
        return Command.FIND_CARD, [b""]
    commands = list(Command)
    command, rest = commands[data[0] % len(commands)], data[1:]
    return command, [rest if data[0] & 0x80 else frames._frame(rest)]


SAM_FRAMES = Target(
    name="sam_frames",
    parser="drivers/idcard/frames.py: AnswerAssembler, parse_answer, expect, parse_read_data, "
           "parse_sam_id (+ card.decode)",
    generate=_frame_input,
    run=read_answer,
    documented=(IdCardFailure,),
    short_examples=10_000,
    from_bytes=_frame_from_bytes,
)

TARGETS = (SAM_FRAMES, IDCARD_TEXT)
