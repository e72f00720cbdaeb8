"""The fleet server's HTTP API: one route table, from which both the aiohttp router and the
OpenAPI document are built (fleet/server/openapi.py), so the two cannot drift.

Each `Route` says who may call it (nobody in particular, a signed kiosk, or an ops user of at
least some role), its body, query and response models and its largest body. One wrapper
(`_endpoint`) does the common work in a fixed order — size limit, authentication, body and
query validation — so every handler starts from checked input, and every refusal is a wire
`ApiError` with a stable code.
"""

from __future__ import annotations

import json
import re
from math import ceil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from aiohttp import web
from pydantic import BaseModel, ValidationError

from fleet.server import api_models as m
from fleet.server import ops, queries
from fleet.server import users as users_mod
from fleet.server.context import (
    CA,
    CLOCK,
    DB,
    EVALUATOR,
    INGEST,
    KEYS,
    REVOKED_CREDENTIALS,
    SETTINGS,
)
from fleet.server.enrolment import enrol
from fleet.server.errors import ApiProblem
from fleet.server.evaluator import refresh_pending_commands
from fleet.server.ingest import IngestUnavailable
from fleet.server.login_throttle import LoginThrottle, retry_text
from fleet.server.schema import commands, devices, events, sites
from fleet.server.users import User
from fleet.wire import (
    MAX_COMMAND_RESULT_BYTES,
    MAX_HEARTBEAT_BYTES,
    ApiError,
    Command,
    CommandResult,
    DeviceSessionRequest,
    DeviceSessionResponse,
    EnrolRequest,
    EnrolResponse,
    Heartbeat,
    HeartbeatAck,
    Site,
)
from provisioning.signing import DEVICE_REVOKED, REPLAYED

API = "/api/v1"
SESSION_COOKIE = "fleet_session"  # the dashboard's cookie session (users.issue_token "session")
MAX_ENROL_BYTES = 16 * 1024
MAX_OPS_BYTES = 64 * 1024
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}\Z")

Auth = Literal["none", "device", "user"]


@dataclass
class Call:
    """One request, after the wrapper's checks."""

    request: web.Request
    app: web.Application
    now: float
    raw: bytes = b""
    body: Any = None
    query: Any = None
    user: User | None = None
    device_id: str | None = None
    counter: int = 0
    path: dict[str, str] = field(default_factory=dict)

    @property
    def who(self) -> User:
        assert self.user is not None
        return self.user


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: Auth = "user"
    role: users_mod.Role = "viewer"
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    max_body: int = MAX_OPS_BYTES
    content_type: str = "application/json"  # of the response
    errors: tuple[int, ...] = ()  # besides those implied by auth/body/query/path params
    device_session: bool = True  # auth "device": a session MAC will do (else ECDSA only)

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)

    @property
    def error_statuses(self) -> list[int]:
        found = set(self.errors)
        if self.auth == "device":
            found |= {401}
        if self.auth == "user":
            found |= {401}
            if self.role != "viewer":
                found.add(403)
        if self.body is not None:
            found |= {400, 413, 422}
        if self.query is not None:
            found.add(422)
        if self.path_params:
            found.add(404)
        return sorted(found)


# --- helpers ------------------------------------------------------------------------------

def error_response(status: int, code: str, detail: str = "") -> web.Response:
    body = ApiError(error=code[:64], detail=detail[:500]).model_dump_json()
    return web.Response(status=status, body=body.encode(), content_type="application/json")


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(status=status, body=model.model_dump_json().encode(),
                        content_type="application/json")


async def _read_body(request: web.Request, limit: int) -> bytes:
    length = request.content_length
    if length is not None and length > limit:
        raise ApiProblem(413, "body_too_large", f"the body may be at most {limit} bytes")
    if length is not None:  # the common case, in one read: the length is already bounded
        return await request.read()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise ApiProblem(413, "body_too_large", f"the body may be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _validation_problem(exc: ValidationError, what: str) -> ApiProblem:
    errors = exc.errors(include_url=False, include_input=False)
    if any(e.get("type") == "json_invalid" for e in errors):
        return ApiProblem(400, "malformed_json", f"the {what} is not valid JSON")
    if any(tuple(e.get("loc", ())) == ("wire_version",) for e in errors):
        return ApiProblem(400, "wire_version", "this server speaks wire version 1")
    first = errors[0] if errors else {}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return ApiProblem(422, "invalid_" + what, f"{loc}: {first.get('msg', 'invalid')}"[:500])


def _parse_query(request: web.Request, model: type[BaseModel]) -> BaseModel:
    raw: dict[str, Any] = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) != 1:
            raise ApiProblem(422, "invalid_query", f"{key} given more than once")
        raw[key] = values[0]
    try:
        return model.model_validate_strings(raw)
    except ValidationError as exc:
        raise _validation_problem(exc, "query") from None


async def current_user(request: web.Request, now: float, *,
                       cookie_ok: bool = True) -> User | None:
    """The ops user behind a bearer token (API) or a session cookie (dashboard)."""
    db = request.app[DB]
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return await users_mod.user_for_token(db, token.strip(), "bearer", now=now)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and cookie_ok:
        return await users_mod.user_for_token(db, cookie, "session", now=now)
    return None


def _endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        call = Call(request=request, app=request.app, now=request.app[CLOCK]())
        for name in route.path_params:
            value = request.match_info.get(name, "")
            pattern = _USER_NAME if name == "name" else _IDENT
            if name == "alert_id":
                if not value.isdigit() or len(value) > 18:
                    raise ApiProblem(404, "not_found", "no such alert")
            elif not pattern.match(value):
                raise ApiProblem(404, "not_found", f"no such {name.removesuffix('_id')}")
            call.path[name] = value
        if route.body is not None:
            call.raw = await _read_body(request, route.max_body)
        if route.auth == "device":
            keys = request.app[KEYS]
            device = await keys.authenticate(
                request.headers, request.method, request.raw_path, call.raw,
                allow_session=route.device_session)
            call.device_id, call.counter = device.device_id, device.counter
        elif route.auth == "user":
            # A browser sends the session cookie with any request, including one another
            # site makes it send: through the API the cookie only reads (the dashboard's own
            # forms carry their CSRF check); changes need the bearer token.
            call.user = await current_user(request, call.now,
                                           cookie_ok=request.method in ("GET", "HEAD"))
            if call.user is None:
                raise ApiProblem(401, "unauthenticated", "log in first (POST /api/v1/auth/login)")
            if not call.user.has_role(route.role):
                raise ApiProblem(403, "forbidden", f"this needs the {route.role} role")
        if route.query is not None:
            call.query = _parse_query(request, route.query)
        if route.body is not None:
            try:
                call.body = route.body.model_validate_json(call.raw)
            except ValidationError as exc:
                raise _validation_problem(exc, "body") from None
        result = await route.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        return _json(result, route.status)

    handle.__name__ = route.operation_id
    return handle


# --- device endpoints ---------------------------------------------------------------------

async def _device_refusal(call: Call) -> ApiProblem:
    """Why the counter UPDATE matched no row: the kiosk was revoked, or this is a replay."""
    async with call.app[DB].engine.connect() as conn:
        row = (await conn.execute(sa.select(devices.c.revoked_at, devices.c.last_counter)
                                  .where(devices.c.id == call.device_id))).first()
    if row is None or row.revoked_at is not None:
        call.app[KEYS].mark_revoked(call.device_id or "")
        return ApiProblem(401, DEVICE_REVOKED, "this kiosk has been revoked")
    return ApiProblem(401, REPLAYED,
                      f"request counter {call.counter} is not above the last one seen "
                      f"({row.last_counter})")


async def enrol_device(call: Call) -> EnrolResponse:
    s = call.app[SETTINGS]
    return await enrol(call.app[DB], call.app[CA], call.body, now=call.now,
                       heartbeat_interval_s=s.heartbeat_interval_s,
                       bundle_signing_key_pem=s.bundle_signing_key_pem)


async def _accept_counter(conn: Any, call: Call) -> None:
    """Accept this request's counter in the caller's transaction (atomic: a replay or a
    revoked kiosk matches no row, and the transaction is rolled back with a 401)."""
    counted = await conn.execute(
        devices.update().where(devices.c.id == call.device_id,
                               devices.c.last_counter < call.counter,
                               devices.c.revoked_at.is_(None))
        .values(last_counter=call.counter))
    if counted.rowcount != 1:
        await conn.rollback()
        raise await _device_refusal(call)


async def _count_request(call: Call) -> None:
    """Accept this request's counter in its own transaction, for endpoints that store
    nothing else."""
    async with call.app[DB].engine.begin() as conn:
        await _accept_counter(conn, call)


async def open_device_session(call: Call) -> DeviceSessionResponse:
    """One ECDSA-signed handshake; the kiosk's later requests carry an HMAC under the
    session instead of a signature (provisioning/sessions.py)."""
    body: DeviceSessionRequest = call.body
    await _count_request(call)
    try:
        return call.app[KEYS].open_session(call.device_id or "", body.kex_public, call.now)
    except ValueError:
        raise ApiProblem(422, "invalid_body", "kex_public is not a usable X25519 public "
                                              "key") from None


async def post_heartbeat(call: Call) -> HeartbeatAck:
    hb: Heartbeat = call.body
    try:
        outcome = await call.app[INGEST].submit(
            call.device_id or "", call.counter, hb, call.raw.decode("utf-8"), call.now)
    except IngestUnavailable:
        raise ApiProblem(503, "unavailable", "the server cannot store heartbeats right now; "
                                             "retry later") from None
    if not outcome.accepted:
        raise await _device_refusal(call)
    # The interval the kiosk should use from now on is the server's (changing the setting
    # reaches every kiosk at its next heartbeat); its deadlines follow the one it declared.
    return HeartbeatAck(server_time=call.app[CLOCK](),
                        interval_s=call.app[SETTINGS].heartbeat_interval_s,
                        commands=outcome.commands,
                        revoked_credentials=await call.app[REVOKED_CREDENTIALS].ids())


async def post_command_result(call: Call) -> m.Ok:
    result: CommandResult = call.body
    command_id = call.path["command_id"]
    if result.command_id != command_id:
        raise ApiProblem(422, "invalid_body", "command_id differs from the URL's")
    db = call.app[DB]
    async with db.engine.begin() as conn:
        await _accept_counter(conn, call)
        row = (await conn.execute(sa.select(commands.c.device_id, commands.c.result_received_at)
                                  .where(commands.c.id == command_id))).first()
        if row is None or row.device_id != call.device_id:
            raise ApiProblem(404, "command_unknown", "no such command for this kiosk")
        if row.result_received_at is not None:
            raise ApiProblem(409, "command_finished", "this command's result is already stored")
        await conn.execute(commands.update().where(commands.c.id == command_id).values(
            status=result.status, detail=result.detail, finished_at=result.finished_at,
            result_received_at=call.now,
            data=json.dumps(result.data, ensure_ascii=False) if result.data else None))
        await refresh_pending_commands(conn, call.device_id or "")
        await conn.execute(events.insert().values(ops.event_row(
            "command_result", call.now, call.device_id, command_id=command_id,
            status=result.status, detail=result.detail)))
    return m.Ok()


# --- auth and users -----------------------------------------------------------------------

async def login(call: Call) -> m.LoginResponse:
    body: m.LoginRequest = call.body
    db = call.app[DB]
    throttle = LoginThrottle(db)
    wait = await throttle.retry_after(body.username, call.now)
    if wait > 0:
        raise ApiProblem(429, "too_many_attempts",
                         f"too many failed logins for this user: try again in "
                         f"{retry_text(wait)[1]}", headers={"Retry-After": str(ceil(wait))})
    user = await users_mod.check_credentials(db, body.username, body.password)
    if user is None:
        await throttle.failed(body.username, call.now)
        raise ApiProblem(401, "bad_credentials", "wrong user name or password")
    await throttle.succeeded(body.username)
    token, expires_at = await users_mod.issue_token(
        db, user, "bearer", ttl_s=call.app[SETTINGS].session_ttl_s, now=call.now)
    return m.LoginResponse(token=token, expires_at=expires_at, user=m.UserInfo(
        name=user.name, role=user.role, regions=list(user.regions)))


async def logout(call: Call) -> m.Ok:
    _, _, token = call.request.headers.get("Authorization", "").partition(" ")
    if token.strip():
        await users_mod.revoke_token(call.app[DB], token.strip())
    return m.Ok()


async def whoami(call: Call) -> m.UserInfo:
    return m.UserInfo(name=call.who.name, role=call.who.role, regions=list(call.who.regions))


async def list_users(call: Call) -> m.UserList:
    return m.UserList(users=[m.UserRow(**u) for u in await users_mod.list_users(call.app[DB])])


async def create_user(call: Call) -> m.UserRow:
    body: m.UserCreate = call.body
    try:
        await users_mod.add_user(call.app[DB], body.name, body.password, body.role,
                                 tuple(body.regions), now=call.now)
    except users_mod.UserError as exc:
        raise ApiProblem(409 if exc.code == "user_exists" else 422, exc.code, exc.detail) from None
    return m.UserRow(name=body.name, role=body.role, regions=list(body.regions),
                     created_at=call.now, disabled=False)


async def update_user(call: Call) -> m.Ok:
    body: m.UserUpdate = call.body
    if call.path["name"] == call.who.name and (body.disabled or (
            body.role is not None and body.role != call.who.role)):
        raise ApiProblem(409, "self_change", "you cannot disable yourself or change your "
                                             "own role")
    try:
        user = await users_mod.update_user(
            call.app[DB], call.path["name"], role=body.role,
            regions=tuple(body.regions) if body.regions is not None else None,
            password=body.password, disabled=body.disabled, now=call.now)
    except users_mod.UserError as exc:
        raise ApiProblem(422, exc.code, exc.detail) from None
    if user is None:
        raise ApiProblem(404, "user_unknown", "no such user")
    return m.Ok()


async def delete_user(call: Call) -> m.Ok:
    if call.path["name"] == call.who.name:
        raise ApiProblem(409, "self_delete", "you cannot delete your own account")
    if not await users_mod.delete_user(call.app[DB], call.path["name"]):
        raise ApiProblem(404, "user_unknown", "no such user")
    return m.Ok()


# --- sites and tokens ---------------------------------------------------------------------

def _check_site_scope(call: Call, region: str) -> None:
    if not call.who.sees_region(region):
        raise ApiProblem(403, "out_of_scope", "this region is outside your scope")


async def list_sites(call: Call) -> m.SiteList:
    return await queries.list_sites(call.app[DB], call.who)


async def create_site(call: Call) -> Site:
    site: Site = call.body
    _check_site_scope(call, site.region)
    await ops.create_site(call.app[DB], site, now=call.now)
    return site


async def get_site(call: Call) -> Site:
    site = await queries.get_site(call.app[DB], call.who, call.path["site_id"])
    if site is None:
        raise ApiProblem(404, "site_unknown", "no such site")
    return site


async def update_site(call: Call) -> Site:
    site: Site = call.body
    if site.site_id != call.path["site_id"]:
        raise ApiProblem(422, "invalid_body", "site_id differs from the URL's")
    if await queries.get_site(call.app[DB], call.who, site.site_id) is None:
        raise ApiProblem(404, "site_unknown", "no such site")
    _check_site_scope(call, site.region)
    await ops.update_site(call.app[DB], site)
    call.app[INGEST].forget_site(site.site_id)
    return site


async def delete_site(call: Call) -> m.Ok:
    if await queries.get_site(call.app[DB], call.who, call.path["site_id"]) is None:
        raise ApiProblem(404, "site_unknown", "no such site")
    await ops.delete_site(call.app[DB], call.path["site_id"])
    return m.Ok()


async def create_enrolment_token(call: Call) -> m.TokenCreated:
    body: m.TokenCreate = call.body
    site_id = call.path["site_id"]
    if await queries.get_site(call.app[DB], call.who, site_id) is None:
        raise ApiProblem(404, "site_unknown", "no such site")
    token, expires_at = await ops.create_enrolment_token(
        call.app[DB], site_id, ttl_s=body.ttl_s, now=call.now, created_by=call.who.name)
    return m.TokenCreated(token=token, site_id=site_id, expires_at=expires_at)


async def list_enrolment_tokens(call: Call) -> m.TokenList:
    return await queries.list_tokens(call.app[DB], call.who)


# --- kiosks, commands, alerts -------------------------------------------------------------

async def list_kiosks(call: Call) -> m.KioskList:
    return await queries.list_kiosks(call.app[DB], call.who, call.query)


async def get_kiosk(call: Call) -> m.KioskDetail:
    detail = await queries.kiosk_detail(call.app[DB], call.who, call.path["device_id"])
    if detail is None:
        raise ApiProblem(404, "kiosk_unknown", "no such kiosk")
    return detail


async def _visible_kiosk(call: Call) -> m.KioskDetail:
    detail = await queries.kiosk_detail(call.app[DB], call.who, call.path["device_id"], recent=0)
    if detail is None:
        raise ApiProblem(404, "kiosk_unknown", "no such kiosk")
    return detail


async def issue_command(call: Call) -> Command:
    body: m.CommandCreate = call.body
    await _visible_kiosk(call)
    command = await ops.issue_command(
        call.app[DB], call.path["device_id"], body.name, body.args, issued_by=call.who.name,
        now=call.now, ttl_s=body.ttl_s or call.app[SETTINGS].command_ttl_s)
    return command


async def get_command(call: Call) -> m.CommandDetail:
    detail = await queries.command_detail(call.app[DB], call.who, call.path["command_id"])
    if detail is None:
        raise ApiProblem(404, "command_unknown", "no such command")
    return detail


async def revoke_kiosk(call: Call) -> m.Ok:
    await _visible_kiosk(call)
    await ops.revoke_device(call.app[DB], call.path["device_id"], by=call.who.name, now=call.now)
    call.app[KEYS].mark_revoked(call.path["device_id"])
    return m.Ok()


async def list_alerts(call: Call) -> m.AlertList:
    return await queries.list_alerts(call.app[DB], call.who, call.query)


async def acknowledge_alert(call: Call) -> m.Ok:
    await ops.acknowledge_alert(call.app[DB], int(call.path["alert_id"]), by=call.who.name,
                                now=call.now, region_clause=call.who.region_clause(sites.c.region))
    return m.Ok()


async def revoke_credential(call: Call) -> m.Ok:
    body: m.CredentialRevoke = call.body
    await ops.revoke_credential(call.app[DB], body.credential_id, by=call.who.name,
                                now=call.now, note=body.note)
    call.app[REVOKED_CREDENTIALS].invalidate()
    return m.Ok()


# --- overview, statistics, map, service -----------------------------------------------------

async def get_overview(call: Call) -> m.Overview:
    return await queries.overview(call.app[DB], call.who)


async def get_stats(call: Call) -> m.Stats:
    return await queries.stats(call.app[DB], call.who, call.query)


async def get_map(call: Call) -> web.Response:
    fc = await queries.kiosk_map(call.app[DB], call.who)
    return web.Response(body=fc.model_dump_json().encode(), content_type="application/geo+json")


async def healthz(call: Call) -> m.HealthStatus:
    db = call.app[DB]
    try:
        async with db.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except Exception:
        raise ApiProblem(503, "database_unavailable", "the database does not answer") from None
    return m.HealthStatus(status="ok", database="sqlite" if db.is_sqlite else "postgresql",
                          evaluator=call.app[EVALUATOR].leadership.is_leader
                          and call.app[SETTINGS].run_evaluator)


async def get_metrics(call: Call) -> web.Response:
    from fleet.server.metrics import render_metrics

    body, content_type = await render_metrics(call.app)
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = content_type
    return resp


async def get_openapi(call: Call) -> web.Response:
    from fleet.server.openapi import openapi_document

    return web.Response(body=json.dumps(openapi_document(), ensure_ascii=False).encode(),
                        content_type="application/json")


R = Route
ROUTES: tuple[Route, ...] = (
    # kiosks (signed requests; enrolment carries the one-time token instead)
    R("POST", f"{API}/enrol", enrol_device, "Enrol a kiosk: one-time token + CSR → certificate",
      "device", auth="none", body=EnrolRequest, response=EnrolResponse,
      max_body=MAX_ENROL_BYTES, errors=(401, 409)),
    R("POST", f"{API}/device/session", open_device_session, "Open a device session: "
      "X25519 key exchange → session ticket for HMAC-signed requests (signed with the device "
      "key; a session cannot open another)", "device", auth="device", body=DeviceSessionRequest,
      response=DeviceSessionResponse, max_body=MAX_ENROL_BYTES, device_session=False),
    R("POST", f"{API}/device/heartbeat", post_heartbeat,
      "A kiosk's heartbeat (signed, or in a device session)", "device", auth="device",
      body=Heartbeat, response=HeartbeatAck, max_body=MAX_HEARTBEAT_BYTES, errors=(503,)),
    R("POST", f"{API}/device/commands/{{command_id}}/result", post_command_result,
      "A command's result (signed, or in a device session)", "device", auth="device",
      body=CommandResult, response=m.Ok, max_body=MAX_COMMAND_RESULT_BYTES, errors=(409,)),
    # ops users
    R("POST", f"{API}/auth/login", login, "Log in: user name and password → bearer token",
      "auth", auth="none", body=m.LoginRequest, response=m.LoginResponse,
      errors=(401, 429)),
    R("POST", f"{API}/auth/logout", logout, "Revoke this bearer token", "auth",
      response=m.Ok),
    R("GET", f"{API}/me", whoami, "Who am I (role, regions)", "auth", response=m.UserInfo),
    R("GET", f"{API}/users", list_users, "List users", "users", role="admin",
      response=m.UserList),
    R("POST", f"{API}/users", create_user, "Create a user", "users", role="admin",
      body=m.UserCreate, response=m.UserRow, status=201, errors=(409,)),
    R("PATCH", f"{API}/users/{{name}}", update_user, "Change a user's role, regions, password "
      "or disabled flag", "users", role="admin", body=m.UserUpdate, response=m.Ok,
      errors=(409,)),
    R("DELETE", f"{API}/users/{{name}}", delete_user, "Delete a user", "users", role="admin",
      response=m.Ok, errors=(409,)),
    # sites and enrolment tokens
    R("GET", f"{API}/sites", list_sites, "List sites", "sites", response=m.SiteList),
    R("POST", f"{API}/sites", create_site, "Create a site", "sites", role="admin", body=Site,
      response=Site, status=201, errors=(409,)),
    R("GET", f"{API}/sites/{{site_id}}", get_site, "One site", "sites", response=Site),
    R("PUT", f"{API}/sites/{{site_id}}", update_site, "Change a site", "sites", role="admin",
      body=Site, response=Site),
    R("DELETE", f"{API}/sites/{{site_id}}", delete_site, "Delete a site without kiosks",
      "sites", role="admin", response=m.Ok, errors=(409,)),
    R("POST", f"{API}/sites/{{site_id}}/enrolment-tokens", create_enrolment_token,
      "Create a one-time enrolment token for a site (shown once)", "sites", role="admin",
      body=m.TokenCreate, response=m.TokenCreated, status=201),
    R("GET", f"{API}/enrolment-tokens", list_enrolment_tokens, "List enrolment tokens "
      "(hash prefixes only)", "sites", role="admin", response=m.TokenList),
    # kiosks
    R("GET", f"{API}/overview", get_overview, "Counts by state and health; open alerts",
      "kiosks", response=m.Overview),
    R("GET", f"{API}/kiosks", list_kiosks, "List kiosks with filters", "kiosks",
      query=m.KioskQuery, response=m.KioskList),
    R("GET", f"{API}/kiosks/{{device_id}}", get_kiosk, "A kiosk: devices and supplies, recent "
      "heartbeats, events, commands and alerts", "kiosks", response=m.KioskDetail),
    R("POST", f"{API}/kiosks/{{device_id}}/commands", issue_command, "Send a command to a kiosk",
      "kiosks", role="operator", body=m.CommandCreate, response=Command, status=201),
    R("GET", f"{API}/commands/{{command_id}}", get_command, "A command with its result data",
      "kiosks", response=m.CommandDetail),
    R("POST", f"{API}/kiosks/{{device_id}}/revoke", revoke_kiosk, "Revoke a kiosk: refused from "
      "its next request", "kiosks", role="admin", response=m.Ok, errors=(409,)),
    R("POST", f"{API}/credentials/revoke", revoke_credential, "Revoke a maintenance credential "
      "on every kiosk", "kiosks", role="admin", body=m.CredentialRevoke, response=m.Ok),
    # alerts
    R("GET", f"{API}/alerts", list_alerts, "List alerts", "alerts", query=m.AlertQuery,
      response=m.AlertList),
    R("POST", f"{API}/alerts/{{alert_id}}/ack", acknowledge_alert, "Acknowledge an alert",
      "alerts", role="operator", response=m.Ok),
    # statistics and map
    R("GET", f"{API}/stats", get_stats, "Usage and ratings (好差评) per item, site or region",
      "stats", query=m.StatsQuery, response=m.Stats),
    R("GET", f"{API}/map.geojson", get_map, "Kiosk locations with state (GeoJSON)", "stats",
      response=m.FeatureCollection, content_type="application/geo+json"),
    # service
    R("GET", "/healthz", healthz, "Liveness and database check", "service", auth="none",
      response=m.HealthStatus, errors=(503,)),
    R("GET", "/metrics", get_metrics, "Prometheus metrics", "service", auth="none",
      content_type="text/plain"),
    R("GET", f"{API}/openapi.json", get_openapi, "This document", "service", auth="none"),
)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, _endpoint(route),
                             name=route.operation_id)
