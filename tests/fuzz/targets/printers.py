"""Printers: the receipt printer's DLE EOT status bytes and the A4 printer's IPP answers.

`escpos_status` gives `status.parse_answers` (then `assess`) what a serial or TCP link may
return for the four DLE EOT queries: valid answers (any combination of the variable bits,
so every branch of `assess` is reached), bytes off the fixed frame bits, short and long
reads, random bytes. Documented error: `StatusParseError`.

`ipp_answer` decodes IPP responses and then does what `A4Printer._refresh` and `_follow` do
with them: `raise_for_status` (typed `IppStatusError`), printer-state and
printer-state-reasons through `interpret`, `_info`'s printer-device-id parsing, job-id and
job-state. Inputs are encoded valid answers with random attributes (collections nested,
strings with language, 1setOf), those answers mutated (lengths, tags, truncation), and random
bytes. Documented errors: `IppDecodeError` and `IppStatusError`.
"""

from __future__ import annotations

import random

from drivers.a4 import ipp
from drivers.a4 import printer as a4
from drivers.a4.ipp import Attribute, Group, GroupTag, Message, Value, ValueTag
from drivers.receipt import status
from drivers.receipt.status import StatusParseError
from tests.fuzz import mutate
from tests.fuzz.engine import Target

# -- ESC/POS ------------------------------------------------------------------------------------


def _valid_status(rng: random.Random) -> bytes:
    rate = rng.choice((0.02, 0.1, 0.5))
    return bytes(
        0x12 | sum(bit for bit in (0x04, 0x08, 0x20, 0x40) if rng.random() < rate) for _ in range(4)
    )


def _status_input(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.6:  # valid frames (0x12 plus some of the variable bits 0x6C), mostly healthy
        return _valid_status(rng)
    if roll < 0.85:
        return mutate.mutate_bytes(rng, _valid_status(rng))
    return mutate.random_bytes(rng, 8)


def assess_status(data: bytes) -> str:
    assessment = status.assess(status.parse_answers(data))
    assert (assessment.failure is None) == assessment.can_print
    return f"{assessment.state}/{assessment.paper}"


ESCPOS_STATUS = Target(
    name="escpos_status",
    parser="drivers/receipt/status.py: parse_answers, parse_answer, assess",
    generate=_status_input,
    run=assess_status,
    documented=(StatusParseError,),
    short_examples=10_000,
    from_bytes=bytes,
)


# -- IPP ------------------------------------------------------------------------------------------

_REASONS = (
    "none", "media-empty-error", "media-needed-warning", "media-low-report", "media-jam-error",
    "toner-empty-error", "toner-low-warning", "marker-supply-low-report", "offline-report",
    "paused", "shutdown", "cover-open-error", "cups-waiting-for-job-completed", "moving-to-paused",
    "-error", "error", "", "door-open", "x-report-warning-error",
)
_JOB_REASONS = ("job-completed-successfully", "job-completed-with-errors", "document-format-error",
                "job-canceled-by-user", "aborted-by-system")


def _string(rng: random.Random) -> str:
    return mutate.odd_text(rng, 12) if rng.random() < 0.3 else rng.choice(_REASONS)


def _random_value(rng: random.Random, depth: int = 0) -> Value:
    tag = rng.choice(list(ValueTag))
    if tag in (ValueTag.INTEGER, ValueTag.ENUM):
        return Value(tag, rng.randint(-(2**31), 2**31 - 1))
    if tag == ValueTag.BOOLEAN:
        return Value(tag, rng.random() < 0.5)
    if tag == ValueTag.RANGE_OF_INTEGER:
        return Value(tag, (rng.randint(-5, 5), rng.randint(-5, 5)))
    if tag == ValueTag.RESOLUTION:
        return Value(tag, (rng.randint(0, 1200), rng.randint(0, 1200), rng.choice((3, 4))))
    if tag in (ValueTag.TEXT_WITH_LANGUAGE, ValueTag.NAME_WITH_LANGUAGE):
        return Value(tag, ipp.StringWithLanguage(rng.choice(("en", "zh-cn", "")), _string(rng)))
    if tag == ValueTag.BEG_COLLECTION and depth < 4:
        members = {}
        for _ in range(rng.randint(0, 3)):
            name = rng.choice(("media-size", "x-dimension", "y-dimension", "media-source"))
            members[name] = Attribute(name, (_random_value(rng, depth + 1),))
        return Value(tag, members)
    if tag in (ValueTag.END_COLLECTION, ValueTag.MEMBER_ATTR_NAME, ValueTag.BEG_COLLECTION):
        return Value(ValueTag.KEYWORD, _string(rng))
    if 0x10 <= tag <= 0x1F:
        return Value(tag, None)
    if 0x40 <= tag <= 0x5F:
        return Value(tag, _string(rng))
    return Value(tag, rng.randbytes(11 if tag == ValueTag.DATE_TIME else rng.randint(0, 12)))


def _printer_group(rng: random.Random) -> Group:
    group = Group(GroupTag.PRINTER)
    if rng.random() < 0.8:
        group.add("printer-state", ValueTag.ENUM, rng.choice((3, 4, 5, 0, 9, -1)))
    if rng.random() < 0.8:
        reasons = [_string(rng) for _ in range(rng.randint(1, 4))]
        group.add("printer-state-reasons", ValueTag.KEYWORD, *reasons)
    if rng.random() < 0.5:
        group.add("printer-is-accepting-jobs", ValueTag.BOOLEAN, rng.random() < 0.7)
    if rng.random() < 0.5:
        device_id = rng.choice(("MFG:HP;MDL:LaserJet;CMD:PDF;", "MANUFACTURER:X", ";;:", "", "MFG"))
        group.add("printer-device-id", ValueTag.TEXT, device_id + _string(rng))
    for name in ("printer-make-and-model", "printer-serial-number", "printer-firmware-string-version"):
        if rng.random() < 0.3:
            group.attributes.append(Attribute(name, (_random_value(rng),)))
    for _ in range(rng.randint(0, 3)):
        group.attributes.append(Attribute(rng.choice(("printer-state", "job-id", "x-extra", "media-col")),
                                          tuple(_random_value(rng) for _ in range(rng.randint(1, 3)))))
    return group


def _job_group(rng: random.Random) -> Group:
    group = Group(GroupTag.JOB)
    if rng.random() < 0.8:
        group.add("job-id", ValueTag.INTEGER, rng.choice((1, 7, 0, -1, 2**31 - 1)))
    if rng.random() < 0.8:
        group.add("job-state", ValueTag.ENUM, rng.randint(0, 10))
    if rng.random() < 0.5:
        group.add("job-state-reasons", ValueTag.KEYWORD, *(rng.choice(_JOB_REASONS) for _ in range(2)))
    if rng.random() < 0.3:
        group.attributes.append(Attribute("job-state-message", (_random_value(rng),)))
    return group


def _answer(rng: random.Random) -> bytes:
    status_code = rng.choice((0x0000, 0x0001, 0x0400, 0x0406, 0x040A, 0x0500, 0x0504, 0x0506,
                              0x0507, 0x0200, 0xFFFF))
    operation = Group(GroupTag.OPERATION)
    operation.add("attributes-charset", ValueTag.CHARSET, "utf-8")
    operation.add("attributes-natural-language", ValueTag.NATURAL_LANGUAGE, "en")
    if rng.random() < 0.5:
        operation.attributes.append(Attribute("status-message", (_random_value(rng),)))
    groups = [operation, _printer_group(rng) if rng.random() < 0.6 else _job_group(rng)]
    if rng.random() < 0.2:
        groups.append(Group(rng.choice((GroupTag.UNSUPPORTED, GroupTag.JOB, 0x0F))))
    message = Message(status_code, rng.randint(1, 2**31 - 1), groups,
                      rng.randbytes(rng.randint(0, 8)))
    return ipp.encode(message)


def _nested(depth: int) -> bytes:
    """A collection opened `depth` times: the decoder must refuse it, not recurse away."""
    head = bytes([1, 1, 0, 0, 0, 0, 0, 1, GroupTag.PRINTER])
    head += bytes([ValueTag.BEG_COLLECTION, 0, 1]) + b"m" + b"\x00\x00"
    member = bytes([ValueTag.MEMBER_ATTR_NAME, 0, 0, 0, 1]) + b"a" + bytes([ValueTag.BEG_COLLECTION, 0, 0, 0, 0])
    return head + member * depth + b"\x03"


def _ipp_input(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.25:
        return _answer(rng)
    if roll < 0.85:
        return mutate.mutate_bytes(rng, _answer(rng))
    if roll < 0.9:
        return _nested(rng.choice((30, 33, 500, 5000)))
    if roll < 0.95:
        return mutate.splice(rng, _answer(rng), _answer(rng))
    return mutate.random_bytes(rng, 80)


def read_ipp(body: bytes) -> str:
    """`A4Printer._ipp` decoding, then `_refresh` and `_follow`'s reading of the answer."""
    message = ipp.decode(body)
    message.status_message
    message.raise_for_status()
    printer = message.group(GroupTag.PRINTER) or Group(GroupTag.PRINTER)
    state = printer.get("printer-state")
    condition = a4.interpret(
        state if isinstance(state, int) else None,
        a4._strings(printer, "printer-state-reasons"),
        accepting=printer.get("printer-is-accepting-jobs", True) is not False,
    )
    a4._info(printer)
    job = message.group(GroupTag.JOB)
    if job is not None:
        job.get("job-id")
        a4._job_state(job.get("job-state"))
        set(a4._strings(job, "job-state-reasons"))
        (a4._strings(job, "job-state-message") or [""])[0]
    return f"{condition.state}"


IPP_ANSWER = Target(
    name="ipp_answer",
    parser="drivers/a4/ipp.py: decode, raise_for_status (+ printer.py: interpret, _info, "
           "_strings, _job_state)",
    generate=_ipp_input,
    run=read_ipp,
    documented=(ipp.IppDecodeError, ipp.IppStatusError),
    short_examples=5_000,
    from_bytes=bytes,
)

TARGETS = (ESCPOS_STATUS, IPP_ANSWER)
