"""The platform contract: what the kiosk asks of the integrated platform, in domain terms.

Everything the journeys, the outbox and the items use goes through `PlatformClient`; wire
formats stay inside its implementations. Errors are typed and carry the i18n key of the
plain-language text a citizen sees; `retryable` says whether the outbox may try again.
"""

from __future__ import annotations

import abc
import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kiosk.identity.model import Identity


class CertificateType(enum.StrEnum):
    """E-certificate (电子证照) types the sandbox issues and the print items fetch."""

    SSC_PARTICIPATION = "ssc_participation"  # 社保参保证明
    SSC_RIGHTS_RECORD = "ssc_rights_record"  # 个人权益记录
    HOUSING_FUND_DEPOSIT = "housing_fund_deposit"  # 公积金缴存证明
    REAL_ESTATE_INFO = "real_estate_info"  # 不动产登记信息 (无房证明)
    HOUSEHOLD_REGISTER = "household_register"  # 户籍证明
    ID_CARD_LICENCE = "id_card_licence"  # 居民身份证电子证照


@dataclass(frozen=True, repr=False)
class Certificate:
    """An e-certificate record (GB/T 36903 metadata, simplified) with its PDF file."""

    licence_code: str  # 证照标识
    type: CertificateType
    title: str  # e.g. 江苏省社会保险参保证明
    issuer_name: str
    issuer_code: str
    item_code: str
    region_code: str
    status: str  # "issued", "revoked", ...
    issued_on: dt.date
    valid_until: dt.date | None
    verify_url: str  # what the QR on the paper opens
    pdf: bytes

    def __repr__(self) -> str:  # never the holder's data, never the file
        return f"Certificate({self.type}, {self.licence_code}, {len(self.pdf)} bytes)"


@dataclass(frozen=True, repr=False)
class Application:
    """A submission (申请) built by an item from the citizen's answers."""

    item_id: str
    item_code: str  # government item code from the catalogue
    applicant: Identity
    fields: Mapping[str, Any]
    commitment_accepted: bool  # 告知承诺, explicitly agreed on screen
    created_at: float  # time.time()

    def __repr__(self) -> str:
        return f"Application({self.item_id}, applicant={self.applicant!r}, {len(self.fields)} fields)"


class CaseState(enum.StrEnum):
    RECEIVED = "received"  # 已接收
    ACCEPTED = "accepted"  # 已受理
    IN_REVIEW = "in_review"  # 审核中
    APPROVED = "approved"  # 已办结（通过）
    REJECTED = "rejected"  # 不予受理 / 未通过
    COMPLETED = "completed"  # 已办结


@dataclass(frozen=True)
class SubmissionReceipt:
    case_number: str
    state: CaseState
    received_at: float


@dataclass(frozen=True)
class CaseEvent:
    state: CaseState
    at: float
    note: str = ""


@dataclass(frozen=True)
class CaseStatus:
    case_number: str
    item_code: str
    state: CaseState
    updated_at: float
    history: Sequence[CaseEvent] = ()


@dataclass(frozen=True)
class QueryResult:
    """The answer of a query item (缴费记录, 公积金余额...): rows of labelled values."""

    item_code: str
    as_of: float
    summary: Mapping[str, Any] = field(default_factory=dict)
    rows: Sequence[Mapping[str, Any]] = ()


class RatingLevel(enum.StrEnum):
    """好差评, the one internal scale. Standards disagree on numeric codes (GB/T 39734 uses
    1 = 非常满意; a deployed reporting interface uses 5 = 非常满意): map at the edge with
    `code_gbt` / `code_reporting`, never by the enum's order."""

    VERY_SATISFIED = "very_satisfied"  # 非常满意
    SATISFIED = "satisfied"  # 满意
    BASIC = "basic"  # 基本满意
    DISSATISFIED = "dissatisfied"  # 不满意
    VERY_DISSATISFIED = "very_dissatisfied"  # 非常不满意

    @property
    def code_gbt(self) -> int:
        return _LEVELS.index(self) + 1

    @property
    def code_reporting(self) -> int:
        return 5 - _LEVELS.index(self)

    @property
    def is_bad(self) -> bool:
        """Bad ratings must be followed up (整改, 回访)."""
        return self in (RatingLevel.DISSATISFIED, RatingLevel.VERY_DISSATISFIED)


_LEVELS = list(RatingLevel)


@dataclass(frozen=True)
class Rating:
    item_code: str
    level: RatingLevel
    case_number: str | None  # None for a query that created no case
    rated_at: float
    channel: str = "hall_terminal"  # 政务大厅其他终端
    first: bool = True  # first rating, or a follow-up
    indicators: Mapping[str, RatingLevel] = field(default_factory=dict)  # efficiency, service...
    reasons: Sequence[str] = ()  # chip codes chosen by the citizen, no free text


@dataclass(frozen=True)
class CatalogueEntry:
    item_id: str
    item_code: str
    version: str
    enabled: bool = True


@dataclass(frozen=True)
class SignedCatalogue:
    version: int
    issued_at: float
    entries: Sequence[CatalogueEntry]
    payload: bytes  # the exact signed bytes
    signature: bytes
    key_id: str


# -- errors --------------------------------------------------------------------------------


class PlatformError(Exception):
    """Base of every platform failure. Messages never contain personal data or codes."""

    message_key = "platform.failed"
    retryable = False


class CodeInvalid(PlatformError):
    """Not a 苏服码 the platform issued (forged, mistyped, wrong length or charset)."""

    message_key = "platform.code_invalid"


class CodeExpired(PlatformError):
    message_key = "platform.code_expired"


class CodeReplayed(PlatformError):
    """Already used once: every code is single-use."""

    message_key = "platform.code_replayed"


class NotAuthorized(PlatformError):
    """The authorisation is missing, expired or does not cover what was asked."""

    message_key = "platform.not_authorized"


class NotFound(PlatformError):
    message_key = "platform.not_found"


class Rejected(PlatformError):
    """The platform refused the request's content (validation); retrying will not help."""

    message_key = "platform.rejected"


class PlatformUnavailable(PlatformError):
    """Timeout, connection refused, 5xx: try again later (the outbox will)."""

    message_key = "platform.unavailable"
    retryable = True


class PlatformProtocolError(PlatformError):
    """The answer was not what the API promises (garbage JSON, a PDF that is not a PDF)."""

    message_key = "platform.protocol"
    retryable = True


class PlatformClient(abc.ABC):
    """What the kiosk asks of the platform. All methods are coroutines on the kiosk's loop."""

    @abc.abstractmethod
    async def verify_code(self, code: str, *, item_code: str) -> Identity:
        """Verify a scanned 苏服码 for an item; the Identity carries the authorisation."""

    @abc.abstractmethod
    async def fetch_certificates(
        self,
        identity: Identity,
        types: Sequence[CertificateType],
        params: Mapping[str, str | int | bool] | None = None,
    ) -> list[Certificate]:
        """The holder's e-certificates of these types (免证办). For a 苏服码 identity the
        authorisation must cover them; for a card identity the kiosk's device credential
        and the card read stand as authority. `params` are the citizen's answers that
        shape the document (the period of a 参保证明, the year of a 权益记录, the purpose of
        a 无房证明), as plain values."""

    @abc.abstractmethod
    async def submit(self, application: Application, *, idempotency_key: str) -> SubmissionReceipt:
        """Submit once: the same key always yields the same case, however often it is sent."""

    @abc.abstractmethod
    async def query_case(self, case_number: str) -> CaseStatus: ...

    @abc.abstractmethod
    async def query(
        self, item_code: str, identity: Identity, params: Mapping[str, Any]
    ) -> QueryResult: ...

    @abc.abstractmethod
    async def rate(self, rating: Rating) -> None: ...

    @abc.abstractmethod
    async def catalogue(self) -> SignedCatalogue: ...

    async def close(self) -> None:
        return None
