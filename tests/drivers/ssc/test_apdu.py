"""APDU builders, status words, record codecs and the card model: pure, no pcscd."""

from __future__ import annotations

import datetime as _dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import ErrorKind, OperatorAction
from drivers.sim.ssc_card import CITIZENS, EF05, EF06, Fault, SscCardModel, holder_records
from drivers.ssc import apdu, card
from drivers.ssc.apdu import (
    SscAccessDenied,
    SscCardInvalid,
    SscFailure,
    SscMalformedResponse,
    SscNotSscCard,
    SscStatusError,
)
from drivers.ssc.card import RecordScan, SscField

WANG = CITIZENS["wang"]


# -- commands -------------------------------------------------------------------------------
def test_select_ssse_is_the_gbk_name_real_readers_send():
    assert apdu.select_by_name().hex().upper() == "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"


def test_select_ef_and_read_record():
    assert apdu.select_ef(EF05).hex().upper() == "00A4020002EF05"
    assert apdu.read_record(7).hex().upper() == "00B2070400"
    assert apdu.read_record(1, 0x14).hex().upper() == "00B2010414"
    assert apdu.get_response(0x1E).hex().upper() == "00C000001E"
    with pytest.raises(ValueError):
        apdu.read_record(0)


# -- responses and status words ---------------------------------------------------------------
def test_parse_response():
    r = apdu.parse_response(bytes.fromhex("0A01319000"))
    assert (r.data, r.sw) == (b"\x0a\x01\x31", 0x9000)
    for junk in (b"", b"\x90", bytes.fromhex("0A0131"), b"\x00" * 259, bytes.fromhex("6000")):
        with pytest.raises(SscMalformedResponse):
            apdu.parse_response(junk)


@pytest.mark.parametrize(
    ("sw", "failure"),
    [
        (0x6A82, SscNotSscCard),
        (0x6D00, SscNotSscCard),
        (0x6E00, SscNotSscCard),
        (0x6982, SscAccessDenied),
        (0x6985, SscAccessDenied),
        (0x6700, SscStatusError),
        (0x6B00, SscStatusError),
        (0x6581, SscCardInvalid),
    ],
)
def test_select_status_words_map_to_typed_failures(sw, failure):
    with pytest.raises(failure) as caught:
        apdu.check_select(apdu.Response(b"", sw >> 8, sw & 0xFF), "select")
    assert f"{sw:04X}" in str(caught.value)


def test_record_status_words():
    def outcome(sw):
        return apdu.classify_record(apdu.Response(b"", sw >> 8, sw & 0xFF), "read")

    assert outcome(0x9000) == apdu.RecordOutcome.DATA
    assert outcome(0x6A83) == apdu.RecordOutcome.END
    assert outcome(0x6982) == apdu.RecordOutcome.DENIED
    assert outcome(0x6985) == apdu.RecordOutcome.DENIED
    with pytest.raises(SscStatusError):
        outcome(0x6700)


def test_failures_are_typed_for_ops():
    denied = SscAccessDenied("x", (SscField.NAME,))
    assert (denied.code, denied.kind, denied.action) == (
        "ssc.access_denied", ErrorKind.USER, OperatorAction.CONFIGURATION,
    )
    assert denied.message_key == "device.ssc.access_denied"
    assert SscNotSscCard("x").message_key == "device.ssc.not_ssc_card"
    assert SscMalformedResponse("x").message_key == "device.ssc.read_failed"
    assert SscCardInvalid("x").as_error().code == "ssc.card_invalid"


def transmit_to(model: SscCardModel):
    def transmit(command: bytes) -> bytes:
        answer = model.answer(command)
        assert isinstance(answer, bytes)
        return answer

    return transmit


def test_exchange_follows_61xx_with_get_response():
    model = SscCardModel(WANG)
    response = apdu.exchange(transmit_to(model), apdu.select_by_name())
    assert response.sw == 0x9000
    assert response.data[:1] == b"\x6f" and "sx1.sh.社会保障".encode("gbk") in response.data


def test_exchange_follows_6cxx_by_resending_with_le():
    model = SscCardModel(WANG, exact_le=True)
    transmit = transmit_to(model)
    apdu.exchange(transmit, apdu.select_by_name())
    apdu.check_select(apdu.exchange(transmit, apdu.select_ef(EF06)), "select")
    before = model.apdu_count
    response = apdu.exchange(transmit, apdu.read_record(1))
    assert model.apdu_count - before == 2  # 6C 14, then the read with Le = 14
    assert apdu.parse_record(response.data).value == WANG.social_security_number.encode()


def test_exchange_gives_up_on_endless_61xx():
    with pytest.raises(SscMalformedResponse):
        apdu.exchange(lambda command: b"\x61\x10", apdu.select_by_name())


def test_select_of_another_application_means_not_an_ssc_card():
    response = apdu.exchange(transmit_to(SscCardModel(WANG)), apdu.select_by_name("1PAY.SYS.DDF01"))
    with pytest.raises(SscNotSscCard):
        apdu.check_select(response, "select")


def test_model_faults():
    model = SscCardModel(WANG, faults={(EF06, 0x09): Fault.PROTECTED})
    transmit = transmit_to(model)
    apdu.exchange(transmit, apdu.select_by_name())
    assert model.answer(apdu.read_record(1)) == b"\x69\x86"  # no EF selected yet
    apdu.exchange(transmit, apdu.select_ef(EF06))
    assert model.answer(apdu.read_record(2)) == b"\x69\x82"
    assert model.answer(apdu.read_record(7)) == b"\x6a\x83"
    # READ RECORD by short file identifier (P2 = SFI << 3 | 4), as some readers send it.
    assert model.answer(bytes.fromhex("00B2072C00"))[2:-2] == WANG.card_number.encode()


# -- records and values ------------------------------------------------------------------------
def test_parse_record():
    assert apdu.parse_record(bytes.fromhex("0A0131")) == apdu.Record(0x0A, b"1")
    assert apdu.parse_record(bytes.fromhex("0A0131000000FFFF")).value == b"1"  # padding
    assert apdu.parse_record(bytes.fromhex("0981021234")).value == b"\x12\x34"  # long form
    for junk in ("0A", "0A0231", "0A013199", "FF0131", "0A8231"):
        with pytest.raises(SscMalformedResponse):
            apdu.parse_record(bytes.fromhex(junk))
    assert "31" not in repr(apdu.parse_record(bytes.fromhex("0A0131")))  # value never shown


def test_value_codecs():
    name = "阿依古丽·买买提".encode("gbk").ljust(30, b"\x00")
    assert apdu.gbk_text(name, 9) == "阿依古丽·买买提"
    assert apdu.gbk_text("王晓明".encode("gbk") + b"\xa1\xa1  ", 9) == "王晓明"
    assert apdu.bcd_digits(bytes.fromhex("320211"), 0x0C) == "320211"
    assert apdu.bcd_digits(bytes.fromhex("01FF"), 0x0B) == "01"
    assert apdu.date_value(bytes.fromhex("19850615"), 0x0D) == _dt.date(1985, 6, 15)
    assert apdu.date_value(b"19850615", 0x0D) == _dt.date(1985, 6, 15)
    assert apdu.date_value(b"\x00" * 4, 0x06) is None
    assert apdu.ascii_text(b"3.00", 3) == "3.00"
    assert apdu.hex_or_text(b"\x01\x02", 4) == "0102"
    for decode, junk in [
        (apdu.gbk_text, b"\x81"),
        (apdu.bcd_digits, b"\x3a"),
        (apdu.date_value, bytes.fromhex("19851315")),
        (apdu.date_value, b"123"),
        (apdu.ascii_text, b"\x80A"),
    ]:
        with pytest.raises(SscMalformedResponse):
            decode(junk, 1)


def scans(holder=WANG, *, denied=(), drop=()):
    files = holder_records(holder)
    result = []
    for fid in (EF05, EF06):
        scan = RecordScan()
        for tag, value in files[fid]:
            if tag in denied:
                scan.denied.add(tag)
            elif tag not in drop:
                scan.records[tag] = value
        result.append(scan)
    return result


def test_build_decodes_every_field():
    data = card.build(*scans())
    assert data.social_security_number == WANG.social_security_number
    assert data.name == WANG.name
    assert (data.sex, data.nation, data.birth_place) == ("1", "01", "320211")
    assert data.birth_date == WANG.birth_date
    assert data.card_number == WANG.card_number
    assert data.region_code == "320200" and data.generation == 3
    assert data.complete


def test_build_reports_protected_and_absent_fields_without_guessing():
    data = card.build(*scans(denied={0x0C, 0x0D}, drop={0x02}))
    assert data.unreadable == {SscField.BIRTH_PLACE, SscField.BIRTH_DATE}
    assert data.absent == {SscField.CARD_TYPE}
    assert data.birth_place is None and data.birth_date is None and data.card_type is None
    data.require({SscField.NAME, SscField.SOCIAL_SECURITY_NUMBER})
    with pytest.raises(SscAccessDenied):
        data.require({SscField.BIRTH_DATE})
    with pytest.raises(SscCardInvalid):
        data.require({SscField.CARD_TYPE})


def test_build_rejects_a_wrong_check_digit_without_showing_the_number():
    ef05, ef06 = scans()
    number = WANG.social_security_number
    wrong = number[:17] + ("0" if number[17] != "0" else "1")
    ef06.records[0x08] = wrong.encode()
    with pytest.raises(SscCardInvalid) as caught:
        card.build(ef05, ef06)
    assert wrong not in str(caught.value) and "check" in str(caught.value)


def test_repr_masks_personal_data():
    data = card.build(*scans())
    text = repr(data) + str(data)
    for secret in (WANG.name, WANG.social_security_number, WANG.card_number, "19850615",
                   "1985-06-15", "320211"):
        assert secret not in text
    assert "spec_version='3.00'" in text


def test_a_refused_record_takes_the_tag_after_the_last_one_seen():
    assert card.tag_at(card.EF06_LAYOUT, None) == 0x08
    assert card.tag_at(card.EF06_LAYOUT, 0x0B) == 0x0C
    assert card.tag_at(card.EF06_LAYOUT, 0x0D) is None
    assert card.tag_at(card.EF06_LAYOUT, 0x4E) is None  # unknown tag: no inference


# -- junk: parsers only ever raise SscFailure --------------------------------------------------
junk = st.binary(max_size=300)


@settings(max_examples=300, deadline=None)
@given(junk)
def test_parse_response_junk(raw):
    try:
        apdu.parse_response(raw)
    except SscFailure:
        pass


@settings(max_examples=300, deadline=None)
@given(junk)
def test_parse_record_junk(raw):
    try:
        apdu.parse_record(raw)
    except SscFailure:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.sampled_from(
    [apdu.ascii_text, apdu.gbk_text, apdu.bcd_digits, apdu.date_value, apdu.hex_or_text]
    + [e.decode for e in {**card.EF05_LAYOUT, **card.EF06_LAYOUT}.values()]
))
def test_value_decoders_junk(value, decode):
    try:
        decode(value, 0x09)
    except SscFailure:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(junk, min_size=1, max_size=10), st.sampled_from(
    [apdu.select_by_name(), apdu.select_ef(EF05), apdu.read_record(3), apdu.get_response(0)]
))
def test_exchange_junk_answers(answers, command):
    replies = itertools.cycle(answers)
    try:
        response = apdu.exchange(lambda _: next(replies), command)
        apdu.classify_record(response, "read")
        apdu.check_select(response, "select")
    except SscFailure:
        pass


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.integers(1, 13), st.binary(max_size=40)),
       st.sets(st.integers(1, 13)))
def test_build_junk_records(records, denied):
    ef05 = RecordScan({t: v for t, v in records.items() if t <= 7}, {t for t in denied if t <= 7})
    ef06 = RecordScan({t: v for t, v in records.items() if t > 7}, {t for t in denied if t > 7})
    try:
        data = card.build(ef05, ef06)
        repr(data)
    except SscFailure:
        pass
