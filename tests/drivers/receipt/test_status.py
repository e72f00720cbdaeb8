"""DLE EOT answers: parsing (known bytes, junk) and what each status means for ops."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.base import DeviceState, ErrorKind, OperatorAction, SupplyLevel
from drivers.receipt.status import (
    ALL_QUERIES,
    ReceiptCoverOpen,
    ReceiptPaperOut,
    ReceiptPrinterHardwareError,
    ReceiptPrinterOffline,
    StatusParseError,
    StatusQuery,
    assess,
    parse_answer,
    parse_answers,
)

HEALTHY = bytes([0x12, 0x12, 0x12, 0x12])
# Any byte with the fixed bits right: bit 1 and 4 on, bit 0 and 7 off.
valid_byte = st.sampled_from([b for b in range(256) if b & 0x93 == 0x12])


def test_queries_are_dle_eot_1_to_4():
    assert ALL_QUERIES == bytes.fromhex("100401 100402 100403 100404")


def test_healthy_printer():
    status = parse_answers(HEALTHY)
    result = assess(status)
    assert result.state is DeviceState.ONLINE
    assert result.paper is SupplyLevel.FULL
    assert result.can_print


def test_paper_near_end_is_low_and_still_prints():
    status = parse_answers(bytes([0x12, 0x12, 0x12, 0x1E]))
    assert status.paper.near_end and not status.paper.end
    result = assess(status)
    assert result.paper is SupplyLevel.LOW and result.can_print
    assert result.state is DeviceState.ONLINE


def test_paper_out_is_a_user_error_staff_can_clear():
    # Epson with an empty roll: offline, "stopped by paper end", both sensors see no paper.
    result = assess(parse_answers(bytes([0x1A, 0x32, 0x12, 0x7E])))
    assert result.paper is SupplyLevel.OUT
    assert isinstance(result.failure, ReceiptPaperOut)
    assert result.failure.kind is ErrorKind.USER
    assert result.failure.action is OperatorAction.CLEAR
    assert result.failure.message_key == "device.receipt.paper_out"
    assert result.state is DeviceState.USER_ERROR


def test_paper_end_stop_alone_counts_as_out():
    result = assess(parse_answers(bytes([0x1A, 0x32, 0x12, 0x12])))
    assert result.paper is SupplyLevel.OUT and isinstance(result.failure, ReceiptPaperOut)


def test_cover_open():
    result = assess(parse_answers(bytes([0x1A, 0x16, 0x12, 0x12])))
    assert isinstance(result.failure, ReceiptCoverOpen)
    assert result.failure.action is OperatorAction.CLEAR
    assert result.failure.message_key == "device.receipt.cover_open"
    assert result.state is DeviceState.USER_ERROR


@pytest.mark.parametrize(
    ("error_byte", "code"),
    [(0x1A, "printer.cutter"), (0x32, "printer.unrecoverable"), (0x16, "printer.mechanical")],
)
def test_hardware_errors_need_an_engineer(error_byte, code):
    result = assess(parse_answers(bytes([0x1A, 0x52, error_byte, 0x12])))
    assert isinstance(result.failure, ReceiptPrinterHardwareError)
    assert result.failure.code == code
    assert result.failure.kind is ErrorKind.HARDWARE
    assert result.failure.action is OperatorAction.MAINTENANCE
    assert result.state is DeviceState.HARDWARE_ERROR


def test_cutter_error_outranks_an_open_cover_and_no_paper():
    result = assess(parse_answers(bytes([0x1A, 0x76, 0x1A, 0x7E])))
    assert result.failure.code == "printer.cutter"
    assert result.paper is SupplyLevel.OUT  # the supply is still reported


def test_hot_head_is_busy_not_a_failure():
    result = assess(parse_answers(bytes([0x1A, 0x52, 0x52, 0x12])))
    assert result.failure is None and result.state is DeviceState.BUSY


def test_offline_without_a_cause():
    result = assess(parse_answers(bytes([0x3A, 0x12, 0x12, 0x12])))
    assert isinstance(result.failure, ReceiptPrinterOffline)
    assert result.failure.code == "printer.offline"
    assert result.state is DeviceState.OFFLINE


def test_each_answer_kind():
    assert parse_answer(StatusQuery.PRINTER, 0x16).drawer_pin_high
    assert parse_answer(StatusQuery.PRINTER, 0x52).feed_button_pressed
    assert parse_answer(StatusQuery.OFFLINE_CAUSE, 0x1A).feeding_by_button
    assert parse_answer(4, 0x16).near_end  # one of two near-end sensors (Citizen)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x12\x12\x12", b"\x12" * 5, b"\x00\x12\x12\x12", b"\x12\x12\x12\xff", "1234"],
)
def test_junk_is_refused(data):
    with pytest.raises(StatusParseError):
        parse_answers(data)


def test_unknown_query_and_non_byte_are_refused():
    with pytest.raises(StatusParseError):
        parse_answer(5, 0x12)
    with pytest.raises(StatusParseError):
        parse_answer(1, 256)


@given(st.binary(max_size=12))
def test_any_bytes_parse_or_raise_the_typed_error(data):
    try:
        status = parse_answers(data)
    except StatusParseError:
        return
    assert len(data) == 4 and all(b & 0x93 == 0x12 for b in data)
    assess(status)  # every parsed status has a meaning


@given(st.lists(valid_byte, min_size=4, max_size=4))
def test_every_well_framed_answer_parses_and_is_assessed(values):
    result = assess(parse_answers(bytes(values)))
    assert result.paper in (SupplyLevel.FULL, SupplyLevel.LOW, SupplyLevel.OUT)
    if result.failure is None:
        assert result.state in (DeviceState.ONLINE, DeviceState.BUSY)
    else:
        assert result.failure.message_key.startswith("device.receipt.")
        assert result.state not in (DeviceState.ONLINE, DeviceState.BUSY)
    # paper out never lets a job through
    if values[3] & 0x60 or values[1] & 0x20:
        assert not result.can_print


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_single_answers_never_raise_anything_else(query, value):
    try:
        parse_answer(query, value)
    except StatusParseError:
        pass
