"""What a 社保卡 says: the `SscCardData` model and the record layout of EF05 and EF06.

Fields the card refused to give (PSAM/HSM-protected records) are listed in `unreadable`,
fields the card does not have in `absent`; neither is ever filled with a guess. `repr()`
and `str()` mask personal data, so a stray log line or assertion message cannot leak it.
"""

from __future__ import annotations

import datetime as _dt
import enum
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields

from drivers.ssc import apdu
from drivers.ssc.apdu import SscAccessDenied, SscCardInvalid, SscMalformedResponse
from kiosk.identity import id_number
from kiosk.privacy import mask_id_number, mask_name


class SscField(enum.StrEnum):
    # EF05, card data
    CARD_IDENTIFIER = "card_identifier"  # 01 卡识别码 (starts with the issuing region)
    CARD_TYPE = "card_type"  # 02 卡的类别
    SPEC_VERSION = "spec_version"  # 03 规范版本: "1.00", "2.00", "3.00"
    ISSUER_CODE = "issuer_code"  # 04 初始化机构编号
    ISSUED_ON = "issued_on"  # 05 发卡日期
    VALID_UNTIL = "valid_until"  # 06 卡有效期
    CARD_NUMBER = "card_number"  # 07 卡号
    # EF06, holder data
    SOCIAL_SECURITY_NUMBER = "social_security_number"  # 08 社会保障号码 (= ID number)
    NAME = "name"  # 09 姓名
    SEX = "sex"  # 0A 性别 (GB/T 2261.1: 1 male, 2 female, 0 unknown, 9 unspecified)
    NATION = "nation"  # 0B 民族 (GB/T 3304 code, "01" = 汉族)
    BIRTH_PLACE = "birth_place"  # 0C 出生地 (GB/T 2260 region code)
    BIRTH_DATE = "birth_date"  # 0D 出生日期


# What identifying a citizen needs; the reader fails rather than return a card without it.
IDENTITY_FIELDS: frozenset[SscField] = frozenset(
    {SscField.SOCIAL_SECURITY_NUMBER, SscField.NAME}
)

Decoder = Callable[[bytes, int], object]


def _sex(value: bytes, tag: int) -> str:
    # 'an' 1 byte ("1"/"2"); a few issuers wrote the code as a binary byte.
    if len(value) != 1:
        raise SscMalformedResponse(f"record {tag:02X}: sex has 1 byte, not {len(value)}")
    code = chr(value[0]) if value[0] >= 0x30 else str(value[0])
    if code not in ("0", "1", "2", "9"):
        raise SscMalformedResponse(f"record {tag:02X}: not a GB/T 2261.1 sex code")
    return code


def _nation(value: bytes, tag: int) -> str:
    # 'cn' 1 byte (BCD "01"); tolerate the two ASCII digits some cards use.
    code = apdu.ascii_text(value, tag) if len(value) == 2 else apdu.bcd_digits(value, tag)
    if len(code) != 2 or not code.isdigit():
        raise SscMalformedResponse(f"record {tag:02X}: not a two-digit nation code")
    return code


def _region(value: bytes, tag: int) -> str:
    code = apdu.bcd_digits(value, tag)
    if len(code) != 6:
        raise SscMalformedResponse(f"record {tag:02X}: a region code has 6 digits")
    return code


def _card_identifier(value: bytes, tag: int) -> str:
    # 16 bytes: issuing region (3 bytes BCD), RID D156000005, issuer serial, FF padding.
    if len(value) < 3:
        raise SscMalformedResponse(f"record {tag:02X}: card identifier too short")
    return value.hex().upper()


@dataclass(frozen=True)
class _Element:
    field: SscField
    decode: Decoder


# Tag → element, in the order the records sit in their file (record n holds the n-th tag).
EF05_LAYOUT: dict[int, _Element] = {
    0x01: _Element(SscField.CARD_IDENTIFIER, _card_identifier),
    0x02: _Element(SscField.CARD_TYPE, apdu.hex_or_text),
    0x03: _Element(SscField.SPEC_VERSION, apdu.ascii_text),
    0x04: _Element(SscField.ISSUER_CODE, apdu.hex_or_text),
    0x05: _Element(SscField.ISSUED_ON, apdu.date_value),
    0x06: _Element(SscField.VALID_UNTIL, apdu.date_value),
    0x07: _Element(SscField.CARD_NUMBER, apdu.ascii_text),
}
EF06_LAYOUT: dict[int, _Element] = {
    0x08: _Element(SscField.SOCIAL_SECURITY_NUMBER, apdu.ascii_text),
    0x09: _Element(SscField.NAME, apdu.gbk_text),
    0x0A: _Element(SscField.SEX, _sex),
    0x0B: _Element(SscField.NATION, _nation),
    0x0C: _Element(SscField.BIRTH_PLACE, _region),
    0x0D: _Element(SscField.BIRTH_DATE, apdu.date_value),
}
LAYOUTS: dict[int, dict[int, _Element]] = {apdu.EF05: EF05_LAYOUT, apdu.EF06: EF06_LAYOUT}
_PERSONAL = frozenset(
    {
        SscField.SOCIAL_SECURITY_NUMBER, SscField.NAME, SscField.SEX, SscField.NATION,
        SscField.BIRTH_PLACE, SscField.BIRTH_DATE, SscField.CARD_NUMBER,
        SscField.CARD_IDENTIFIER,
    }
)


@dataclass(frozen=True)
class SscCardData:
    """One card's data. A field is None when the card did not give it; `unreadable` says
    which of those were refused by the card's access conditions, `absent` which the card
    does not have at all."""

    card_number: str | None = None
    social_security_number: str | None = None
    name: str | None = None
    sex: str | None = None
    nation: str | None = None
    birth_place: str | None = None
    birth_date: _dt.date | None = None
    card_identifier: str | None = None
    card_type: str | None = None
    spec_version: str | None = None
    issuer_code: str | None = None
    issued_on: _dt.date | None = None
    valid_until: _dt.date | None = None
    unreadable: frozenset[SscField] = field(default_factory=frozenset)
    absent: frozenset[SscField] = field(default_factory=frozenset)

    @property
    def region_code(self) -> str | None:
        """The issuing region (GB/T 2260), the first six digits of the card identifier."""
        if self.card_identifier and self.card_identifier[:6].isdigit():
            return self.card_identifier[:6]
        return None

    @property
    def generation(self) -> int | None:
        """1, 2 or 3 from the spec version ("3.00" = third-generation card)."""
        if self.spec_version and self.spec_version[:1] in "123":
            return int(self.spec_version[0])
        return None

    @property
    def complete(self) -> bool:
        return not self.unreadable and not self.absent

    def require(self, wanted: Collection[SscField]) -> None:
        """Raise the typed failure if a field an item needs is not there."""
        denied = tuple(sorted(f for f in wanted if f in self.unreadable))
        if denied:
            raise SscAccessDenied(
                "card refuses to give " + ", ".join(denied) + " to this terminal", denied
            )
        missing = sorted(f for f in wanted if getattr(self, str(f)) is None)
        if missing:
            raise SscCardInvalid("card has no " + ", ".join(missing))

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("unreadable", "absent"):
                shown.append(f"{f.name}={sorted(value)}")
            elif value is None:
                shown.append(f"{f.name}=None")
            elif f.name == SscField.SOCIAL_SECURITY_NUMBER:
                shown.append(f"{f.name}={mask_id_number(value)!r}")
            elif f.name == SscField.NAME:
                shown.append(f"{f.name}={mask_name(value)!r}")
            elif f.name in _PERSONAL:
                shown.append(f"{f.name}=<hidden>")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"SscCardData({', '.join(shown)})"

    __str__ = __repr__


@dataclass
class RecordScan:
    """What reading one EF gave: records by tag, and the tags the card refused."""

    records: dict[int, bytes] = field(default_factory=dict)
    denied: set[int] = field(default_factory=set)


def tag_at(layout: Mapping[int, _Element], after: int | None) -> int | None:
    """The tag expected in the record after the one tagged `after` (None = first record).

    A refused record does not say its tag, so the scan infers it from the standard layout,
    continuing from the last tag the card did show."""
    tags = list(layout)
    if after is None:
        return tags[0] if tags else None
    if after not in layout:
        return None
    index = tags.index(after) + 1
    return tags[index] if index < len(tags) else None


def build(
    ef05: RecordScan, ef06: RecordScan, *, today: _dt.date | None = None
) -> SscCardData:
    """Decode both files' records into `SscCardData`; validate the 社会保障号码."""
    values: dict[str, object] = {}
    unreadable: set[SscField] = set()
    absent: set[SscField] = set()
    for scan, layout in ((ef05, EF05_LAYOUT), (ef06, EF06_LAYOUT)):
        for tag, element in layout.items():
            if tag in scan.records:
                values[str(element.field)] = element.decode(scan.records[tag], tag)
            elif tag in scan.denied:
                unreadable.add(element.field)
            else:
                absent.add(element.field)
    number = values.get(SscField.SOCIAL_SECURITY_NUMBER)
    if isinstance(number, str):
        try:
            values[str(SscField.SOCIAL_SECURITY_NUMBER)] = id_number.validate(number, today=today)
        except id_number.InvalidIdNumber as exc:
            # The reason says which check failed; the number itself stays out of it.
            raise SscCardInvalid(f"社会保障号码 is not a valid ID number: {exc.reason}") from None
    return SscCardData(
        **values,  # type: ignore[arg-type]
        unreadable=frozenset(unreadable),
        absent=frozenset(absent),
    )
