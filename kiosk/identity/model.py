"""One identity model for the three sources a citizen can identify with.

- 苏服码: verified online by the platform; comes with a short-lived authorisation to read
  the holder's e-certificates for this case (免证办). No sex or birth date: derived from the
  ID number.
- 居民身份证 through the SAM reader: the chip is authenticated by the SAM.
- 社保卡 through PC/SC: card data read, the holder is not verified.

`repr()` and `str()` show masked values only, so an Identity that ends up in a log line or
an exception message leaks nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from kiosk.identity import id_number
from kiosk.privacy import mask_id_number, mask_name


class IdentitySource(enum.StrEnum):
    SUFU_CODE = "code"  # 苏服码
    ID_CARD = "idcard"  # 居民身份证 via SAM
    SSC = "ssc"  # 社保卡 via PC/SC


class Assurance(enum.IntEnum):
    """How sure the kiosk is that the person at the screen is the holder."""

    MEDIUM = 2  # a card was read; nobody checked it is the holder's (社保卡)
    HIGH = 3  # a real-name account verified online (苏服码) or a SAM-authenticated chip


DEFAULT_ASSURANCE = {
    IdentitySource.SUFU_CODE: Assurance.HIGH,
    IdentitySource.ID_CARD: Assurance.HIGH,
    IdentitySource.SSC: Assurance.MEDIUM,
}


class Sex(enum.StrEnum):
    MALE = "1"
    FEMALE = "2"


@dataclass(frozen=True, repr=False)
class Authorization:
    """The platform's scoped token from a verified 苏服码: lets this kiosk read the holder's
    e-certificates for one case until it expires. Opaque; never logged."""

    token: str
    expires_at: float  # time.time() seconds
    certificate_types: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"Authorization(<token>, expires_at={self.expires_at}, types={self.certificate_types})"


@dataclass(frozen=True, repr=False)
class Identity:
    source: IdentitySource
    id_number: str  # 18 characters, validated
    name: str
    assurance: Assurance
    sex: Sex | None = None
    birth_date: dt.date | None = None
    nation: str | None = None  # 民族, e.g. "汉"
    ssc_card_number: str | None = None  # 社保卡 only
    authorization: Authorization | None = field(default=None)  # 苏服码 only

    @classmethod
    def create(
        cls,
        source: IdentitySource,
        number: str,
        name: str,
        *,
        assurance: Assurance | None = None,
        **fields,
    ) -> Identity:
        """Validate the ID number and fill sex and birth date from it where not given."""
        number = id_number.validate(number)
        fields.setdefault("birth_date", id_number.birth_date(number))
        fields.setdefault("sex", Sex.MALE if int(number[16]) % 2 else Sex.FEMALE)
        return cls(
            source,
            number,
            name.strip(),
            assurance if assurance is not None else DEFAULT_ASSURANCE[source],
            **fields,
        )

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)

    def age_on(self, day: dt.date) -> int | None:
        if self.birth_date is None:
            return None
        born = self.birth_date
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))

    def secrets(self) -> tuple[str, ...]:
        """Exact values to hand to the log redactor for the session's lifetime."""
        values = [self.name, self.id_number]
        if self.ssc_card_number:
            values.append(self.ssc_card_number)
        if self.authorization:
            values.append(self.authorization.token)
        return tuple(values)

    def __repr__(self) -> str:
        return (
            f"Identity({self.source}, {self.masked_id_number}, {self.masked_name}, "
            f"assurance={self.assurance.name})"
        )

    __str__ = __repr__
