"""The dashboard's forms (POST): log in and out, acknowledge an alert, send a command,
revoke a kiosk.

Every form answers with a redirect (post/redirect/get), so reloading a page never repeats an
action; the notice shown afterwards is a fixed key, never text from the request. The actions
themselves are fleet/server/ops.py's, the same code the API runs, with the same region checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from math import ceil
from typing import Any
from urllib.parse import quote

from aiohttp import web
from pydantic import ValidationError

from fleet.server import api_models as m
from fleet.server import ops, queries
from fleet.server import users as users_mod
from fleet.server.context import CLOCK, DB, KEYS, SETTINGS
from fleet.server.dashboard import labels, sessions
from fleet.server.dashboard.access import Viewer, action, error_page, safe_next, viewer_for
from fleet.server.dashboard.render import render
from fleet.server.login_throttle import LoginThrottle, retry_text
from fleet.server.schema import sites

_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
MAX_REASON_CHARS = 200


def see_other(location: str) -> web.Response:
    """A 303 redirect (post/redirect/get) as a plain response, so cookies can ride on it."""
    return web.Response(status=303, headers={"Location": location})


# --- log in and out ---------------------------------------------------------------------

def _login_form(request: web.Request, *, error: str = "", status: int = 200,
                username: str = "") -> web.Response:
    token = sessions.new_login_csrf()
    response = render("login.html", request, {
        "viewer": None, "page": "login", "csrf": token, "error": error, "username": username,
        "next": safe_next(request.query.get("next")),
        "notice": request.query.get("notice", "") if request.query.get("notice", "")
        in labels.NOTICES else ""}, status=status)
    sessions.set_cookie(response, request, sessions.LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    if await viewer_for(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return _login_form(request)


async def login(request: web.Request) -> web.StreamResponse:
    if (request.content_length or 0) > 16 * 1024:
        return error_page(request, 413, "表单内容过长", "the form is too large")
    form = await request.post()
    username = str(form.get("username", ""))[:64]
    password = str(form.get("password", ""))[:200]
    if not sessions.login_csrf_ok(request, str(form.get(sessions.CSRF_FIELD, ""))):
        return _login_form(request, status=403, username=username,
                           error="登录表单已过期，请重新输入 / the login form expired: try again")
    db = request.app[DB]
    now = request.app[CLOCK]()
    throttle = LoginThrottle(db)
    wait = await throttle.retry_after(username, now) if username else 0.0
    if wait > 0:
        zh, en = retry_text(wait)
        response = _login_form(request, status=429, username=username,
                               error=f"登录失败次数过多，请 {zh}后再试 / too many failed "
                                     f"logins: try again in {en}")
        response.headers["Retry-After"] = str(ceil(wait))
        return response
    user = (await users_mod.check_credentials(db, username, password)
            if username and password else None)
    if user is None:
        if username:
            await throttle.failed(username, now)
        return _login_form(request, status=401, username=username,
                           error="用户名或密码错误 / wrong user name or password")
    await throttle.succeeded(username)
    settings = request.app[SETTINGS]
    token, _ = await users_mod.issue_token(db, user, "session", ttl_s=settings.session_ttl_s,
                                           now=request.app[CLOCK]())
    response = see_other(safe_next(str(form.get("next", "")) or None))
    sessions.set_session_cookie(response, request, token, settings.session_ttl_s)
    response.del_cookie(sessions.LOGIN_CSRF_COOKIE, path="/")
    return response


@action("viewer")
async def logout(request: web.Request, viewer: Viewer,
                 form: Mapping[str, Any]) -> web.StreamResponse:
    await users_mod.revoke_token(request.app[DB], sessions.session_secret(request))
    response = see_other("/login?notice=logged_out")
    sessions.clear_session_cookie(response, request)
    return response


# --- alerts -------------------------------------------------------------------------------

@action("operator")
async def acknowledge(request: web.Request, viewer: Viewer,
                      form: Mapping[str, Any]) -> web.StreamResponse:
    raw = request.match_info["alert_id"]
    if not raw.isdigit() or len(raw) > 18:
        return error_page(request, 404, "没有这条告警", "no such alert", viewer)
    await ops.acknowledge_alert(request.app[DB], int(raw), by=viewer.user.name,
                                now=request.app[CLOCK](),
                                region_clause=viewer.user.region_clause(sites.c.region))
    back = safe_next(str(form.get("next", "")), "/alerts")
    return see_other(_with_notice(back, "acked"))


def _with_notice(path: str, notice: str) -> str:
    path, _, fragment = path.partition("#")
    joiner = "&" if "?" in path else "?"
    return f"{path}{joiner}notice={quote(notice)}" + (f"#{fragment}" if fragment else "")


# --- kiosks -------------------------------------------------------------------------------

async def _visible_kiosk(request: web.Request, viewer: Viewer) -> str | None:
    device_id = request.match_info["device_id"]
    if not _IDENT.match(device_id):
        return None
    detail = await queries.kiosk_detail(request.app[DB], viewer.user, device_id, recent=0)
    return device_id if detail is not None else None


@action("operator")
async def send_command(request: web.Request, viewer: Viewer,
                       form: Mapping[str, Any]) -> web.StreamResponse:
    device_id = await _visible_kiosk(request, viewer)
    if device_id is None:
        return error_page(request, 404, "没有这台终端，或不在您的管辖区域内",
                          "no such kiosk, or not in your regions", viewer)
    name = str(form.get("name", ""))
    reason = str(form.get("reason", "")).strip()
    if name not in labels.COMMANDS:
        return error_page(request, 422, "请选择要下发的指令", "choose a command to send", viewer)
    args: dict[str, Any] = {}
    if name == "out_of_service":
        if not reason or len(reason) > MAX_REASON_CHARS:
            return error_page(request, 422, f"暂停服务须填写原因（1–{MAX_REASON_CHARS} 字），"
                                            "市民和网点人员会看到",
                              f"out of service needs a reason (1-{MAX_REASON_CHARS} characters); "
                              "citizens and branch staff see it", viewer)
        args["reason"] = reason
    try:
        body = m.CommandCreate(name=name, args=args)  # type: ignore[arg-type]
    except ValidationError as exc:
        return error_page(request, 422, "指令参数不正确", str(exc.errors()[0]["msg"]), viewer)
    await ops.issue_command(request.app[DB], device_id, body.name, body.args,
                            issued_by=viewer.user.name, now=request.app[CLOCK](),
                            ttl_s=request.app[SETTINGS].command_ttl_s)
    return see_other(f"/kiosks/{quote(device_id)}?notice=command#commands")


@action("admin")
async def revoke(request: web.Request, viewer: Viewer,
                 form: Mapping[str, Any]) -> web.StreamResponse:
    device_id = await _visible_kiosk(request, viewer)
    if device_id is None:
        return error_page(request, 404, "没有这台终端，或不在您的管辖区域内",
                          "no such kiosk, or not in your regions", viewer)
    if form.get("confirm") != device_id:
        return error_page(request, 422, "请输入终端编号以确认吊销",
                          "type the kiosk id to confirm the revocation", viewer)
    await ops.revoke_device(request.app[DB], device_id, by=viewer.user.name,
                            now=request.app[CLOCK]())
    request.app[KEYS].mark_revoked(device_id)
    return see_other(f"/kiosks/{quote(device_id)}?notice=revoked")
