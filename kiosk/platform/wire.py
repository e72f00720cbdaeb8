"""The platform's JSON wire format: request and answer models shared by the kiosk's HTTP
client and the sandbox platform.

Shaped like the public integration pattern of a provincial gateway (docs/platform.md):

- `POST /oauth/token` (RFC 6749 client credentials, form-encoded; client_id = device id)
  → `TokenAnswer`; errors in RFC 6749 shape (`{"error": "invalid_client", ...}`).
- `POST /api/v1/codes/verify` `CodeVerifyRequest` → `CodeVerifyAnswer`
- `POST /api/v1/certificates/query` `CertificateQueryRequest` → `CertificateQueryAnswer`
- `POST /api/v1/applications` + header `Idempotency-Key` `ApplicationRequest` → `CaseAnswer`
- `GET /api/v1/cases/{case_number}` → `CaseAnswer`
- `POST /api/v1/queries/{item_code}` `QueryRequest` → `QueryAnswer`
- `POST /api/v1/ratings` + header `Idempotency-Key` `RatingRequest` → `RatingAnswer`
- `GET /api/v1/catalogue` → `CatalogueAnswer` (payload bytes + Ed25519 signature);
  `GET /api/v1/catalogue/keys` → `CatalogueKeysAnswer`

Every other error answer is `ErrorAnswer`: `{"error": {"code", "message", "request_id"}}`
with a code from `ErrorCode`. Personal data travels in POST bodies only, never in URLs.
Answers are read tolerantly (unknown fields ignored: a gateway may add some); requests are
strict (the sandbox refuses fields it does not know, which catches client bugs early).
"""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

API_PREFIX = "/api/v1"
TOKEN_PATH = "/oauth/token"
IDEMPOTENCY_HEADER = "Idempotency-Key"
# The sandbox's test hooks (not part of a real gateway's API).
SANDBOX_PREFIX = "/sandbox"

IdNumberText = Annotated[str, Field(pattern=r"^\d{17}[\dX]$")]
NameText = Annotated[str, Field(min_length=1, max_length=64)]
ItemCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z._-]+$")]
DeviceId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
IdempotencyKey = Annotated[str, Field(min_length=8, max_length=128, pattern=r"^[\x21-\x7e]+$")]
# A scanned 苏服码 is opaque: only its size is bounded on the wire.
CodeText = Annotated[str, Field(min_length=1, max_length=256)]
# Lifetimes in seconds. Bounded: the client adds them to a float clock, and an answer with
# a 400-digit integer would otherwise end in OverflowError instead of a protocol error.
LifetimeSeconds = Annotated[int, Field(gt=0, le=2**31 - 1)]
# Rating level in the deployed reporting interface's coding: 5 = 非常满意 … 1 = 非常不满意.
ReportingLevel = Annotated[int, Field(ge=1, le=5)]


class ErrorCode(enum.StrEnum):
    """Error codes in answer bodies. The client maps them to the typed errors of api.py."""

    INVALID_REQUEST = "invalid_request"  # malformed body or header → Rejected
    INVALID_CLIENT = "invalid_client"  # device credential refused (token endpoint)
    INVALID_TOKEN = "invalid_token"  # bearer token missing, unknown or expired: fetch again
    CODE_INVALID = "code_invalid"  # not a code the platform issued (forged, mistyped)
    CODE_EXPIRED = "code_expired"
    CODE_REPLAYED = "code_replayed"
    AUTHORIZATION_INVALID = "authorization_invalid"  # scoped authorisation missing/expired
    AUTHORIZATION_SCOPE = "authorization_scope"  # it does not cover what was asked
    NOT_FOUND = "not_found"
    VALIDATION_FAILED = "validation_failed"  # content refused (e.g. no commitment)
    IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # same key, different request
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal_error"
    UNAVAILABLE = "service_unavailable"


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- errors --------------------------------------------------------------------------------


class ErrorDetail(_Answer):
    code: str
    message: str = ""
    request_id: str = ""


class ErrorAnswer(_Answer):
    error: ErrorDetail


class OAuthErrorAnswer(_Answer):
    """RFC 6749 §5.2 error shape, used by the token endpoint only."""

    error: str
    error_description: str = ""


# -- token ---------------------------------------------------------------------------------


class TokenAnswer(_Answer):
    access_token: Annotated[str, Field(min_length=16, max_length=2048)]
    token_type: str = "Bearer"
    expires_in: LifetimeSeconds
    scope: str = ""


# -- subjects (whose data a request is about) ----------------------------------------------


class Subject(_Request):
    """The citizen a request is about. For a 苏服码 identity the scoped authorisation token
    stands as authority; for a card identity the device credential and the card read do."""

    source: Literal["code", "idcard", "ssc"]
    id_number: IdNumberText
    name: NameText
    authorization_token: Annotated[str, Field(min_length=16, max_length=2048)] | None = None


# -- 苏服码 verification --------------------------------------------------------------------


class CodeVerifyRequest(_Request):
    code: CodeText
    device_id: DeviceId
    item_code: ItemCode


class Holder(_Answer):
    name: NameText
    id_number: IdNumberText


class AuthorizationGrant(_Answer):
    token: Annotated[str, Field(min_length=16, max_length=2048)]
    expires_in: LifetimeSeconds
    # Plain strings: a gateway may know types the kiosk does not; the client keeps the known.
    certificate_types: list[str] = []


class CodeVerifyAnswer(_Answer):
    holder: Holder
    authorization: AuthorizationGrant


# -- e-certificates -----------------------------------------------------------------------


ParamValue = Annotated[str, Field(max_length=64)] | int | bool


class CertificateQueryRequest(_Request):
    subject: Subject
    types: Annotated[list[str], Field(min_length=1, max_length=16)]
    item_code: ItemCode | None = None
    # The citizen's answers that shape the documents (period, year, purpose...).
    params: Annotated[
        dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ParamValue],
        Field(max_length=8),
    ] = Field(default_factory=dict)


class CertificateFile(_Answer):
    format: Literal["pdf"] = "pdf"
    content_base64: str
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    # Detached signature over the file bytes. The sandbox signs with Ed25519; a real
    # gateway's electronic seal is SM2 (GB/T 38540) inside the file instead.
    signature_algorithm: str | None = None
    signature_base64: str | None = None
    key_id: str | None = None


class CertificateRecord(_Answer):
    """GB/T 36903 metadata (simplified) and the file."""

    licence_code: Annotated[str, Field(min_length=1, max_length=128)]
    type: str
    title: str
    holder_id_number: IdNumberText
    issuer_name: str
    issuer_code: str
    item_code: str
    region_code: str
    status: str
    issued_on: str  # ISO date
    valid_until: str | None = None  # ISO date, None = no end
    verify_url: str
    file: CertificateFile


class CertificateQueryAnswer(_Answer):
    certificates: list[CertificateRecord]


# -- applications and cases ----------------------------------------------------------------


class ApplicationRequest(_Request):
    item_id: Annotated[str, Field(min_length=1, max_length=64)]
    item_code: ItemCode
    applicant: Subject
    fields: dict[str, JsonValue]
    commitment_accepted: bool
    created_at: float


class CaseEventWire(_Answer):
    state: str
    at: float
    note: str = ""


class CaseAnswer(_Answer):
    case_number: Annotated[str, Field(min_length=1, max_length=64)]
    item_code: str
    state: str
    received_at: float
    updated_at: float
    history: list[CaseEventWire] = []


# -- queries -------------------------------------------------------------------------------


class QueryRequest(_Request):
    subject: Subject
    params: dict[str, JsonValue] = {}


class QueryAnswer(_Answer):
    item_code: str
    as_of: float
    summary: dict[str, JsonValue] = {}
    rows: list[dict[str, JsonValue]] = []


# -- ratings (好差评) ------------------------------------------------------------------------


class RatingRequest(_Request):
    item_code: ItemCode
    case_number: Annotated[str, Field(max_length=64)] | None = None
    level: ReportingLevel  # 5 = 非常满意 … 1 = 非常不满意 (reporting interface coding)
    indicators: dict[str, ReportingLevel] = {}
    reasons: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=16)] = []
    channel: Annotated[str, Field(max_length=32)] = "hall_terminal"
    first: bool = True
    rated_at: float


class RatingAnswer(_Answer):
    rating_id: str
    follow_up_required: bool = False


# -- catalogue -------------------------------------------------------------------------------


class CatalogueEntryWire(_Answer):
    item_id: str
    item_code: str
    version: str
    enabled: bool = True
    kind: str = ""
    name_zh: str = ""
    name_en: str = ""
    certificate_types: list[str] = []


class CataloguePayload(_Answer):
    """What the signature covers: these fields serialised by `canonical_json`."""

    version: int
    issued_at: float
    entries: list[CatalogueEntryWire]


class CatalogueAnswer(_Answer):
    version: int
    issued_at: float
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    payload_base64: str
    signature_base64: str


class PublicKey(_Answer):
    key_id: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key_base64: str  # raw 32-byte key


class CatalogueKeysAnswer(_Answer):
    keys: list[PublicKey]


# -- sandbox test hooks --------------------------------------------------------------------


class IssuedCode(_Answer):
    """`POST /sandbox/citizens/{citizen_id}/code`: what the phone page shows as a QR."""

    citizen_id: str
    code: str
    expires_in: int


class CaseAdvanceRequest(_Request):
    """`POST /sandbox/cases/{case_number}/advance`: next state, or jump to `to`."""

    to: str | None = None
    note: str = ""


def canonical_json(value: Any) -> bytes:
    """One byte form per value (sorted keys, no spaces, UTF-8): what signatures and request
    hashes are computed over."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
