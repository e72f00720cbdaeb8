import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.a4 import ipp
from drivers.a4.ipp import Attribute, Group, GroupTag, Message, Operation, Value, ValueTag


def test_print_job_request_bytes_follow_rfc_8010():
    message = ipp.request(
        Operation.PRINT_JOB,
        7,
        "ipp://localhost:8631/ipp/print",
        user_name="kiosk",
        job_name="CASE-1",
        document_format="application/pdf",
        data=b"%PDF-1.4 body",
    )
    raw = ipp.encode(message)
    # version 1.1, operation 0x0002, request id 7, operation-attributes-tag
    assert raw[:9] == bytes([1, 1, 0, 2, 0, 0, 0, 7, 0x01])
    # the first attribute is attributes-charset = utf-8, tag 0x47
    name = b"attributes-charset"
    assert raw[9:12 + len(name)] == bytes([0x47]) + struct.pack(">H", len(name)) + name
    assert raw[12 + len(name) : 19 + len(name)] == struct.pack(">H", 5) + b"utf-8"
    assert raw.endswith(b"\x03%PDF-1.4 body")
    decoded = ipp.decode(raw)
    names = [a.name for a in decoded.operation.attributes]
    assert names == [
        "attributes-charset",
        "attributes-natural-language",
        "printer-uri",
        "requesting-user-name",
        "job-name",
        "document-format",
    ]
    assert decoded.operation["requesting-user-name"].tag == ValueTag.NAME
    assert decoded.operation["document-format"].tag == ValueTag.MIME_MEDIA_TYPE
    assert decoded.data == b"%PDF-1.4 body"


def test_response_with_every_common_type_round_trips():
    collection = {
        "media-size": Attribute(
            "media-size",
            (
                Value(
                    ValueTag.BEG_COLLECTION,
                    {
                        "x-dimension": Attribute.of("x-dimension", ValueTag.INTEGER, 21000),
                        "y-dimension": Attribute.of("y-dimension", ValueTag.INTEGER, 29700),
                    },
                ),
            ),
        ),
        "media-source": Attribute.of("media-source", ValueTag.KEYWORD, "main"),
    }
    printer = (
        Group(GroupTag.PRINTER)
        .add("printer-state", ValueTag.ENUM, 3)
        .add("printer-state-reasons", ValueTag.KEYWORD, "media-empty-report", "toner-low-report")
        .add("printer-is-accepting-jobs", ValueTag.BOOLEAN, True)
        .add("printer-name", ValueTag.NAME, "A4")
        .add("printer-info", ValueTag.TEXT_WITH_LANGUAGE, ipp.StringWithLanguage("zh-cn", "打印"))
        .add("printer-uri-supported", ValueTag.URI, "ipp://localhost/ipp/print")
        .add("printer-current-time", ValueTag.DATE_TIME, bytes(range(11)))
        .add("copies-supported", ValueTag.RANGE_OF_INTEGER, (1, 999))
        .add("printer-resolution-default", ValueTag.RESOLUTION, (600, 600, 3))
        .add("printer-supply", ValueTag.OCTET_STRING, b"index=1;level=5;")
        .add("printer-geo-location", ValueTag.UNKNOWN, None)
        .add("media-col-ready", ValueTag.BEG_COLLECTION, collection, collection)
    )
    message = Message(ipp.Status.OK, 3, [Group(GroupTag.OPERATION), printer])
    message.groups[0].add("attributes-charset", ValueTag.CHARSET, "utf-8")
    raw = ipp.encode(message)
    decoded = ipp.decode(raw)
    assert decoded == message
    assert ipp.encode(decoded) == raw
    group = decoded.group(GroupTag.PRINTER)
    assert group.get("printer-state") == ipp.PrinterState.IDLE
    assert group["printer-state-reasons"].all == ["media-empty-report", "toner-low-report"]
    assert group.get("printer-is-accepting-jobs") is True
    assert group.get("printer-current-time") == bytes(range(11))  # dateTime stays raw
    assert group.get("printer-geo-location", "absent") == "absent"  # out-of-band
    media = group["media-col-ready"].all[1]
    assert media["media-size"].value["x-dimension"].value == 21000


@pytest.mark.parametrize(
    "status, error",
    [
        (0x0507, ipp.IppServerBusy),
        (0x0506, ipp.IppServerError),
        (0x0406, ipp.IppClientError),
        (0x040A, ipp.IppClientError),
    ],
)
def test_error_status_raises_its_typed_error(status, error):
    message = Message(status, 1, [Group(GroupTag.OPERATION)])
    message.groups[0].add("status-message", ValueTag.TEXT, "Currently printing another job.")
    with pytest.raises(error) as caught:
        ipp.decode(ipp.encode(message)).raise_for_status()
    assert caught.value.status == status
    assert "Currently printing" in str(caught.value)
    assert ipp.status_name(0x0507) == "server-error-busy"


def test_successful_statuses_do_not_raise():
    for status in (0x0000, 0x0001, 0x0002):
        Message(status, 1).raise_for_status()


@pytest.mark.parametrize(
    "raw, why",
    [
        (b"", "truncated"),
        (b"\x01\x01\x00\x00\x00\x00\x00\x01", "truncated"),  # no end tag
        (b"\x01\x01\x00\x00\x00\x00\x00\x01\x21\x00\x01a\x00\x04\x00\x00\x00\x01\x03", "before"),
        (b"\x01\x01\x00\x00\x00\x00\x00\x01\x04\x21\x00\x01a\x00\x02\x00\x01\x03", "integer"),
        (b"\x01\x01\x00\x00\x00\x00\x00\x01\x04\x44\x00\x00\x00\x01x\x03", "additional"),
        (b"\x01\x01\x00\x00\x00\x00\x00\x01\x04\x44\x00\x01a\x00\x09ab\x03", "truncated"),
        (b"\x09\x01\x00\x00\x00\x00\x00\x01\x03", "version"),
        (b"\x01\x01\x00\x00\x00\x00\x00\x01\x04\x34\x00\x01c\x00\x00\x03", "collection"),
    ],
)
def test_malformed_messages_raise_the_decode_error(raw, why):
    with pytest.raises(ipp.IppDecodeError, match=why):
        ipp.decode(raw)


def test_deeply_nested_collections_are_refused_not_recursed_forever():
    nested = b"\x34\x00\x00\x00\x00\x4a\x00\x00\x00\x01m" * 200
    raw = b"\x01\x01\x00\x00\x00\x00\x00\x01\x04\x34\x00\x01c\x00\x00\x4a\x00\x00\x00\x01m" + nested
    with pytest.raises(ipp.IppDecodeError, match="nested"):
        ipp.decode(raw)


def test_values_that_cannot_be_encoded_raise_the_encode_error():
    for tag, value in [
        (ValueTag.INTEGER, 2**31),
        (ValueTag.INTEGER, "1"),
        (ValueTag.BOOLEAN, 1),
        (ValueTag.KEYWORD, "x" * 70_000),
        (ValueTag.KEYWORD, "\ud800"),
        (ValueTag.OCTET_STRING, "text"),
    ]:
        message = Message(0, 1, [Group(GroupTag.OPERATION).add("a", tag, value)])
        with pytest.raises(ipp.IppEncodeError):
            ipp.encode(message)


# -- property tests ---------------------------------------------------------------------------
_text = st.text(max_size=40)
_simple_values = st.one_of(
    st.tuples(st.sampled_from([ValueTag.INTEGER, ValueTag.ENUM]), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(ValueTag.BOOLEAN), st.booleans()),
    st.tuples(
        st.sampled_from([ValueTag.TEXT, ValueTag.NAME, ValueTag.KEYWORD, ValueTag.URI,
                         ValueTag.CHARSET, ValueTag.MIME_MEDIA_TYPE]),
        _text,
    ),
    st.tuples(st.just(ValueTag.OCTET_STRING), st.binary(max_size=40)),
    st.tuples(st.just(ValueTag.DATE_TIME), st.binary(min_size=11, max_size=11)),
    st.tuples(st.just(ValueTag.RANGE_OF_INTEGER),
              st.tuples(st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1))),
    st.tuples(st.sampled_from([ValueTag.NO_VALUE, ValueTag.UNKNOWN]), st.none()),
    st.tuples(st.just(ValueTag.NAME_WITH_LANGUAGE),
              st.builds(ipp.StringWithLanguage, st.sampled_from(["en", "zh-cn"]), _text)),
)
_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)


def _values(depth: int):
    if depth == 0:
        return _simple_values
    collection = st.dictionaries(_names, st.lists(_values(depth - 1), min_size=1, max_size=3),
                                 max_size=3).map(
        lambda d: {k: Attribute(k, tuple(Value(t, v) for t, v in vs)) for k, vs in d.items()}
    )
    return st.one_of(_simple_values, st.tuples(st.just(ValueTag.BEG_COLLECTION), collection))


_attributes = st.builds(
    lambda name, values: Attribute(name, tuple(Value(t, v) for t, v in values)),
    _names,
    st.lists(_values(2), min_size=1, max_size=4),
)
_messages = st.builds(
    Message,
    st.integers(0, 0xFFFF),
    st.integers(-(2**31), 2**31 - 1),
    st.lists(
        st.builds(
            lambda tag, attrs: Group(tag, attrs),
            st.sampled_from([GroupTag.OPERATION, GroupTag.JOB, GroupTag.PRINTER,
                             GroupTag.UNSUPPORTED]),
            st.lists(_attributes, max_size=4),
        ),
        max_size=4,
    ),
    st.binary(max_size=64),
)


def _encodable(message: Message) -> bool:
    try:
        ipp.encode(message)
    except ipp.IppEncodeError:
        return False  # lone surrogates in generated text cannot be UTF-8
    return True


@settings(max_examples=300, deadline=None)
@given(_messages.filter(_encodable))
def test_encode_then_decode_is_identity(message):
    assert ipp.decode(ipp.encode(message)) == message


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_junk_raises_only_the_decode_error(junk):
    try:
        ipp.decode(junk)
    except ipp.IppDecodeError:
        pass


@settings(max_examples=300, deadline=None)
@given(_messages.filter(_encodable), st.data())
def test_truncated_or_corrupted_messages_raise_only_the_decode_error(message, data):
    raw = ipp.encode(message)
    cut = data.draw(st.integers(0, len(raw)))
    try:
        ipp.decode(raw[:cut])
    except ipp.IppDecodeError:
        pass
    position = data.draw(st.integers(0, max(len(raw) - 1, 0)))
    flipped = bytearray(raw)
    if flipped:
        flipped[position] ^= data.draw(st.integers(1, 255))
    try:
        ipp.decode(bytes(flipped))
    except ipp.IppDecodeError:
        pass
