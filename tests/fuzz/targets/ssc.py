"""社保卡: APDU answers, TLV records and the record values, through the reader's own code.

`ssc_apdu` runs the real `SscReader._read` (select SSSE, scan EF05 and EF06 record by record,
`card.build`) and `SscCardData.require`, with only the PC/SC calls replaced: `_transmit` is
the simulator's card model (`drivers/sim/ssc_card.py`), whose records and answers the
generator mutates. Answers are valid, mutated (flipped status words, 61xx/6Cxx loops, cut
records, wrong TLV lengths, BER 81 lengths, padding), replaced by random bytes, or come from
a card with randomised holder data (GBK names with odd bytes, BCD dates, ASCII dates).
The coroutine is driven to completion with `send(None)`: nothing in it waits, since the
blocking calls are plain functions here.

Documented errors: `SscFailure` and subclasses (malformed response, status, not an SSC
card, access denied, card invalid).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from drivers.sim.ssc_card import (
    CITIZENS,
    EF05,
    EF06,
    PULLED,
    SscCardModel,
    TestCitizen,
    holder_records,
)
from drivers.ssc import apdu
from drivers.ssc import card as ssc_card
from drivers.ssc.apdu import SscFailure
from drivers.ssc.card import IDENTITY_FIELDS, SscField
from drivers.ssc.reader import SscCardRemoved, SscReader
from tests.fuzz import mutate
from tests.fuzz.engine import Target
from tests.fuzz.sync import run_coroutine

_STATUS_WORDS = (
    0x9000, 0x6982, 0x6983, 0x6985, 0x6A82, 0x6A83, 0x6A81, 0x6D00, 0x6E00, 0x6581, 0x6F00,
    0x6400, 0x6700, 0x6100, 0x61FF, 0x6C00, 0x6C05, 0x6CFF, 0x6000, 0x9FFF, 0x0000, 0xFFFF,
)


def _holder(rng: random.Random) -> TestCitizen:
    base = rng.choice(list(CITIZENS.values()))
    if rng.random() < 0.4:
        return base
    born = dt.date(rng.randint(1900, 2025), rng.randint(1, 12), rng.randint(1, 28))
    name_chars = "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(rng.randint(1, 14)))
    try:
        name_chars.encode("gbk")
    except UnicodeEncodeError:
        name_chars = base.name
    return TestCitizen(
        "fuzz", name_chars, rng.choice("1290"), f"{rng.randint(0, 99):02d}",
        rng.choice(("320211", "650102", "110105")), born, f"{rng.randrange(1000):03d}",
        "".join(rng.choice("ABC0123456789") for _ in range(9)),
    )


def _mutate_value(rng: random.Random, value: bytes) -> bytes:
    roll = rng.randrange(7)
    if roll == 0:
        return mutate.mutate_bytes(rng, value)
    if roll == 1:
        return rng.randbytes(rng.choice((0, 1, 2, 3, 4, 8, 18, 30, 127, 200)))
    if roll == 2:  # GBK lead byte without its trail, or odd GB 18030 four-byte forms
        return value[: rng.randint(0, len(value))] + rng.choice((b"\x81", b"\xa1\xa1", b"\x81\x30\x81\x30", b"\xff\xfe", b"\x00"))
    if roll == 3:
        return rng.choice((b"\x20\x23\x02\x30", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"20230230",
                           b"1990O101", b"\x19\x90\x01", b"\x99\x99\x99\x99"))
    if roll == 4:
        return value + rng.choice((b"\x00" * 10, b"\xff" * 3, b"\x20", b"\x01"))
    if roll == 5:
        return mutate.odd_text(rng, 10).encode("utf-8", "surrogatepass")
    return value


def _records(rng: random.Random, holder: TestCitizen) -> dict[int, list[tuple[int, bytes]]]:
    files = holder_records(holder)
    if rng.random() < 0.6:
        for _ in range(rng.randint(1, 3)):
            fid = rng.choice((EF05, EF06))
            records = files[fid]
            index = rng.randrange(len(records))
            tag, value = records[index]
            roll = rng.random()
            # The simulator frames a record as tag, one length byte, value: keep both a byte.
            if roll < 0.7:
                records[index] = (tag, _mutate_value(rng, value)[:255])
            elif roll < 0.8:
                records[index] = (rng.choice((0x00, 0xFF, 0x0E, (tag + 1) & 0xFF, 0x01)), value)
            elif roll < 0.9:
                del records[index]
            else:
                records.insert(index, (rng.randrange(1, 0x7F), rng.randbytes(rng.randint(0, 20))))
    return files


def _answer_mutation(rng: random.Random, answer: bytes) -> bytes:
    roll = rng.randrange(9)
    if roll == 0:
        return mutate.mutate_bytes(rng, answer)
    if roll == 1:
        return answer[:-2] + rng.choice(_STATUS_WORDS).to_bytes(2, "big")
    if roll == 2:
        return rng.choice(_STATUS_WORDS).to_bytes(2, "big")
    if roll == 3:  # record with a BER long-form or impossible length byte
        body = answer[:-2]
        if len(body) >= 2:
            return body[:1] + rng.choice((b"\x81", b"\x82", b"\xff", b"\x80", b"\x81\xff")) + body[2:] + answer[-2:]
        return answer
    if roll == 4:
        return answer[: rng.randint(0, len(answer))]
    if roll == 5:
        return rng.randbytes(rng.choice((0, 1, 2, 3, 259, 300)))
    if roll == 6:
        return answer[:-2] + b"\x00" * rng.randint(1, 40) + answer[-2:]
    if roll == 7:
        return b"\x61" + bytes([rng.randrange(256)])  # endless GET RESPONSE
    return answer[:-2] + bytes([rng.randrange(256)]) * rng.randint(1, 258) + answer[-2:]


def _card_input(rng: random.Random) -> dict[str, Any]:
    holder = _holder(rng)
    return {
        "holder": holder,
        "files": _records(rng, holder),
        "exact_le": rng.random() < 0.2,
        "answer_rate": rng.choice((0.0, 0.0, 0.05, 0.2, 0.5)),
        "seed": rng.randrange(2**32),
        "random_card": rng.random() < 0.05,
    }


def read_card(value: dict[str, Any]) -> None:
    rng = random.Random(value["seed"])
    model = SscCardModel(value["holder"], exact_le=value["exact_le"])
    model._files = value["files"]  # the mutated records instead of the holder's real ones
    transmits = 0

    def transmit(command: bytes) -> bytes:
        nonlocal transmits
        transmits += 1
        if transmits > 200:  # the reader must bound its own exchanges
            raise AssertionError("the reader kept sending APDUs")
        if value["random_card"]:
            return rng.randbytes(rng.randint(0, 40))
        answer = model.answer(command)
        if answer is PULLED:
            raise SscCardRemoved()
        if rng.random() < value["answer_rate"]:
            return _answer_mutation(rng, answer)
        return answer

    reader = SscReader.__new__(SscReader)  # no PC/SC: only the parsing path is exercised
    reader.name = "fuzz"

    async def call(function: Any, *args: Any, timeout: float | None = None) -> Any:
        return function(*args)

    reader._call = call
    reader._transmit = transmit
    reader._connect_card = lambda: None
    reader._disconnect_card = lambda: None
    data = run_coroutine(reader._read())
    repr(data)
    data.region_code, data.generation, data.complete
    data.require(IDENTITY_FIELDS | {SscField.BIRTH_DATE} if value["seed"] % 2 else IDENTITY_FIELDS)


SSC_APDU = Target(
    name="ssc_apdu",
    parser="drivers/ssc/apdu.py + card.py: exchange (61xx/6Cxx), check_select, "
           "classify_record, parse_record, value codecs, card.build (via SscReader._read)",
    generate=_card_input,
    run=read_card,
    documented=(SscFailure,),
    short_examples=5_000,
)


def _raw_record(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return mutate.random_bytes(rng, 40)
    tag = rng.randrange(1, 0x0E)
    value = rng.randbytes(rng.randint(0, 30))
    record = bytes([tag, len(value)]) + value
    return mutate.mutate_bytes(rng, record) if roll < 0.8 else record


def parse_raw(data: bytes) -> None:
    """Every codec on one record's value: what a card with a shuffled layout would give."""
    response = apdu.parse_response(data + b"\x90\x00")
    record = apdu.parse_record(response.data)
    for layout in (ssc_card.EF05_LAYOUT, ssc_card.EF06_LAYOUT):
        for element in layout.values():
            try:
                element.decode(record.value, record.tag)
            except apdu.SscMalformedResponse:
                pass


SSC_RECORDS = Target(
    name="ssc_records",
    parser="drivers/ssc/apdu.py: parse_response, parse_record and every value codec",
    generate=_raw_record,
    run=parse_raw,
    documented=(SscFailure,),
    short_examples=10_000,
    from_bytes=bytes,
)

TARGETS = (SSC_APDU, SSC_RECORDS)
