import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import DeviceFailure, ErrorKind, OperatorAction
from drivers.qr.payload import (
    BASE45_ALPHABET,
    BadCharset,
    Base45Error,
    Charset,
    CodeTooLong,
    EmptyCode,
    PayloadError,
    b45decode,
    b45encode,
    validate,
)

CODE = "SFM1" + "7Q2K9ZB4" * 5


@pytest.mark.parametrize("suffix", ["", "\r", "\n", "\r\n", "\t"])
def test_scanner_suffixes_are_stripped(suffix):
    assert validate(CODE + suffix) == CODE
    assert validate((CODE + suffix).encode()) == CODE
    assert validate(f"\x02{CODE}\x03{suffix}".encode()) == CODE


def test_too_long_is_typed_and_names_no_content():
    with pytest.raises(CodeTooLong) as caught:
        validate("A" * 1025, max_length=1024)
    error = caught.value
    assert (error.length, error.limit) == (1025, 1024)
    assert error.code == "qr.too_long" and error.message_key == "device.qr.too_long"
    assert error.kind is ErrorKind.USER and error.action is OperatorAction.NONE
    assert "AAAA" not in str(error)
    assert validate("A" * 1024, max_length=1024) == "A" * 1024


@pytest.mark.parametrize("bad", ["SFM1苏服码", "SFM1\x00ABC", "SFM1\x7f", "SFM1é"])
def test_non_printable_or_non_ascii_is_refused(bad):
    with pytest.raises(BadCharset) as caught:
        validate(bad)
    assert caught.value.position == 4
    assert caught.value.message_key == "device.qr.bad_charset"
    assert bad[4:] not in str(caught.value)


def test_non_ascii_bytes_give_their_position():
    with pytest.raises(BadCharset) as caught:
        validate(b"\x02ABC\xe8\x8b\x8f\r")
    assert caught.value.position == 3


def test_empty_and_bare_suffix_are_refused():
    for raw in ("", "\r\n", b"\r", b"\x02\x03"):
        with pytest.raises(EmptyCode):
            validate(raw)


def test_base45_charset():
    assert validate("AB $%*+-./:9", charset=Charset.BASE45) == "AB $%*+-./:9"
    with pytest.raises(BadCharset):
        validate("abc", charset=Charset.BASE45)


def test_base45_rfc9285_examples():
    assert b45encode(b"AB") == "BB8"
    assert b45encode(b"Hello!!") == "%69 VD92EX0"
    assert b45encode(b"base-45") == "UJCLQE7W581"
    assert b45decode("QED8WEX0") == b"ietf!"
    with pytest.raises(Base45Error):
        b45decode("GGW")  # 65535 < value: out of range
    with pytest.raises(Base45Error):
        b45decode("ABCD")  # a single trailing character


@given(st.binary(max_size=300))
def test_base45_round_trips(data):
    text = b45encode(data)
    assert set(text) <= set(BASE45_ALPHABET)
    assert b45decode(text) == data


@given(st.one_of(st.binary(max_size=2000), st.text(max_size=2000)),
       st.integers(16, 1500), st.sampled_from(list(Charset)))
@settings(max_examples=300)
def test_junk_gives_a_code_or_one_typed_error(raw, limit, charset):
    try:
        code = validate(raw, max_length=limit, charset=charset)
    except PayloadError as error:
        assert isinstance(error, DeviceFailure) and error.code.startswith("qr.")
        return
    assert 0 < len(code) <= limit
    assert code == code.strip("\r\n\t\x02\x03")
    assert all(0x20 <= ord(c) < 0x7F for c in code)


@given(st.text(alphabet=BASE45_ALPHABET, max_size=200))
def test_junk_base45_text_decodes_or_raises_base45_error(text):
    try:
        b45decode(text)
    except Base45Error:
        pass
