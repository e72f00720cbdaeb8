"""The 社保卡 (social security card) reader: PC/SC through pyscard (DESIGN §4).

`create()` builds a `SscReader` from the config; `read_card()` gives `SscCardData`. Every
failure is an `SscFailure` (or `DeviceUnavailable` for reader/pcscd trouble) whose
`message_key` is under `device.ssc.*` in this folder's locales.
"""

from drivers.ssc.apdu import (
    SscAccessDenied,
    SscCardInvalid,
    SscFailure,
    SscMalformedResponse,
    SscNotSscCard,
    SscStatusError,
)
from drivers.ssc.card import IDENTITY_FIELDS, SscCardData, SscField
from drivers.ssc.reader import (
    SscCardRemoved,
    SscNoCard,
    SscReader,
    SscReaderMissing,
    SscServiceDown,
    create,
)

__all__ = [
    "IDENTITY_FIELDS",
    "SscAccessDenied",
    "SscCardData",
    "SscCardInvalid",
    "SscCardRemoved",
    "SscFailure",
    "SscField",
    "SscMalformedResponse",
    "SscNoCard",
    "SscNotSscCard",
    "SscReader",
    "SscReaderMissing",
    "SscServiceDown",
    "SscStatusError",
    "create",
]
