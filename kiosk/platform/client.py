"""`HttpPlatformClient`: the kiosk's `PlatformClient` over HTTP, for a provincial gateway
and for the sandbox platform, which speaks the same API (wire.py, docs/platform.md).

One aiohttp ClientSession; an OAuth2 client-credentials token fetched on first use, renewed
before it expires and once more if the platform says it is no longer valid; a timeout per
call; retries with backoff only where a repeat cannot do harm: GETs, the token, the submit
(idempotent by its key), ratings (idempotent by a key derived from their content) and the
read-only POSTs (certificates, queries), whose body only keeps personal data out of URLs.
A 苏服码 verification is never repeated: the code is single use.

Every failure becomes one of api.py's typed errors. Messages and logs never carry a code,
a token, a name or an ID number; pydantic errors are not chained (they echo their input).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ValidationError

from kiosk.identity.id_number import InvalidIdNumber
from kiosk.identity.model import Authorization, Identity, IdentitySource
from kiosk.platform.api import (
    Application,
    CaseEvent,
    CaseState,
    CaseStatus,
    CatalogueEntry,
    Certificate,
    CertificateType,
    CodeExpired,
    CodeInvalid,
    CodeReplayed,
    NotAuthorized,
    NotFound,
    PlatformClient,
    PlatformError,
    PlatformProtocolError,
    PlatformUnavailable,
    QueryResult,
    Rating,
    Rejected,
    SignedCatalogue,
    SubmissionReceipt,
)
from kiosk.platform.wire import (
    API_PREFIX,
    IDEMPOTENCY_HEADER,
    TOKEN_PATH,
    ApplicationRequest,
    CaseAnswer,
    CatalogueAnswer,
    CataloguePayload,
    CertificateQueryAnswer,
    CertificateQueryRequest,
    CertificateRecord,
    CodeVerifyAnswer,
    CodeVerifyRequest,
    ErrorCode,
    QueryAnswer,
    QueryRequest,
    RatingAnswer,
    RatingRequest,
    Subject,
    TokenAnswer,
    canonical_json,
)

logger = logging.getLogger("kiosk.platform.client")

_M = TypeVar("_M", bound=BaseModel)
_CODE_CHARS = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
_CASE_NUMBER = re.compile(r"^[0-9A-Za-z-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{8,128}$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CODE_MAX_LENGTH = 256  # the wire's bound; a gateway's codes are far shorter
CODE_MIN_LENGTH = 8


def check_scanned_code(text: str, *, max_length: int = CODE_MAX_LENGTH) -> str:
    """The scanned 苏服码 without surrounding whitespace (scanners append CR/LF), or
    CodeInvalid if its length or charset cannot be a code. Opaque otherwise."""
    code = text.strip()
    if not CODE_MIN_LENGTH <= len(code) <= max_length or not _CODE_CHARS.match(code):
        raise CodeInvalid(f"scanned text cannot be a code (len={len(code)})")
    return code


@dataclass(frozen=True)
class CallTimeouts:
    """Seconds for each call, connection and answer included."""

    token: float = 5.0
    verify: float = 5.0
    certificates: float = 20.0
    submit: float = 10.0
    case: float = 5.0
    query: float = 8.0
    rating: float = 5.0
    catalogue: float = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # in all, the first one included
    base_delay_s: float = 0.25
    max_delay_s: float = 3.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins, within the cap."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay_s)
        backoff = min(self.base_delay_s * 2**attempt, self.max_delay_s)
        return backoff * (0.5 + random.random() / 2)


# -- mapping answers to typed errors -------------------------------------------------------

_CODE_ERRORS: Mapping[str, type[PlatformError]] = {
    ErrorCode.CODE_INVALID: CodeInvalid,
    ErrorCode.CODE_EXPIRED: CodeExpired,
    ErrorCode.CODE_REPLAYED: CodeReplayed,
    ErrorCode.AUTHORIZATION_INVALID: NotAuthorized,
    ErrorCode.AUTHORIZATION_SCOPE: NotAuthorized,
    ErrorCode.NOT_FOUND: NotFound,
    ErrorCode.VALIDATION_FAILED: Rejected,
    ErrorCode.INVALID_REQUEST: Rejected,
    ErrorCode.IDEMPOTENCY_CONFLICT: Rejected,
    ErrorCode.RATE_LIMITED: PlatformUnavailable,
    ErrorCode.UNAVAILABLE: PlatformUnavailable,
    ErrorCode.INTERNAL: PlatformUnavailable,
    # The device credential was refused: an ops problem, not the citizen's. Retryable, so
    # the outbox keeps submissions until the credential is fixed.
    ErrorCode.INVALID_CLIENT: PlatformUnavailable,
    # Still refused after a fresh token: the device's standing, again not the citizen's.
    ErrorCode.INVALID_TOKEN: PlatformUnavailable,
}


def error_code_of(body: bytes) -> str | None:
    """The error code of an error answer (API envelope or RFC 6749 shape), or None."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict):
        error = error.get("code")
    return error if isinstance(error, str) and len(error) <= 64 else None


def error_for(status: int, body: bytes) -> PlatformError:
    """The typed error for a non-2xx answer. Never raises, whatever the body holds."""
    code = error_code_of(body)
    if status >= 500 or status in (408, 429):
        return PlatformUnavailable(f"platform answered HTTP {status}")
    if code is not None and code in _CODE_ERRORS:
        return _CODE_ERRORS[code](f"platform refused: {code} (HTTP {status})")
    if code is None:  # not our API talking (a proxy's page, a wrong route)
        return PlatformProtocolError(f"HTTP {status} without an error body")
    if status in (401, 403):
        return NotAuthorized(f"platform refused: {code} (HTTP {status})")
    if status == 404:
        return NotFound(f"platform refused: {code} (HTTP {status})")
    if status in (400, 409, 410, 415, 422):
        return Rejected(f"platform refused: {code} (HTTP {status})")
    return PlatformProtocolError(f"unexpected HTTP {status} ({code})")


def decode(model: type[_M], body: bytes) -> _M:
    """A 2xx answer as its wire model, or PlatformProtocolError (garbage, wrong shape)."""
    try:
        return model.model_validate_json(body)
    except ValidationError:
        # Not chained: pydantic's text would echo the answer, personal data included.
        raise PlatformProtocolError(f"answer is not a valid {model.__name__}") from None


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PlatformProtocolError(f"{what} is not base64") from None


def certificate_from(record: CertificateRecord, *, holder_id_number: str) -> Certificate:
    """The domain certificate, after checking the file is the PDF the metadata promises."""
    if record.holder_id_number != holder_id_number:
        raise PlatformProtocolError("certificate is for another holder")
    pdf = _b64(record.file.content_base64, "certificate file")
    if not pdf.startswith(b"%PDF-"):
        raise PlatformProtocolError("certificate file is not a PDF")
    if hashlib.sha256(pdf).hexdigest() != record.file.sha256:
        raise PlatformProtocolError("certificate file does not match its SHA-256")
    try:
        type_ = CertificateType(record.type)
        issued_on = dt.date.fromisoformat(record.issued_on)
        valid_until = dt.date.fromisoformat(record.valid_until) if record.valid_until else None
    except ValueError:
        raise PlatformProtocolError("certificate metadata has a bad type or date") from None
    return Certificate(
        licence_code=record.licence_code,
        type=type_,
        title=record.title,
        issuer_name=record.issuer_name,
        issuer_code=record.issuer_code,
        item_code=record.item_code,
        region_code=record.region_code,
        status=record.status,
        issued_on=issued_on,
        valid_until=valid_until,
        verify_url=record.verify_url,
        pdf=pdf,
    )


def _case_state(text: str) -> CaseState:
    try:
        return CaseState(text)
    except ValueError:
        raise PlatformProtocolError("unknown case state") from None


def subject_of(identity: Identity, *, now: float) -> Subject:
    """Who a request is about, with the authority the platform needs for it."""
    token = None
    if identity.source is IdentitySource.SUFU_CODE:
        auth = identity.authorization
        if auth is None or auth.expires_at <= now:
            raise NotAuthorized("the 苏服码 authorisation is missing or expired")
        token = auth.token
    try:
        return Subject(
            source=str(identity.source),
            id_number=identity.id_number,
            name=identity.name,
            authorization_token=token,
        )
    except ValidationError:
        raise Rejected("identity does not fit the wire format") from None


# -- the client ------------------------------------------------------------------------------


@dataclass
class _Token:
    value: str
    renew_at: float  # clock time after which a new one is fetched


@dataclass
class _Call:
    """One API call: what to send and whether repeating it is harmless."""

    method: str
    path: str
    timeout: float
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_safe: bool = False


class HttpPlatformClient(PlatformClient):
    """The platform over HTTP. Create and use it on the kiosk's event loop."""

    def __init__(
        self,
        base_url: str,
        *,
        device_id: str,
        client_secret: str,
        session: aiohttp.ClientSession | None = None,
        timeouts: CallTimeouts = CallTimeouts(),
        retry: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        code_max_length: int = CODE_MAX_LENGTH,
        catalogue_keys: Mapping[str, bytes] | None = None,
        max_answer_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if not _DEVICE_ID.match(device_id):
            raise ValueError("device_id: 1-64 of [A-Za-z0-9._-]")
        self._base = base_url.rstrip("/")
        self._device_id = device_id
        self._secret = client_secret
        self._session = session
        self._owns_session = session is None
        self._timeouts = timeouts
        self._retry = retry
        self._clock = clock
        self._sleep = sleep
        self._code_max_length = min(code_max_length, CODE_MAX_LENGTH)
        # key id → raw Ed25519 public key; when given, catalogues must verify against them
        self._catalogue_keys = dict(catalogue_keys) if catalogue_keys is not None else None
        self._max_answer = max_answer_bytes
        self._token: _Token | None = None
        self._token_lock = asyncio.Lock()

    # -- plumbing ----------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": "kiosk-runtime platform client"}
            )
        return self._session

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        if response.content_length is not None and response.content_length > self._max_answer:
            raise PlatformProtocolError("answer too large")
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > self._max_answer:
                raise PlatformProtocolError("answer too large")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _exchange(
        self, method: str, path: str, *, timeout: float, body: Any, headers: Mapping[str, str]
    ) -> tuple[int, bytes, Mapping[str, str]]:
        """One HTTP exchange; transport failures become PlatformUnavailable."""
        try:
            async with self._http().request(
                method,
                self._base + path,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                allow_redirects=False,
            ) as response:
                return response.status, await self._read(response), response.headers
        except TimeoutError:
            raise PlatformUnavailable(f"{method} {path}: timed out after {timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise PlatformUnavailable(f"{method} {path}: {type(exc).__name__}") from None

    @staticmethod
    def _retry_after(headers: Mapping[str, str]) -> float | None:
        try:
            return float(headers.get("Retry-After", ""))
        except ValueError:
            return None

    async def _with_retries(
        self, safe: bool, attempt_once: Callable[[], Awaitable[bytes]]
    ) -> bytes:
        attempts = self._retry.attempts if safe else 1
        for attempt in range(attempts):
            try:
                return await attempt_once()
            except PlatformUnavailable as exc:
                if attempt + 1 >= attempts:
                    raise
                delay = self._retry.delay(attempt, getattr(exc, "retry_after", None))
                logger.info("platform unavailable (%s); retry %d in %.2f s",
                            exc, attempt + 1, delay)
                await self._sleep(delay)
        raise AssertionError("unreachable")

    async def _access_token(self) -> str:
        async with self._token_lock:
            if self._token is not None and self._clock() < self._token.renew_at:
                return self._token.value
            form = {
                "grant_type": "client_credentials",
                "client_id": self._device_id,
                "client_secret": self._secret,
            }

            async def once() -> bytes:
                status, body, headers = await self._exchange(
                    "POST", TOKEN_PATH, timeout=self._timeouts.token, body=form,
                    headers={"Accept": "application/json"},
                )
                if 200 <= status < 300:
                    return body
                error = error_for(status, body)
                if error_code_of(body) == ErrorCode.INVALID_CLIENT:
                    logger.error("platform refused this device's credential (device %s)",
                                 self._device_id)
                if isinstance(error, PlatformUnavailable):
                    error.retry_after = self._retry_after(headers)  # type: ignore[attr-defined]
                raise error

            answer = decode(TokenAnswer, await self._with_retries(True, once))
            if answer.token_type.lower() != "bearer":
                raise PlatformProtocolError("token is not a bearer token")
            margin = min(60.0, answer.expires_in / 10)
            self._token = _Token(answer.access_token, self._clock() + answer.expires_in - margin)
            return answer.access_token

    async def _call(self, call: _Call) -> bytes:
        """A bearer-authenticated call; the 2xx body, or a typed error."""

        async def once() -> bytes:
            renewed = False
            while True:
                token = await self._access_token()
                headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                           **call.headers}
                if call.body is not None:
                    headers["Content-Type"] = "application/json"
                started = time.monotonic()
                status, body, answer_headers = await self._exchange(
                    call.method, call.path, timeout=call.timeout, body=call.body, headers=headers
                )
                logger.debug("%s %s → %d in %.0f ms", call.method, _log_path(call.path), status,
                             (time.monotonic() - started) * 1000)
                if 200 <= status < 300:
                    return body
                if (status == 401 and not renewed
                        and error_code_of(body) == ErrorCode.INVALID_TOKEN):
                    # Refused before any processing: fetch a new token and send again.
                    async with self._token_lock:
                        if self._token is not None and self._token.value == token:
                            self._token = None
                    renewed = True
                    continue
                error = error_for(status, body)
                if isinstance(error, PlatformUnavailable):
                    retry_after = self._retry_after(answer_headers)
                    error.retry_after = retry_after  # type: ignore[attr-defined]
                raise error

        return await self._with_retries(call.retry_safe, once)

    @staticmethod
    def _json_body(model: BaseModel) -> bytes:
        return model.model_dump_json().encode("utf-8")

    # -- the contract -----------------------------------------------------------------------

    async def verify_code(self, code: str, *, item_code: str) -> Identity:
        code = check_scanned_code(code, max_length=self._code_max_length)
        try:
            request = CodeVerifyRequest(code=code, device_id=self._device_id, item_code=item_code)
        except ValidationError:
            raise Rejected("item code does not fit the wire format") from None
        body = await self._call(_Call(
            "POST", f"{API_PREFIX}/codes/verify", self._timeouts.verify, self._json_body(request),
            retry_safe=False,  # single-use code: a repeat could only say "replayed"
        ))
        answer = decode(CodeVerifyAnswer, body)
        known = {str(t) for t in CertificateType}
        grant = answer.authorization
        try:
            return Identity.create(
                IdentitySource.SUFU_CODE,
                answer.holder.id_number,
                answer.holder.name,
                authorization=Authorization(
                    token=grant.token,
                    expires_at=self._clock() + grant.expires_in,
                    certificate_types=tuple(t for t in grant.certificate_types if t in known),
                ),
            )
        except InvalidIdNumber:
            raise PlatformProtocolError("holder's ID number is not valid") from None

    async def fetch_certificates(
        self,
        identity: Identity,
        types: Sequence[CertificateType],
        params: Mapping[str, str | int | bool] | None = None,
    ) -> list[Certificate]:
        wanted = list(dict.fromkeys(CertificateType(t) for t in types))
        if not wanted:
            return []
        request = CertificateQueryRequest(
            subject=subject_of(identity, now=self._clock()),
            types=[str(t) for t in wanted],
            params=dict(params or {}),
        )
        body = await self._call(_Call(
            "POST", f"{API_PREFIX}/certificates/query", self._timeouts.certificates,
            self._json_body(request), retry_safe=True,
        ))
        answer = decode(CertificateQueryAnswer, body)
        certificates = []
        for record in answer.certificates:
            if record.type not in {str(t) for t in wanted}:
                logger.warning("platform sent a certificate type that was not asked for; ignored")
                continue
            certificates.append(certificate_from(record, holder_id_number=identity.id_number))
        return certificates

    async def submit(self, application: Application, *, idempotency_key: str) -> SubmissionReceipt:
        if not _IDEMPOTENCY_KEY.match(idempotency_key):
            raise ValueError("idempotency_key: 8-128 printable ASCII characters")
        try:
            request = ApplicationRequest(
                item_id=application.item_id,
                item_code=application.item_code,
                applicant=subject_of(application.applicant, now=self._clock()),
                fields=dict(application.fields),
                commitment_accepted=application.commitment_accepted,
                created_at=application.created_at,
            )
        except ValidationError:
            raise Rejected("application does not fit the wire format") from None
        body = await self._call(_Call(
            "POST", f"{API_PREFIX}/applications", self._timeouts.submit, self._json_body(request),
            headers={IDEMPOTENCY_HEADER: idempotency_key}, retry_safe=True,
        ))
        answer = decode(CaseAnswer, body)
        return SubmissionReceipt(answer.case_number, _case_state(answer.state), answer.received_at)

    async def query_case(self, case_number: str) -> CaseStatus:
        if not _CASE_NUMBER.match(case_number):
            raise NotFound("not a case number")
        body = await self._call(_Call(
            "GET", f"{API_PREFIX}/cases/{quote(case_number, safe='')}", self._timeouts.case,
            retry_safe=True,
        ))
        answer = decode(CaseAnswer, body)
        return CaseStatus(
            case_number=answer.case_number,
            item_code=answer.item_code,
            state=_case_state(answer.state),
            updated_at=answer.updated_at,
            history=tuple(CaseEvent(_case_state(e.state), e.at, e.note) for e in answer.history),
        )

    async def query(
        self, item_code: str, identity: Identity, params: Mapping[str, Any]
    ) -> QueryResult:
        try:
            request = QueryRequest(subject=subject_of(identity, now=self._clock()),
                                   params=dict(params))
        except ValidationError:
            raise Rejected("query parameters do not fit the wire format") from None
        body = await self._call(_Call(
            "POST", f"{API_PREFIX}/queries/{quote(item_code, safe='')}", self._timeouts.query,
            self._json_body(request), retry_safe=True,
        ))
        answer = decode(QueryAnswer, body)
        return QueryResult(answer.item_code, answer.as_of, answer.summary, answer.rows)

    async def rate(self, rating: Rating) -> None:
        try:
            request = RatingRequest(
                item_code=rating.item_code,
                case_number=rating.case_number,
                level=rating.level.code_reporting,
                indicators={k: v.code_reporting for k, v in rating.indicators.items()},
                reasons=list(rating.reasons),
                channel=rating.channel,
                first=rating.first,
                rated_at=rating.rated_at,
            )
        except ValidationError:
            raise Rejected("rating does not fit the wire format") from None
        # The same rating always gets the same key, so a repeat after a lost answer is
        # recorded once.
        key = hashlib.sha256(
            self._device_id.encode() + b"|" + canonical_json(request.model_dump(mode="json"))
        ).hexdigest()[:40]
        body = await self._call(_Call(
            "POST", f"{API_PREFIX}/ratings", self._timeouts.rating, self._json_body(request),
            headers={IDEMPOTENCY_HEADER: f"rating-{key}"}, retry_safe=True,
        ))
        decode(RatingAnswer, body)

    async def catalogue(self) -> SignedCatalogue:
        body = await self._call(_Call(
            "GET", f"{API_PREFIX}/catalogue", self._timeouts.catalogue, retry_safe=True
        ))
        answer = decode(CatalogueAnswer, body)
        payload = _b64(answer.payload_base64, "catalogue payload")
        signature = _b64(answer.signature_base64, "catalogue signature")
        if self._catalogue_keys is not None:
            key = self._catalogue_keys.get(answer.key_id)
            if key is None or not verify_ed25519(key, payload, signature):
                raise PlatformProtocolError("catalogue signature does not verify")
        content = decode(CataloguePayload, payload)
        if content.version != answer.version or content.issued_at != answer.issued_at:
            raise PlatformProtocolError("catalogue envelope and payload disagree")
        return SignedCatalogue(
            version=content.version,
            issued_at=content.issued_at,
            entries=tuple(
                CatalogueEntry(e.item_id, e.item_code, e.version, e.enabled)
                for e in content.entries
            ),
            payload=payload,
            signature=signature,
            key_id=answer.key_id,
        )


def verify_ed25519(public_key: bytes, data: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True


def _log_path(path: str) -> str:
    """Paths carry case numbers and item codes only; still keep logs short."""
    return path if len(path) <= 80 else path[:77] + "..."
