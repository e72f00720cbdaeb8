import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import ErrorKind, OperatorAction
from drivers.idcard import frames
from drivers.idcard.frames import (
    PREAMBLE,
    AnswerAssembler,
    Command,
    CommandRejected,
    FrameError,
    NoCard,
    ReadFailed,
    SamFault,
    SelectFailed,
)
from kiosk import i18n

# Command frames as printed in vendor manuals and public reader code.
GOLDEN_COMMANDS = {
    Command.FIND_CARD: "AAAAAA9669000320 0122",
    Command.SELECT_CARD: "AAAAAA9669000320 0221",
    Command.READ_TEXT_PHOTO: "AAAAAA9669000330 0132",
    Command.SAM_ID: "AAAAAA9669000312 FFEE",
    Command.RESET: "AAAAAA9669000310 FFEC",
    Command.STATUS: "AAAAAA9669000311 FFED",
}


@pytest.mark.parametrize("command", list(GOLDEN_COMMANDS))
def test_command_frames_match_the_published_bytes(command):
    assert frames.build_command(command) == bytes.fromhex(GOLDEN_COMMANDS[command])


def test_published_answers_parse():
    found = frames.parse_answer(bytes.fromhex("AAAAAA9669000800009F0000000097"))
    assert (found.sw1, found.sw2, found.sw3, found.data) == (0, 0, 0x9F, bytes(4))
    selected = frames.parse_answer(bytes.fromhex("AAAAAA9669000C00009000000000000000009C"))
    assert selected.sw3 == 0x90 and selected.data == bytes(8)
    failed = frames.parse_answer(bytes.fromhex("AAAAAA9669000400004145"))
    assert failed.sw3 == 0x41 and failed.data == b""


def test_read_answer_layout():
    text, photo = bytes(range(256)), bytes(1024)
    data = (256).to_bytes(2, "big") + (1024).to_bytes(2, "big") + text + photo
    frame = frames.build_answer(0x90, data)
    # The header every reader implementation looks for: LEN 0x0508, SW 00 00 90, 0100 0400.
    assert frame[:14] == bytes.fromhex("AAAAAA9669050800009001000400")
    assert len(frame) == 1295
    answer = frames.parse_answer(frame)
    assert frames.parse_read_data(answer.data) == (text, photo)
    assert "bytes" in repr(answer) and str(text[:4]) not in repr(answer)


def test_read_data_lengths_must_add_up():
    with pytest.raises(FrameError) as info:
        frames.parse_read_data((256).to_bytes(2, "big") + (1024).to_bytes(2, "big") + bytes(10))
    assert info.value.code == "sam.bad_read_data"
    with pytest.raises(FrameError):
        frames.parse_read_data(b"\x01")


def test_sam_id_round_trip_and_length():
    text = "05.01-20200601-0000012345-2712345678"
    assert frames.parse_sam_id(frames.encode_sam_id(text)) == text
    with pytest.raises(FrameError) as info:
        frames.parse_sam_id(bytes(15))
    assert info.value.code == "sam.bad_sam_id"


@pytest.mark.parametrize(
    ("sw3", "cls", "code", "kind", "action", "key"),
    [
        (0x80, NoCard, "sam.no_card", ErrorKind.USER, OperatorAction.NONE, "device.idcard.no_card"),
        (0x81, SelectFailed, "sam.select_failed", ErrorKind.USER, OperatorAction.NONE,
         "device.idcard.read_failed"),
        (0x41, ReadFailed, "sam.read_failed", ErrorKind.USER, OperatorAction.NONE,
         "device.idcard.read_failed"),
        (0x10, CommandRejected, "sam.command_checksum", ErrorKind.HARDWARE, OperatorAction.RESET,
         "device.idcard.reader_fault"),
        (0x11, CommandRejected, "sam.command_length", ErrorKind.HARDWARE, OperatorAction.RESET,
         "device.idcard.reader_fault"),
        (0x60, SamFault, "sam.fault", ErrorKind.HARDWARE, OperatorAction.MAINTENANCE,
         "device.idcard.reader_fault"),
        (0x33, SamFault, "sam.fault", ErrorKind.HARDWARE, OperatorAction.MAINTENANCE,
         "device.idcard.reader_fault"),
    ],
)
def test_each_status_maps_to_one_typed_error(sw3, cls, code, kind, action, key):
    answer = frames.parse_answer(frames.build_answer(sw3))
    with pytest.raises(cls) as info:
        frames.expect(answer)
    error = info.value
    assert (error.code, error.kind, error.action, error.message_key, error.sw3) == (
        code, kind, action, key, sw3,
    )
    for locale in i18n.LOCALES:
        assert key in i18n.catalogue(locale)


def test_success_statuses():
    assert frames.expect(frames.parse_answer(frames.build_answer(0x90))).sw3 == 0x90
    found = frames.parse_answer(frames.build_answer(0x9F, bytes(4)))
    assert frames.expect(found, Command.FIND_CARD.ok) is found
    with pytest.raises(FrameError) as info:  # "found" is no answer to a read
        frames.expect(found, Command.READ_TEXT_PHOTO.ok)
    assert info.value.code == "sam.unexpected_status"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (bytes.fromhex("AAAAAA9669000400004144"), "sam.bad_checksum"),
        (bytes.fromhex("AAAAAA96690004000041"), "sam.truncated"),
        (bytes.fromhex("AAAAAA9669"), "sam.truncated"),
        (bytes.fromhex("ABAAAA9669000400004145"), "sam.bad_preamble"),
        (bytes.fromhex("AAAAAA9669000400004145FF"), "sam.bad_length"),
        (bytes.fromhex("AAAAAA96690002000002"), "sam.bad_length"),
    ],
)
def test_broken_frames_are_typed(frame, code):
    with pytest.raises(FrameError) as info:
        frames.parse_answer(frame)
    assert info.value.code == code
    assert info.value.message_key == "device.idcard.read_failed"


def test_assembler_skips_junk_and_joins_chunks():
    frame = frames.build_answer(0x9F, bytes(4))
    assembler = AnswerAssembler()
    stream = b"\x01\x02\xaa\x00" + frame + b"\x99"
    results = [assembler.feed(stream[i : i + 1]) for i in range(len(stream))]
    whole = next(r for r in results if r is not None)
    assert whole == frame and assembler.discarded == 4


def test_assembler_refuses_an_impossible_length_at_once():
    assembler = AnswerAssembler()
    with pytest.raises(FrameError) as info:
        assembler.feed(PREAMBLE + b"\xff\xff")
    assert info.value.code == "sam.bad_length"


# -- property tests: junk in, a value or one typed error out --------------------------------

VALID = frames.build_answer(0x90, bytes(range(40)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.binary(max_size=40).map(lambda b: PREAMBLE + b))
def test_parse_answer_on_junk_raises_only_frame_error(data):
    try:
        answer = frames.parse_answer(data)
    except FrameError as error:
        assert error.code.startswith("sam.")
    else:
        assert frames.build_answer(answer.sw3, answer.data, sw1=answer.sw1, sw2=answer.sw2) == data


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_any_single_byte_change_is_detected(position, flip):
    broken = bytearray(VALID)
    broken[position] ^= flip
    with pytest.raises(FrameError):
        frames.parse_answer(bytes(broken))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1))
def test_any_truncation_is_detected(cut):
    with pytest.raises(FrameError):
        frames.parse_answer(VALID[:cut])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=12))
def test_assembler_on_junk_chunks_raises_only_frame_error(chunks):
    assembler = AnswerAssembler()
    try:
        for chunk in chunks:
            whole = assembler.feed(chunk)
            if whole is not None:
                try:
                    frames.parse_answer(whole)
                except FrameError:
                    pass
                break
    except FrameError as error:
        assert error.code == "sam.bad_length"


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=40).map(lambda b: b.replace(b"\xaa", b"")),
    st.lists(st.integers(1, 50), min_size=1, max_size=40),
)
def test_assembler_finds_a_frame_after_junk_however_it_is_split(junk, sizes):
    stream = junk + VALID
    assembler = AnswerAssembler()
    position, found = 0, None
    for size in sizes * (len(stream) // min(sizes) + 1):
        found = assembler.feed(stream[position : position + size])
        position += size
        if found is not None or position >= len(stream):
            break
    assert found == VALID and assembler.discarded == len(junk)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=1400))
def test_read_data_and_sam_id_on_junk(data):
    for parse in (frames.parse_read_data, frames.parse_sam_id):
        try:
            parse(data)
        except FrameError:
            pass
