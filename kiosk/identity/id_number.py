"""Resident ID numbers (GB 11643): check digit (ISO 7064 MOD 11-2) and embedded birth date.

Pure functions, no I/O. Used by the card drivers to validate what a card says and by the
log redactor to recognise an ID number in free text.
"""

from __future__ import annotations

import datetime as _dt
import re

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"  # index = weighted sum mod 11

# The shape of an 18-character ID number: 6-digit region, birth YYYYMMDD, 3-digit sequence,
# check character. Used where false positives must stay rare (log redaction).
SHAPE = re.compile(
    r"\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
)


class InvalidIdNumber(ValueError):
    """The text is not a valid 18-character resident ID number; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_char(first17: str) -> str:
    """The check character for the first 17 digits."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise InvalidIdNumber("need exactly 17 digits before the check character")
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS))
    return _CHECK_CHARS[total % 11]


def birth_date(number: str) -> _dt.date:
    """The birth date embedded in characters 7–14, or InvalidIdNumber."""
    try:
        return _dt.datetime.strptime(number[6:14], "%Y%m%d").date()
    except ValueError:
        raise InvalidIdNumber("birth date inside the number is not a real date") from None


def validate(number: str, *, today: _dt.date | None = None) -> str:
    """Return the number normalised (upper-case X) or raise InvalidIdNumber.

    Checks length and charset, the check character and that the embedded birth date is a
    real date not in the future.
    """
    if len(number) != 18:
        raise InvalidIdNumber("an ID number has 18 characters")
    normalised = number.upper()
    if not (normalised[:17].isascii() and normalised[:17].isdigit()):
        raise InvalidIdNumber("the first 17 characters must be digits")
    if normalised[17] not in "0123456789X":
        raise InvalidIdNumber("the last character must be a digit or X")
    born = birth_date(normalised)
    if born > (today or _dt.date.today()) or born.year < 1850:
        raise InvalidIdNumber("birth date inside the number is out of range")
    if check_char(normalised[:17]) != normalised[17]:
        raise InvalidIdNumber("check character does not match")
    return normalised


def is_valid(number: str) -> bool:
    try:
        validate(number)
    except InvalidIdNumber:
        return False
    return True
