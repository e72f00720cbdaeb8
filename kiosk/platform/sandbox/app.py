"""The sandbox platform's aiohttp application: the gateway-shaped API (wire.py), the
certificate verification page and the sandbox's test hooks, over the SQLite store.

State lives in typed app keys; the store and keys are opened and closed in one cleanup
context. The clock is injected (`create_app(..., clock=)`) so tests can expire codes and
move cases on without waiting. Logs carry citizen handles and masked values only: never a
code, a token, a name or an ID number.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from kiosk.platform.api import CaseState, CertificateType, RatingLevel
from kiosk.platform.sandbox import cases as case_rules
from kiosk.platform.sandbox import queries
from kiosk.platform.sandbox.catalogue import (
    CATALOGUE_VERSION,
    SigningKey,
    catalogue_payload,
    item_by_code,
    verify,
)
from kiosk.platform.sandbox.certificates import (
    DEFAULT_FONT,
    ParameterError,
    holds,
    metadata,
    parameter_rows,
    render_pdf,
    render_verify_page,
    variant_of,
)
from kiosk.platform.sandbox.codes import (
    DEFAULT_TTL_S,
    CodeMinter,
    CodeStatus,
    code_hash,
    load_or_create_key,
    status_of,
)
from kiosk.platform.sandbox.phone import render_index, render_phone_page
from kiosk.platform.sandbox.seed import CITIZENS
from kiosk.platform.sandbox.store import (
    CaseRow,
    CertificateRow,
    Citizen,
    IdempotencyConflict,
    SandboxStore,
)
from kiosk.platform.wire import (
    API_PREFIX,
    IDEMPOTENCY_HEADER,
    SANDBOX_PREFIX,
    TOKEN_PATH,
    ApplicationRequest,
    AuthorizationGrant,
    CaseAdvanceRequest,
    CaseAnswer,
    CaseEventWire,
    CatalogueAnswer,
    CatalogueKeysAnswer,
    CertificateFile,
    CertificateQueryAnswer,
    CertificateQueryRequest,
    CertificateRecord,
    CodeVerifyAnswer,
    CodeVerifyRequest,
    ErrorAnswer,
    ErrorCode,
    ErrorDetail,
    Holder,
    IssuedCode,
    PublicKey,
    QueryAnswer,
    QueryRequest,
    RatingAnswer,
    RatingRequest,
    Subject,
    TokenAnswer,
    canonical_json,
)
from kiosk.privacy import mask_name

logger = logging.getLogger("kiosk.platform.sandbox")

Clock = Callable[[], float]
_DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{8,128}$")
_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class SandboxSettings:
    data_dir: Path
    db_path: Path | None = None  # default: <data_dir>/sandbox.sqlite3
    # Every device id is accepted with this one client secret (sandbox only).
    client_secret: str = "sandbox-secret"
    # Base of the verify URLs printed on certificates; default: the request's own origin.
    public_url: str | None = None
    code_ttl_s: float = DEFAULT_TTL_S
    access_token_ttl_s: int = 7200
    authorization_ttl_s: int = 900
    case_schedule: case_rules.CaseSchedule = field(default_factory=case_rules.CaseSchedule)
    font_path: Path = DEFAULT_FONT
    # Seconds the sandbox waits, after storing a new case, before answering: a slow gateway,
    # for demos of "queued" receipts and for crash tests (the case exists, the kiosk has
    # not heard of it yet).
    submit_delay_s: float = 0.0

    @property
    def database(self) -> Path:
        return self.db_path or self.data_dir / "sandbox.sqlite3"


SETTINGS = web.AppKey("settings", SandboxSettings)
CLOCK = web.AppKey("clock", Callable[[], float])
STORE = web.AppKey("store", SandboxStore)
CODES = web.AppKey("codes", CodeMinter)
SIGNING_KEY = web.AppKey("signing_key", SigningKey)
CATALOGUE = web.AppKey("catalogue", CatalogueAnswer)


class ApiError(Exception):
    """A refusal with an HTTP status and a wire error code; the message has no personal data."""

    def __init__(
        self, status: int, code: ErrorCode, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _json(
    model: BaseModel, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=model.model_dump_json().encode("utf-8"),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", headers={"Cache-Control": "no-store"}
    )


@web.middleware
async def _errors(request: web.Request, handler) -> web.StreamResponse:
    request_id = uuid.uuid4().hex[:16]
    try:
        response = await handler(request)
    except ApiError as exc:
        response = _json(
            ErrorAnswer(error=ErrorDetail(
                code=exc.code, message=exc.message, request_id=request_id
            )),
            exc.status,
            exc.headers,
        )
    except ValidationError as exc:
        # Field locations and rules only: pydantic's default text would echo the input.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        response = _json(
            ErrorAnswer(error=ErrorDetail(
                code=ErrorCode.INVALID_REQUEST, message=problems[:500], request_id=request_id
            )),
            400,
        )
    except web.HTTPException:
        raise
    except Exception as exc:  # the type only: a message could hold personal data
        logger.error("unhandled %s in %s %s", type(exc).__name__, request.method, request.path)
        response = _json(
            ErrorAnswer(error=ErrorDetail(
                code=ErrorCode.INTERNAL, message="internal error", request_id=request_id
            )),
            500,
        )
    response.headers["X-Request-Id"] = request_id
    return response


async def _body(request: web.Request, model: type[_M]) -> _M:
    if request.content_type != "application/json":
        raise ApiError(415, ErrorCode.INVALID_REQUEST, "expected application/json")
    return model.model_validate_json(await request.read())


def _device(request: web.Request) -> str:
    """The device behind the bearer token, or 401 invalid_token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, ErrorCode.INVALID_TOKEN, "bearer token required", challenge)
    row = request.app[STORE].access_token(_hash(token.strip()))
    if row is None or row[1] <= request.app[CLOCK]():
        raise ApiError(401, ErrorCode.INVALID_TOKEN, "token unknown or expired", challenge)
    return row[0]


def _idempotency_key(request: web.Request, *, required: bool) -> str | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None and not required:
        return None
    if key is None or not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(400, ErrorCode.INVALID_REQUEST,
                       f"{IDEMPOTENCY_HEADER}: 8-128 printable ASCII characters required")
    return key


def _subject_citizen(
    request: web.Request, subject: Subject, device: str, *, types: Sequence[str] = ()
) -> Citizen:
    """Who a request is about, checked against its authority: the scoped authorisation of
    a 苏服码, or (card identities) the citizen register."""
    store, now = request.app[STORE], request.app[CLOCK]()
    if subject.source == "code":
        if not subject.authorization_token:
            raise ApiError(403, ErrorCode.AUTHORIZATION_INVALID,
                           "a 苏服码 subject needs its authorization token")
        grant = store.authorization(_hash(subject.authorization_token))
        if grant is None or grant.expires_at <= now or grant.device_id != device:
            raise ApiError(403, ErrorCode.AUTHORIZATION_INVALID,
                           "authorization unknown, expired or for another device")
        citizen = store.citizen(grant.citizen_id)
        if citizen is None or citizen.id_number != subject.id_number:
            raise ApiError(403, ErrorCode.AUTHORIZATION_INVALID,
                           "authorization is for another holder")
        if set(types) - set(grant.certificate_types):
            raise ApiError(403, ErrorCode.AUTHORIZATION_SCOPE,
                           "authorization does not cover these certificate types")
        return citizen
    citizen = store.citizen_by_id_number(subject.id_number)
    if citizen is None or citizen.name != subject.name:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no citizen with this ID number and name")
    return citizen


# -- OAuth token -------------------------------------------------------------------------------


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={"Cache-Control": "no-store", **(
            {"WWW-Authenticate": 'Basic realm="sandbox"'} if status == 401 else {}
        )},
    )


async def token(request: web.Request) -> web.Response:
    form = await request.post()
    client_id, secret = form.get("client_id"), form.get("client_secret")
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "basic":  # RFC 6749 §2.3.1 allows either
        try:
            client_id, _, secret = base64.b64decode(credentials).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return _oauth_error(401, "invalid_client", "malformed basic credentials")
    if form.get("grant_type") != "client_credentials":
        return _oauth_error(400, "unsupported_grant_type", "only client_credentials")
    settings = request.app[SETTINGS]
    if (
        not isinstance(client_id, str)
        or not _DEVICE_ID.match(client_id)
        or not isinstance(secret, str)
        or not hmac.compare_digest(secret.encode(), settings.client_secret.encode())
    ):
        logger.warning("token refused for a device credential")
        return _oauth_error(401, "invalid_client", "device credential refused")
    access_token = secrets.token_urlsafe(32)
    now = request.app[CLOCK]()
    request.app[STORE].add_access_token(
        _hash(access_token), client_id, now + settings.access_token_ttl_s
    )
    logger.info("access token issued to device %s", client_id)
    return _json(
        TokenAnswer(access_token=access_token, token_type="Bearer",
                    expires_in=settings.access_token_ttl_s, scope="kiosk"),
        headers={"Cache-Control": "no-store"},
    )


# -- 苏服码 ----------------------------------------------------------------------------------------


def issue_code(app: web.Application, citizen_id: str) -> str:
    """A fresh code for a citizen (the phone page and the test hook)."""
    code = app[CODES].mint()
    app[STORE].add_code(code_hash(code), citizen_id, app[CLOCK]())
    logger.info("苏服码 issued for citizen %s", citizen_id)
    return code


async def verify_code(request: web.Request) -> web.Response:
    device = _device(request)
    req = await _body(request, CodeVerifyRequest)
    if req.device_id != device:
        raise ApiError(403, ErrorCode.INVALID_REQUEST, "device_id does not match the token")
    item = item_by_code(req.item_code)
    if item is None:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, "unknown item code")
    app, now = request.app, request.app[CLOCK]()
    store = app[STORE]
    if not app[CODES].is_authentic(req.code):
        logger.warning("苏服码 refused: not authentic (len=%d) from device %s", len(req.code), device)
        raise ApiError(400, ErrorCode.CODE_INVALID, "not a code this platform issued")
    digest = code_hash(req.code)
    row = store.code(digest)
    if row is None:
        logger.warning("苏服码 refused: authentic but unknown, from device %s", device)
        raise ApiError(400, ErrorCode.CODE_INVALID, "not a code this platform issued")
    status = status_of(row.issued_at, row.used_at, now, app[SETTINGS].code_ttl_s)
    if status is CodeStatus.VALID and not store.use_code(digest, now, device):
        status = CodeStatus.USED  # another request used it a moment ago
    if status is CodeStatus.USED:
        logger.warning("苏服码 refused: replayed, citizen %s, device %s", row.citizen_id, device)
        raise ApiError(409, ErrorCode.CODE_REPLAYED, "code already used")
    if status is CodeStatus.EXPIRED:
        logger.info("苏服码 refused: expired, citizen %s, device %s", row.citizen_id, device)
        raise ApiError(410, ErrorCode.CODE_EXPIRED, "code expired")
    citizen = store.citizen(row.citizen_id)
    assert citizen is not None  # foreign key
    grant_token = secrets.token_urlsafe(32)
    ttl = app[SETTINGS].authorization_ttl_s
    types = [str(t) for t in item.certificate_types]
    store.add_authorization(_hash(grant_token), citizen.citizen_id, device, item.item_code, types,
                            now + ttl)
    logger.info("苏服码 verified: citizen %s (%s), item %s, device %s",
                citizen.citizen_id, mask_name(citizen.name), item.item_code, device)
    return _json(CodeVerifyAnswer(
        holder=Holder(name=citizen.name, id_number=citizen.id_number),
        authorization=AuthorizationGrant(
            token=grant_token, expires_in=ttl, certificate_types=types
        ),
    ))


# -- certificates --------------------------------------------------------------------------


def _verify_base(request: web.Request) -> str:
    return request.app[SETTINGS].public_url or str(request.url.origin())


async def _issue_certificate(
    request: web.Request,
    citizen: Citizen,
    type_: CertificateType,
    today: dt.date,
    params: Mapping[str, Any],
) -> CertificateRow:
    app = request.app
    variant = variant_of(params)
    meta = metadata(citizen_id=citizen.citizen_id, id_number=citizen.id_number,
                    data=citizen.data, type_=type_, issued_on=today,
                    verify_base_url=_verify_base(request), variant=variant)
    render = functools.partial(render_pdf, name=citizen.name, id_number=citizen.id_number,
                               data=citizen.data, meta=meta, font_path=app[SETTINGS].font_path,
                               params=params)
    pdf = await asyncio.get_running_loop().run_in_executor(None, render)
    key = app[SIGNING_KEY]
    row = CertificateRow(
        licence_code=meta["licence_code"], citizen_id=citizen.citizen_id, type=str(type_),
        issued_on=today.isoformat(), meta=meta, pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(), signature=key.sign(pdf), key_id=key.key_id,
        variant=variant,
    )
    return app[STORE].add_certificate(row)


def _record(row: CertificateRow) -> CertificateRecord:
    return CertificateRecord(
        **row.meta,
        file=CertificateFile(
            content_base64=base64.b64encode(row.pdf).decode("ascii"),
            sha256=row.sha256,
            signature_algorithm="Ed25519",
            signature_base64=base64.b64encode(row.signature).decode("ascii"),
            key_id=row.key_id,
        ),
    )


async def query_certificates(request: web.Request) -> web.Response:
    device = _device(request)
    req = await _body(request, CertificateQueryRequest)
    known = {str(t) for t in CertificateType}
    if unknown := [t for t in req.types if t not in known]:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, f"unknown certificate types: {unknown}")
    types = list(dict.fromkeys(req.types))
    citizen = _subject_citizen(request, req.subject, device, types=types)
    today = dt.date.fromtimestamp(request.app[CLOCK]())
    try:
        parameter_rows(req.params, today)  # refuse a wrong parameter before issuing anything
    except ParameterError as exc:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, str(exc)) from None
    variant = variant_of(req.params)
    store = request.app[STORE]
    records = []
    for name in types:
        type_ = CertificateType(name)
        if not holds(citizen.data, type_):
            continue
        row = store.certificate(citizen.citizen_id, name, today.isoformat(), variant)
        if row is None:
            row = await _issue_certificate(request, citizen, type_, today, req.params)
        records.append(_record(row))
    logger.info("certificates for citizen %s: %d of %d types, device %s",
                citizen.citizen_id, len(records), len(types), device)
    return _json(CertificateQueryAnswer(certificates=records))


async def verify_page(request: web.Request) -> web.Response:
    app = request.app
    row = app[STORE].certificate_by_licence(request.match_info["licence_code"])
    if row is None:
        return _html(render_verify_page(None), 404)
    citizen = app[STORE].citizen(row.citizen_id)
    key = app[SIGNING_KEY]
    valid = row.key_id == key.key_id and verify(key.public_key_bytes, row.pdf, row.signature)
    return _html(render_verify_page(
        row.meta, holder_name=citizen.name if citizen else "", sha256=row.sha256,
        key_id=row.key_id, signature_valid=valid,
    ))


# -- applications and cases ---------------------------------------------------------------


def _case_answer(case: CaseRow) -> CaseAnswer:
    return CaseAnswer(
        case_number=case.case_number, item_code=case.item_code, state=case.state,
        received_at=case.received_at, updated_at=case.updated_at,
        history=[CaseEventWire(state=s, at=at, note=note) for s, at, note in case.history],
    )


def _current_case(app: web.Application, case_number: str) -> CaseRow | None:
    """The case with every transition that is due by now applied."""
    store = app[STORE]
    case = store.case(case_number)
    if case is None:
        return None
    due = case_rules.due_transitions(
        app[SETTINGS].case_schedule, CaseState(case.state), case.received_at,
        case.history[-1][1], app[CLOCK](),
    )
    for state, at in due:
        store.add_case_event(case_number, str(state), at, case_rules.NOTES[state])
    return store.case(case_number) if due else case


async def submit_application(request: web.Request) -> web.Response:
    device = _device(request)
    key = _idempotency_key(request, required=True)
    assert key is not None
    req = await _body(request, ApplicationRequest)
    item = item_by_code(req.item_code)
    if item is None or item.kind != "submit" or item.item_id != req.item_id:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, "not an item that takes applications")
    if not req.commitment_accepted:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, "the commitment (告知承诺) was not accepted")
    if problems := case_rules.field_problems(item.item_id, req.fields):
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, "; ".join(problems))
    citizen = _subject_citizen(request, req.applicant, device)
    request_hash = hashlib.sha256(canonical_json(req.model_dump(mode="json"))).hexdigest()
    store, now = request.app[STORE], request.app[CLOCK]()
    try:
        with store.transaction():
            number = store.idempotent_result("application", device, key, request_hash)
            created = number is None
            if number is None:
                day = dt.date.fromtimestamp(now)
                number = case_rules.case_number(day, store.next_case_serial(day.isoformat()))
                store.add_case(number, item.item_code, item.item_id, citizen.citizen_id, device,
                               str(CaseState.RECEIVED), dict(req.fields), now,
                               case_rules.NOTES[CaseState.RECEIVED])
                store.remember_idempotent("application", device, key, request_hash, number, now)
    except IdempotencyConflict:
        raise ApiError(409, ErrorCode.IDEMPOTENCY_CONFLICT,
                       "this Idempotency-Key was used for a different application") from None
    case = _current_case(request.app, number)
    assert case is not None
    logger.info("application %s: case %s, citizen %s, device %s",
                "received" if created else "repeated", number, citizen.citizen_id, device)
    if created and request.app[SETTINGS].submit_delay_s:
        await asyncio.sleep(request.app[SETTINGS].submit_delay_s)
    return _json(_case_answer(case), 201 if created else 200)


async def get_case(request: web.Request) -> web.Response:
    _device(request)
    case = _current_case(request.app, request.match_info["case_number"])
    if case is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such case")
    return _json(_case_answer(case))


async def advance_case(request: web.Request) -> web.Response:
    """Test hook: move a case to its next state (or to `to`) now."""
    number = request.match_info["case_number"]
    raw = await request.read()
    req = CaseAdvanceRequest.model_validate_json(raw) if raw.strip() else CaseAdvanceRequest()
    case = _current_case(request.app, number)
    if case is None:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such case")
    try:
        target = case_rules.manual_transition(
            CaseState(case.state), CaseState(req.to) if req.to else None
        )
    except ValueError as exc:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, str(exc)) from None
    now = max(request.app[CLOCK](), case.history[-1][1])
    request.app[STORE].add_case_event(number, str(target), now,
                                      req.note or case_rules.NOTES[target])
    updated = request.app[STORE].case(number)
    assert updated is not None
    return _json(_case_answer(updated))


# -- queries and ratings ------------------------------------------------------------------------


async def run_query(request: web.Request) -> web.Response:
    device = _device(request)
    item = item_by_code(request.match_info["item_code"])
    if item is None or item.kind != "query":
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, "not a query item")
    req = await _body(request, QueryRequest)
    citizen = _subject_citizen(request, req.subject, device)
    now = request.app[CLOCK]()
    today = dt.date.fromtimestamp(now)
    try:
        if item.item_id == "ssc_payment_records":
            summary, rows = queries.ssc_payments(citizen.data, req.params, today)
        elif item.item_id == "housing_fund_balance":
            summary, rows = queries.housing_fund_balance(citizen.data, today)
        else:  # case_progress
            number = req.params.get("case_number")
            case = _current_case(request.app, number) if isinstance(number, str) else None
            if case is None or case.citizen_id != citizen.citizen_id:
                raise queries.NoSuchRecord("case")
            summary, rows = queries.case_progress(
                case.case_number, item_name_for(case.item_code), case.state, case.received_at,
                case.updated_at, case.history,
            )
    except queries.QueryInputError as exc:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, str(exc)) from None
    except queries.NoSuchRecord:
        raise ApiError(404, ErrorCode.NOT_FOUND, "no such record for this citizen") from None
    logger.info("query %s for citizen %s, device %s", item.item_code, citizen.citizen_id, device)
    return _json(QueryAnswer(item_code=item.item_code, as_of=now, summary=summary, rows=rows))


def item_name_for(item_code: str) -> str:
    item = item_by_code(item_code)
    return item.name_zh if item else item_code


def _level(code_reporting: int) -> RatingLevel:
    return next(level for level in RatingLevel if level.code_reporting == code_reporting)


async def rate(request: web.Request) -> web.Response:
    device = _device(request)
    key = _idempotency_key(request, required=False)
    req = await _body(request, RatingRequest)
    if item_by_code(req.item_code) is None:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, "unknown item code")
    store, now = request.app[STORE], request.app[CLOCK]()
    if req.case_number is not None and store.case(req.case_number) is None:
        raise ApiError(422, ErrorCode.VALIDATION_FAILED, "unknown case number")
    level = _level(req.level)
    request_hash = hashlib.sha256(canonical_json(req.model_dump(mode="json"))).hexdigest()
    try:
        with store.transaction():
            existing = (
                store.idempotent_result("rating", device, key, request_hash) if key else None
            )
            if existing is None:
                rating_id = str(store.add_rating(
                    device, req.item_code, req.case_number, str(level), level.code_reporting,
                    level.code_gbt, {k: str(_level(v)) for k, v in req.indicators.items()},
                    req.reasons, req.channel, req.first, req.rated_at, now, level.is_bad,
                ))
                if key:
                    store.remember_idempotent("rating", device, key, request_hash, rating_id, now)
            else:
                rating_id = existing
    except IdempotencyConflict:
        raise ApiError(409, ErrorCode.IDEMPOTENCY_CONFLICT,
                       "this Idempotency-Key was used for a different rating") from None
    logger.info("rating %s (%s) for item %s, device %s", rating_id, level, req.item_code, device)
    return _json(RatingAnswer(rating_id=rating_id, follow_up_required=level.is_bad))


# -- catalogue -----------------------------------------------------------------------------------


async def get_catalogue(request: web.Request) -> web.Response:
    _device(request)
    return _json(request.app[CATALOGUE])


async def get_catalogue_keys(request: web.Request) -> web.Response:
    key = request.app[SIGNING_KEY]
    return _json(CatalogueKeysAnswer(keys=[PublicKey(
        key_id=key.key_id, public_key_base64=base64.b64encode(key.public_key_bytes).decode()
    )]))


# -- sandbox pages and hooks ----------------------------------------------------------------------


async def index(request: web.Request) -> web.Response:
    return _html(render_index(request.app[STORE].citizens()))


def _citizen_or_404(request: web.Request) -> Citizen:
    citizen = request.app[STORE].citizen(request.match_info["citizen_id"])
    if citizen is None:
        raise web.HTTPNotFound(text="no such test citizen")
    return citizen


async def phone_page(request: web.Request) -> web.Response:
    citizen = _citizen_or_404(request)
    code = issue_code(request.app, citizen.citizen_id)
    return _html(render_phone_page(citizen, code, request.app[SETTINGS].code_ttl_s))


async def new_code(request: web.Request) -> web.Response:
    citizen = _citizen_or_404(request)
    code = issue_code(request.app, citizen.citizen_id)
    return _json(IssuedCode(citizen_id=citizen.citizen_id, code=code,
                            expires_in=int(request.app[SETTINGS].code_ttl_s)))


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def root(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{SANDBOX_PREFIX}/")


# -- the application --------------------------------------------------------------------------


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Store, code key, signing key and the signed catalogue: open at start, closed at end."""
    settings = app[SETTINGS]
    store = SandboxStore(settings.database)
    added = store.seed(CITIZENS)
    app[STORE] = store
    app[CODES] = CodeMinter(load_or_create_key(settings.data_dir / "code_hmac.key"))
    key = SigningKey.load_or_create(settings.data_dir / "signing_ed25519.pem")
    app[SIGNING_KEY] = key
    issued_at = app[CLOCK]()
    payload = catalogue_payload(issued_at)
    app[CATALOGUE] = CatalogueAnswer(
        version=CATALOGUE_VERSION,
        issued_at=issued_at,
        key_id=key.key_id,
        payload_base64=base64.b64encode(payload).decode("ascii"),
        signature_base64=base64.b64encode(key.sign(payload)).decode("ascii"),
    )
    logger.info("sandbox platform ready: %d test citizens (%d new), signing key %s",
                len(store.citizens()), added, key.key_id)
    try:
        yield
    finally:
        store.close()


def create_app(settings: SandboxSettings, *, clock: Clock = time.time) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=1024 * 1024)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app.cleanup_ctx.append(_resources)
    app.router.add_post(TOKEN_PATH, token)
    app.router.add_post(f"{API_PREFIX}/codes/verify", verify_code)
    app.router.add_post(f"{API_PREFIX}/certificates/query", query_certificates)
    app.router.add_post(f"{API_PREFIX}/applications", submit_application)
    app.router.add_get(f"{API_PREFIX}/cases/{{case_number}}", get_case)
    app.router.add_post(f"{API_PREFIX}/queries/{{item_code}}", run_query)
    app.router.add_post(f"{API_PREFIX}/ratings", rate)
    app.router.add_get(f"{API_PREFIX}/catalogue", get_catalogue)
    app.router.add_get(f"{API_PREFIX}/catalogue/keys", get_catalogue_keys)
    app.router.add_get("/verify/{licence_code}", verify_page)
    app.router.add_get("/", root)
    app.router.add_get("/healthz", health)
    app.router.add_get(f"{SANDBOX_PREFIX}/", index)
    app.router.add_get(f"{SANDBOX_PREFIX}/phone/{{citizen_id}}", phone_page)
    app.router.add_post(f"{SANDBOX_PREFIX}/citizens/{{citizen_id}}/code", new_code)
    app.router.add_post(f"{SANDBOX_PREFIX}/cases/{{case_number}}/advance", advance_case)
    return app


def run(
    host: str,
    port: int,
    db_path: Path,
    *,
    data_dir: Path | None = None,
    public_url: str | None = None,
    client_secret: str = "sandbox-secret",
    submit_delay_s: float = 0.0,
) -> None:
    """Serve the sandbox until interrupted. Keys live beside the database unless
    `data_dir` says otherwise."""
    settings = SandboxSettings(
        data_dir=data_dir or db_path.parent,
        db_path=db_path,
        public_url=public_url,
        client_secret=client_secret,
        submit_delay_s=submit_delay_s,
    )
    web.run_app(create_app(settings), host=host, port=port, shutdown_timeout=5.0,
                print=lambda text: logger.info("%s", text.strip()))
