"""Decoding of the resident ID card's text block (居民身份证, as read through the SAM).

Pure functions, no I/O. The 256-byte text block is UCS-2 little-endian, fixed-width
fields padded with spaces:

    name 30 | sex 2 | nation 4 | birth 16 | address 70 | ID number 36 | authority 30 |
    valid from 16 | valid to 16 | reserved 36

Other cards the same SAM reads (foreigner permanent residence card, HK/Macau/Taiwan
residence permit) use a different layout and say so with a type letter at bytes 248–249
("I" or, for the 2023 design, "Y": foreigner; "J": residence permit). We detect those and
refuse them with `UnsupportedCard`: the kiosk's identity model is built on resident cards.

The 1024-byte photo is WLT-compressed; decoding it needs a vendor library, so it stays
opaque bytes. A decoded card never shows its personal fields in `repr()`.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

from drivers.base import ErrorKind, OperatorAction
from drivers.idcard.frames import IdCardFailure
from kiosk.identity import id_number
from kiosk.privacy import mask_id_number, mask_name

TEXT_LENGTH = 256
PHOTO_LENGTH = 1024
LONG_TERM = "长期"  # valid-to of cards issued to people aged 46 and over

# (name, byte offset, byte length) of the resident card's fields.
_FIELDS = (
    ("name", 0, 30),
    ("sex", 30, 2),
    ("nation", 32, 4),
    ("birth", 36, 16),
    ("address", 52, 70),
    ("id_number", 122, 36),
    ("authority", 158, 30),
    ("valid_from", 188, 16),
    ("valid_to", 204, 16),
)
_TYPE_MARK = slice(248, 250)
_OTHER_CARD_TYPES = {
    "I": "foreigner_permanent_residence",
    "Y": "foreigner_permanent_residence",
    "J": "hk_macau_taiwan_residence_permit",
}
_PADDING = " \x00\u3000"

SEXES = {"1": "男", "2": "女"}

# GB 3304 nation codes as printed on cards, plus 97 其他 and 98 外国血统 (a citizen of
# foreign descent).
NATIONS: dict[str, str] = {
    f"{i:02d}": name
    for i, name in enumerate(
        (
            "汉族", "蒙古族", "回族", "藏族", "维吾尔族", "苗族", "彝族", "壮族", "布依族",
            "朝鲜族", "满族", "侗族", "瑶族", "白族", "土家族", "哈尼族", "哈萨克族", "傣族",
            "黎族", "傈僳族", "佤族", "畲族", "高山族", "拉祜族", "水族", "东乡族", "纳西族",
            "景颇族", "柯尔克孜族", "土族", "达斡尔族", "仫佬族", "羌族", "布朗族", "撒拉族",
            "毛南族", "仡佬族", "锡伯族", "阿昌族", "普米族", "塔吉克族", "怒族", "乌孜别克族",
            "俄罗斯族", "鄂温克族", "德昂族", "保安族", "裕固族", "京族", "塔塔尔族", "独龙族",
            "鄂伦春族", "赫哲族", "门巴族", "珞巴族", "基诺族",
        ),
        start=1,
    )
} | {"97": "其他", "98": "外国血统"}


class InvalidCard(IdCardFailure):
    """The text block is not a consistent resident card: bad encoding, missing field, check
    digit or birth date wrong. `reason` names the problem, never the value."""

    message_key = "device.idcard.invalid_card"
    default_code = "sam.invalid_card"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.NONE

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedCard(IdCardFailure):
    """A card the reader understands but the kiosk does not accept (foreigner permanent
    residence card, HK/Macau/Taiwan residence permit, an unknown type)."""

    message_key = "device.idcard.unsupported_card"
    default_code = "sam.unsupported_card"
    default_kind = ErrorKind.USER
    default_action = OperatorAction.NONE

    def __init__(self, card_type: str) -> None:
        super().__init__(f"unsupported card type: {card_type}")
        self.card_type = card_type


@dataclass(frozen=True, repr=False)
class ResidentIdCard:
    name: str
    sex_code: str  # "1" male, "2" female
    nation_code: str  # "01".."56", "97", "98"
    birth: _dt.date
    address: str
    id_number: str  # normalised: upper-case X
    authority: str
    valid_from: _dt.date
    valid_to: _dt.date | None  # None: 长期 (no expiry)
    photo_wlt: bytes = field(default=b"", compare=False)  # opaque WLT bytes

    card_type = "resident"

    @property
    def sex(self) -> str:
        return SEXES[self.sex_code]

    @property
    def nation(self) -> str:
        return NATIONS[self.nation_code]

    @property
    def long_term(self) -> bool:
        return self.valid_to is None

    def expired(self, today: _dt.date | None = None) -> bool:
        return self.valid_to is not None and self.valid_to < (today or _dt.date.today())

    def __repr__(self) -> str:
        return (
            f"ResidentIdCard(name={mask_name(self.name)}, "
            f"id_number={mask_id_number(self.id_number)}, photo={len(self.photo_wlt)} bytes)"
        )

    __str__ = __repr__


def card_type_of(text: bytes) -> str:
    """'resident', or the kind of other card the type letter at bytes 248–249 names."""
    if len(text) < _TYPE_MARK.stop:
        return "resident"  # too short to carry a mark; decode() will refuse the length
    mark = bytes(text[_TYPE_MARK])
    if mark in (b"\x00\x00", b" \x00"):
        return "resident"
    letter = mark.decode("utf-16-le", errors="replace")
    return _OTHER_CARD_TYPES.get(letter, "unknown")


def _text(block: bytes, name: str, start: int, length: int) -> str:
    try:
        value = block[start : start + length].decode("utf-16-le").strip(_PADDING)
    except UnicodeDecodeError:
        raise InvalidCard(f"{name} is not valid UCS-2 text") from None
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\ufffe\uffff" for ch in value):
        raise InvalidCard(f"{name} contains control characters")
    return value


def _date(value: str, name: str) -> _dt.date:
    if len(value) != 8 or not (value.isascii() and value.isdigit()):
        raise InvalidCard(f"{name} is not a YYYYMMDD date")
    try:
        return _dt.datetime.strptime(value, "%Y%m%d").date()
    except ValueError:
        raise InvalidCard(f"{name} is not a real date") from None


def decode(text: bytes, photo: bytes = b"", *, today: _dt.date | None = None) -> ResidentIdCard:
    """The text block (and photo) of a resident card → `ResidentIdCard`.

    Raises `UnsupportedCard` for other card types and `InvalidCard` for anything that is
    not a consistent resident card.
    """
    kind = card_type_of(text)
    if kind != "resident":
        raise UnsupportedCard(kind)
    if len(text) != TEXT_LENGTH:
        raise InvalidCard(f"text block has {len(text)} bytes, not {TEXT_LENGTH}")
    if photo and len(photo) != PHOTO_LENGTH:
        raise InvalidCard(f"photo has {len(photo)} bytes, not {PHOTO_LENGTH}")
    fields = {name: _text(text, name, start, length) for name, start, length in _FIELDS}
    today = today or _dt.date.today()

    for required in ("name", "address", "authority"):
        if not fields[required]:
            raise InvalidCard(f"{required} is empty")
    if fields["sex"] not in SEXES:
        raise InvalidCard("sex code is not 1 or 2")
    if fields["nation"] not in NATIONS:
        raise InvalidCard("nation code is not in the code table")

    birth = _date(fields["birth"], "birth date")
    if birth > today or birth.year < 1850:
        raise InvalidCard("birth date is out of range")
    try:
        number = id_number.validate(fields["id_number"], today=today)
    except id_number.InvalidIdNumber as exc:
        raise InvalidCard(f"ID number: {exc.reason}") from None
    if id_number.birth_date(number) != birth:
        raise InvalidCard("birth date inside the ID number does not match the birth field")

    valid_from = _date(fields["valid_from"], "valid-from date")
    valid_to: _dt.date | None
    if fields["valid_to"] == LONG_TERM:
        valid_to = None
    else:
        valid_to = _date(fields["valid_to"], "valid-to date")
        if valid_to <= valid_from:
            raise InvalidCard("valid-to date is not after valid-from date")
    if valid_from < birth:
        raise InvalidCard("valid-from date is before the birth date")

    return ResidentIdCard(
        name=fields["name"],
        sex_code=fields["sex"],
        nation_code=fields["nation"],
        birth=birth,
        address=fields["address"],
        id_number=number,
        authority=fields["authority"],
        valid_from=valid_from,
        valid_to=valid_to,
        photo_wlt=bytes(photo),
    )
