"""IPP/1.1 messages (RFC 8010 encoding, RFC 8011 semantics): build requests, parse responses.

Pure bytes in, values out; no I/O. A message is a version, an operation id (request) or a
status code (response), a request id, attribute groups and the document data after the
end-of-attributes tag. Values keep their value tag, so a decoded message encodes back to the
same bytes, and the driver can read `group["printer-state-reasons"].values` as plain Python
(int, bool, str, bytes, tuples, collections as dicts).

Anything that is not a well-formed message raises `IppDecodeError` and nothing else: a
printer's HTTP body comes from outside the kiosk (STYLE: parsers raise one typed error).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

IPP_VERSION = (1, 1)
MIME_TYPE = "application/ipp"
_MAX_SHORT = 0xFFFF  # name and value lengths are two bytes
_MAX_COLLECTION_DEPTH = 32  # real printers nest media-col > media-size; junk may nest forever


class Operation(enum.IntEnum):
    PRINT_JOB = 0x0002
    VALIDATE_JOB = 0x0004
    CREATE_JOB = 0x0005
    SEND_DOCUMENT = 0x0006
    CANCEL_JOB = 0x0008
    GET_JOB_ATTRIBUTES = 0x0009
    GET_JOBS = 0x000A
    GET_PRINTER_ATTRIBUTES = 0x000B


class GroupTag(enum.IntEnum):
    """Delimiter tags (0x00–0x0F) that open an attribute group or end the attributes."""

    OPERATION = 0x01
    JOB = 0x02
    END = 0x03
    PRINTER = 0x04
    UNSUPPORTED = 0x05
    SUBSCRIPTION = 0x06
    EVENT_NOTIFICATION = 0x07
    RESOURCE = 0x08
    DOCUMENT = 0x09
    SYSTEM = 0x0A


class ValueTag(enum.IntEnum):
    # Out-of-band values (0x10–0x1F): no value, only the fact.
    UNSUPPORTED = 0x10
    DEFAULT = 0x11
    UNKNOWN = 0x12
    NO_VALUE = 0x13
    NOT_SETTABLE = 0x15
    DELETE_ATTRIBUTE = 0x16
    ADMIN_DEFINE = 0x17
    # Integer types.
    INTEGER = 0x21
    BOOLEAN = 0x22
    ENUM = 0x23
    # Octet-string types.
    OCTET_STRING = 0x30
    DATE_TIME = 0x31
    RESOLUTION = 0x32
    RANGE_OF_INTEGER = 0x33
    BEG_COLLECTION = 0x34
    TEXT_WITH_LANGUAGE = 0x35
    NAME_WITH_LANGUAGE = 0x36
    END_COLLECTION = 0x37
    # Character-string types.
    TEXT = 0x41
    NAME = 0x42
    KEYWORD = 0x44
    URI = 0x45
    URI_SCHEME = 0x46
    CHARSET = 0x47
    NATURAL_LANGUAGE = 0x48
    MIME_MEDIA_TYPE = 0x49
    MEMBER_ATTR_NAME = 0x4A
    EXTENSION = 0x7F


class Status(enum.IntEnum):
    OK = 0x0000
    OK_IGNORED_OR_SUBSTITUTED = 0x0001
    OK_CONFLICTING = 0x0002
    CLIENT_ERROR_BAD_REQUEST = 0x0400
    CLIENT_ERROR_FORBIDDEN = 0x0401
    CLIENT_ERROR_NOT_AUTHENTICATED = 0x0402
    CLIENT_ERROR_NOT_AUTHORIZED = 0x0403
    CLIENT_ERROR_NOT_POSSIBLE = 0x0404
    CLIENT_ERROR_TIMEOUT = 0x0405
    CLIENT_ERROR_NOT_FOUND = 0x0406
    CLIENT_ERROR_GONE = 0x0407
    CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE = 0x0408
    CLIENT_ERROR_REQUEST_VALUE_TOO_LONG = 0x0409
    CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED = 0x040A
    CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED = 0x040B
    CLIENT_ERROR_URI_SCHEME_NOT_SUPPORTED = 0x040C
    CLIENT_ERROR_CHARSET_NOT_SUPPORTED = 0x040D
    CLIENT_ERROR_CONFLICTING_ATTRIBUTES = 0x040E
    CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED = 0x040F
    CLIENT_ERROR_COMPRESSION_ERROR = 0x0410
    CLIENT_ERROR_DOCUMENT_FORMAT_ERROR = 0x0411
    CLIENT_ERROR_DOCUMENT_ACCESS_ERROR = 0x0412
    SERVER_ERROR_INTERNAL_ERROR = 0x0500
    SERVER_ERROR_OPERATION_NOT_SUPPORTED = 0x0501
    SERVER_ERROR_SERVICE_UNAVAILABLE = 0x0502
    SERVER_ERROR_VERSION_NOT_SUPPORTED = 0x0503
    SERVER_ERROR_DEVICE_ERROR = 0x0504
    SERVER_ERROR_TEMPORARY_ERROR = 0x0505
    SERVER_ERROR_NOT_ACCEPTING_JOBS = 0x0506
    SERVER_ERROR_BUSY = 0x0507
    SERVER_ERROR_JOB_CANCELED = 0x0508
    SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED = 0x0509


class JobState(enum.IntEnum):
    PENDING = 3
    PENDING_HELD = 4
    PROCESSING = 5
    PROCESSING_STOPPED = 6
    CANCELED = 7
    ABORTED = 8
    COMPLETED = 9

    @property
    def terminal(self) -> bool:
        return self >= JobState.CANCELED


class PrinterState(enum.IntEnum):
    IDLE = 3
    PROCESSING = 4
    STOPPED = 5


def status_name(code: int) -> str:
    """`0x0507` → `server-error-busy`, the RFC 8011 keyword; unknown codes as hex."""
    try:
        return Status(code).name.lower().replace("_", "-")
    except ValueError:
        return f"status-0x{code:04x}"


# -- errors ---------------------------------------------------------------------------------
class IppError(Exception):
    """Base of everything this module raises."""


class IppDecodeError(IppError):
    """The bytes are not a well-formed IPP message (truncated, junk, impossible lengths)."""


class IppEncodeError(IppError, ValueError):
    """A value cannot be encoded (too long, wrong Python type for its tag)."""


class IppStatusError(IppError):
    """The printer answered with an error status. Subclassed by class of status."""

    def __init__(self, status: int, message: str = "") -> None:
        self.status = status
        self.status_message = message
        text = status_name(status) + (f": {message}" if message else "")
        super().__init__(text)


class IppClientError(IppStatusError):
    """0x04xx: the printer refused the request as sent (format, attributes, job gone)."""


class IppServerError(IppStatusError):
    """0x05xx: the printer cannot do it now or at all."""


class IppServerBusy(IppServerError):
    """0x0507 server-error-busy: try again later (ippeveprinter prints one job at a time)."""


# -- values ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class StringWithLanguage:
    """textWithLanguage / nameWithLanguage."""

    language: str
    text: str


@dataclass(frozen=True)
class Value:
    """One value with its value tag. Python types by tag: integer/enum → int, boolean → bool,
    rangeOfInteger → (lower, upper), resolution → (x, y, units), dateTime/octetString/unknown
    tags → bytes, text/name/keyword/uri/... → str, *WithLanguage → StringWithLanguage,
    collection → dict[str, Attribute], out-of-band → None."""

    tag: int
    value: Any


@dataclass(frozen=True)
class Attribute:
    name: str
    values: tuple[Value, ...]

    @classmethod
    def of(cls, name: str, tag: int, *values: Any) -> Attribute:
        """`Attribute.of("requested-attributes", ValueTag.KEYWORD, "printer-state", ...)`."""
        if not values:
            raise IppEncodeError(f"{name}: an attribute needs at least one value")
        return cls(name, tuple(Value(tag, v) for v in values))

    @property
    def tag(self) -> int:
        return self.values[0].tag

    @property
    def value(self) -> Any:
        """The first value (most attributes have exactly one)."""
        return self.values[0].value

    @property
    def all(self) -> list[Any]:
        return [v.value for v in self.values]


@dataclass
class Group:
    tag: int
    attributes: list[Attribute] = field(default_factory=list)

    def __getitem__(self, name: str) -> Attribute:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return any(a.name == name for a in self.attributes)

    def get(self, name: str, default: Any = None) -> Any:
        """The first value of `name`, or `default` when absent or out-of-band."""
        for attribute in self.attributes:
            if attribute.name == name:
                value = attribute.value
                return default if value is None else value
        return default

    def add(self, name: str, tag: int, *values: Any) -> Group:
        self.attributes.append(Attribute.of(name, tag, *values))
        return self


@dataclass
class Message:
    """A request (`code` = operation id) or a response (`code` = status code)."""

    code: int
    request_id: int
    groups: list[Group] = field(default_factory=list)
    data: bytes = b""
    version: tuple[int, int] = IPP_VERSION

    @property
    def status(self) -> int:
        return self.code

    def group(self, tag: int) -> Group | None:
        """The first group with this tag (responses carry one operation group and at most
        one printer or job group for the operations this driver uses)."""
        for group in self.groups:
            if group.tag == tag:
                return group
        return None

    def groups_of(self, tag: int) -> Iterator[Group]:
        return (g for g in self.groups if g.tag == tag)

    @property
    def operation(self) -> Group:
        return self.group(GroupTag.OPERATION) or Group(GroupTag.OPERATION)

    @property
    def status_message(self) -> str:
        message = self.operation.get("status-message", "")
        return message.text if isinstance(message, StringWithLanguage) else str(message)

    def raise_for_status(self) -> Message:
        """Return self for successful-ok*, raise the typed `IppStatusError` otherwise."""
        code = self.code
        if code < 0x0100:
            return self
        cls: type[IppStatusError]
        if code == Status.SERVER_ERROR_BUSY:
            cls = IppServerBusy
        elif 0x0500 <= code < 0x0600:
            cls = IppServerError
        elif 0x0400 <= code < 0x0500:
            cls = IppClientError
        else:
            cls = IppStatusError  # informational/redirection: not expected from a printer
        raise cls(code, self.status_message)


# -- requests -------------------------------------------------------------------------------
def request(
    operation: int,
    request_id: int,
    printer_uri: str,
    *,
    user_name: str = "kiosk",
    job_name: str | None = None,
    document_format: str | None = None,
    job_id: int | None = None,
    requested_attributes: Sequence[str] = (),
    job_attributes: Iterable[Attribute] = (),
    data: bytes = b"",
    language: str = "en",
) -> Message:
    """A request with the operation attributes in the order RFC 8011 §4.1.4 requires:
    attributes-charset, attributes-natural-language, the target, then the rest."""
    op = Group(GroupTag.OPERATION)
    op.add("attributes-charset", ValueTag.CHARSET, "utf-8")
    op.add("attributes-natural-language", ValueTag.NATURAL_LANGUAGE, language)
    op.add("printer-uri", ValueTag.URI, printer_uri)
    if job_id is not None:
        op.add("job-id", ValueTag.INTEGER, job_id)
    op.add("requesting-user-name", ValueTag.NAME, user_name)
    if job_name is not None:
        op.add("job-name", ValueTag.NAME, job_name)
    if document_format is not None:
        op.add("document-format", ValueTag.MIME_MEDIA_TYPE, document_format)
    if requested_attributes:
        op.add("requested-attributes", ValueTag.KEYWORD, *requested_attributes)
    groups = [op]
    job_group = list(job_attributes)
    if job_group:
        groups.append(Group(GroupTag.JOB, job_group))
    return Message(int(operation), request_id, groups, data)


# -- encoding -------------------------------------------------------------------------------
def _short(n: int, what: str) -> bytes:
    if not 0 <= n <= _MAX_SHORT:
        raise IppEncodeError(f"{what} is {n} bytes; IPP allows at most {_MAX_SHORT}")
    return struct.pack(">H", n)


def _text(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise IppEncodeError(f"{what}: expected str, got {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise IppEncodeError(f"{what}: not encodable as UTF-8: {exc}") from None


def _encode_value(tag: int, value: Any, name: str) -> bytes:
    """The value field (without its length) of one value."""
    if 0x10 <= tag <= 0x1F:
        return b""
    if tag in (ValueTag.INTEGER, ValueTag.ENUM):
        if isinstance(value, bool) or not isinstance(value, int):
            raise IppEncodeError(f"{name}: integer expected, got {value!r}")
        if not -(2**31) <= value < 2**31:
            raise IppEncodeError(f"{name}: {value} does not fit a signed 32-bit integer")
        return struct.pack(">i", value)
    if tag == ValueTag.BOOLEAN:
        if not isinstance(value, bool):
            raise IppEncodeError(f"{name}: bool expected, got {value!r}")
        return b"\x01" if value else b"\x00"
    if tag == ValueTag.RANGE_OF_INTEGER:
        try:
            return struct.pack(">ii", *value)
        except (struct.error, TypeError) as exc:
            raise IppEncodeError(f"{name}: (lower, upper) expected: {exc}") from None
    if tag == ValueTag.RESOLUTION:
        try:
            return struct.pack(">iib", *value)
        except (struct.error, TypeError) as exc:
            raise IppEncodeError(f"{name}: (x, y, units) expected: {exc}") from None
    if tag in (ValueTag.TEXT_WITH_LANGUAGE, ValueTag.NAME_WITH_LANGUAGE):
        if not isinstance(value, StringWithLanguage):
            raise IppEncodeError(f"{name}: StringWithLanguage expected, got {value!r}")
        lang, text = _text(value.language, name), _text(value.text, name)
        return _short(len(lang), f"{name} language") + lang + _short(len(text), name) + text
    if 0x40 <= tag <= 0x5F:
        return _text(value, name)
    if isinstance(value, (bytes, bytearray)):  # octetString, dateTime, unknown tags
        return bytes(value)
    raise IppEncodeError(f"{name}: bytes expected for value tag 0x{tag:02x}, got {value!r}")


def _encode_one(out: bytearray, tag: int, name: str, value: Any) -> None:
    raw_name = _text(name, "attribute name")
    out.append(tag)
    out += _short(len(raw_name), "attribute name") + raw_name
    if tag == ValueTag.BEG_COLLECTION:
        if not isinstance(value, Mapping):
            raise IppEncodeError(f"{name}: a collection is a mapping of member attributes")
        out += b"\x00\x00"
        for member_name, member in value.items():
            if not isinstance(member, Attribute) or not member.values:
                raise IppEncodeError(f"{name}.{member_name}: members are Attributes")
            member_raw = _text(member_name, "member name")
            out.append(ValueTag.MEMBER_ATTR_NAME)
            out += b"\x00\x00" + _short(len(member_raw), "member name") + member_raw
            for member_value in member.values:
                _encode_one(out, member_value.tag, "", member_value.value)
        out.append(ValueTag.END_COLLECTION)
        out += b"\x00\x00\x00\x00"
        return
    raw = _encode_value(tag, value, name or "value")
    out += _short(len(raw), f"{name or 'value'} value") + raw


def encode(message: Message) -> bytes:
    out = bytearray(struct.pack(">BBHi", *message.version, message.code, message.request_id))
    for group in message.groups:
        if not 0x01 <= group.tag <= 0x0F or group.tag == GroupTag.END:
            raise IppEncodeError(f"0x{group.tag:02x} is not a group tag")
        out.append(group.tag)
        for attribute in group.attributes:
            if not attribute.name:
                raise IppEncodeError("an attribute needs a name")
            for i, value in enumerate(attribute.values):
                if not 0x10 <= value.tag <= 0x7F or value.tag in (
                    ValueTag.END_COLLECTION,
                    ValueTag.MEMBER_ATTR_NAME,
                ):
                    raise IppEncodeError(f"{attribute.name}: 0x{value.tag:02x} is not a value tag")
                # Additional values of a 1setOf repeat the tag with an empty name.
                _encode_one(out, value.tag, attribute.name if i == 0 else "", value.value)
    out.append(GroupTag.END)
    return bytes(out) + message.data


# -- decoding -------------------------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise IppDecodeError(f"truncated: {what} needs {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self, what: str) -> int:
        return self.take(1, what)[0]

    def short(self, what: str) -> int:
        return struct.unpack(">H", self.take(2, what))[0]


def _decode_str(raw: bytes) -> str:
    # Printers in the field send odd bytes in text; a replacement character beats a failure.
    return raw.decode("utf-8", errors="replace")


def _decode_value(tag: int, raw: bytes, name: str) -> Any:
    if 0x10 <= tag <= 0x1F:
        return None
    if tag in (ValueTag.INTEGER, ValueTag.ENUM):
        if len(raw) != 4:
            raise IppDecodeError(f"{name}: integer of {len(raw)} bytes")
        return struct.unpack(">i", raw)[0]
    if tag == ValueTag.BOOLEAN:
        if len(raw) != 1:
            raise IppDecodeError(f"{name}: boolean of {len(raw)} bytes")
        return raw != b"\x00"
    if tag == ValueTag.DATE_TIME:
        if len(raw) != 11:
            raise IppDecodeError(f"{name}: dateTime of {len(raw)} bytes")
        return raw
    if tag == ValueTag.RANGE_OF_INTEGER:
        if len(raw) != 8:
            raise IppDecodeError(f"{name}: rangeOfInteger of {len(raw)} bytes")
        return struct.unpack(">ii", raw)
    if tag == ValueTag.RESOLUTION:
        if len(raw) != 9:
            raise IppDecodeError(f"{name}: resolution of {len(raw)} bytes")
        return struct.unpack(">iib", raw)
    if tag in (ValueTag.TEXT_WITH_LANGUAGE, ValueTag.NAME_WITH_LANGUAGE):
        inner = _Reader(raw)
        language = _decode_str(inner.take(inner.short(name), name))
        text = _decode_str(inner.take(inner.short(name), name))
        if inner.pos != len(raw):
            raise IppDecodeError(f"{name}: trailing bytes in a string with language")
        return StringWithLanguage(language, text)
    if 0x40 <= tag <= 0x5F:
        return _decode_str(raw)
    return raw  # octetString and tags this module does not know: keep the bytes


def _decode_collection(reader: _Reader, name: str, depth: int) -> dict[str, Attribute]:
    if depth > _MAX_COLLECTION_DEPTH:
        raise IppDecodeError(f"{name}: collections nested deeper than {_MAX_COLLECTION_DEPTH}")
    members: dict[str, list[Value]] = {}
    current: list[Value] | None = None
    while True:
        tag = reader.byte(f"{name}: member tag")
        if tag < 0x10:
            raise IppDecodeError(f"{name}: collection not closed before a group tag")
        reader.take(reader.short("member name length"), "member name")  # always empty
        length = reader.short("member value length")
        if tag == ValueTag.END_COLLECTION:
            reader.take(length, "end of collection")
            return {k: Attribute(k, tuple(v)) for k, v in members.items() if v}
        if tag == ValueTag.MEMBER_ATTR_NAME:
            member = _decode_str(reader.take(length, "member name"))
            if not member:
                raise IppDecodeError(f"{name}: empty member name")
            current = members.setdefault(member, [])
            continue
        if current is None:
            raise IppDecodeError(f"{name}: member value before a member name")
        if tag == ValueTag.BEG_COLLECTION:
            reader.take(length, "collection value")
            current.append(Value(tag, _decode_collection(reader, name, depth + 1)))
        else:
            current.append(Value(tag, _decode_value(tag, reader.take(length, name), name)))


def decode(data: bytes) -> Message:
    """Parse one IPP message. Raises `IppDecodeError` (only) when it is malformed."""
    try:
        return _decode(bytes(data))
    except IppDecodeError:
        raise
    except (struct.error, ValueError, TypeError, IndexError, RecursionError) as exc:
        # Belt and braces: whatever slipped past the checks above is still a decode error.
        raise IppDecodeError(f"malformed IPP message: {exc}") from None


def _decode(data: bytes) -> Message:
    reader = _Reader(data)
    major, minor, code, request_id = struct.unpack(">BBHi", reader.take(8, "header"))
    if major not in (1, 2):
        raise IppDecodeError(f"unsupported IPP version {major}.{minor}")
    groups: list[Group] = []
    group: Group | None = None
    name = ""
    values: list[Value] | None = None

    def close_attribute() -> None:
        if group is not None and values:
            group.attributes.append(Attribute(name, tuple(values)))

    while True:
        tag = reader.byte("tag")
        if tag == GroupTag.END:
            close_attribute()
            return Message(code, request_id, groups, data[reader.pos :], (major, minor))
        if tag < 0x10:
            if tag == 0x00:
                raise IppDecodeError("reserved delimiter tag 0x00")
            close_attribute()
            group, values = Group(tag), None
            groups.append(group)
            continue
        if group is None:
            raise IppDecodeError(f"value tag 0x{tag:02x} before any group")
        if tag in (ValueTag.END_COLLECTION, ValueTag.MEMBER_ATTR_NAME):
            raise IppDecodeError(f"0x{tag:02x} outside a collection")
        name_raw = reader.take(reader.short("name length"), "name")
        length = reader.short("value length")
        if name_raw:
            close_attribute()
            name, values = _decode_str(name_raw), []
        elif values is None:
            raise IppDecodeError("additional value without an attribute")
        raw = reader.take(length, f"{name} value")
        if tag == ValueTag.BEG_COLLECTION:
            values.append(Value(tag, _decode_collection(reader, name, 1)))
        else:
            values.append(Value(tag, _decode_value(tag, raw, name)))
