"""Who may see a page and who may post a form: the two wrappers every dashboard handler uses.

`page` (GET): the session cookie must name a live session, otherwise the browser goes to
/login and comes back afterwards. `action(role)` (POST): a live session, then the CSRF token
of that session, then the role — in that order, so a forged post learns nothing about roles.
Roles are the API's (fleet/server/users.py): viewer reads; operator acknowledges alerts and
issues commands; admin also revokes kiosks. Region scopes are applied by every query.

Both wrappers turn an `ApiProblem` from the shared ops/queries layer into an HTML error page
with the same status, and time the handler: the `Server-Timing` header says how long the
server spent (queries and rendering), which the render-time test and ops can read.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from fleet.server import users as users_mod
from fleet.server.context import CLOCK, DB
from fleet.server.dashboard import labels, sessions
from fleet.server.dashboard.render import render
from fleet.server.errors import ApiProblem
from fleet.server.users import Role, User


@dataclass(frozen=True)
class Viewer:
    """The logged-in ops user behind a request, with what the templates need."""

    user: User
    csrf: str
    now: float

    @property
    def can_operate(self) -> bool:
        return self.user.has_role("operator")

    @property
    def can_admin(self) -> bool:
        return self.user.has_role("admin")


PageHandler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to return to; anything that could leave this site becomes `default`."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(ch) < 0x20 for ch in target):
        return default
    return target


def error_page(request: web.Request, status: int, zh: str, en: str,
               viewer: Viewer | None = None) -> web.Response:
    return render("error.html", request, {"viewer": viewer, "status": status, "zh": zh,
                                          "en": en, "page": "error", "notice": ""}, status=status)


async def viewer_for(request: web.Request) -> Viewer | None:
    secret = sessions.session_secret(request)
    if not secret:
        return None
    now = request.app[CLOCK]()
    user = await users_mod.user_for_token(request.app[DB], secret, "session", now=now)
    if user is None:
        return None
    return Viewer(user=user, csrf=sessions.csrf_token(secret), now=now)


def _timed(response: web.StreamResponse, started: float) -> web.StreamResponse:
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


def page(handler: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        viewer = await viewer_for(request)
        if viewer is None:
            raise web.HTTPSeeOther("/login?next=" + quote(request.path_qs, safe="/"))
        try:
            response = await handler(request, viewer)
        except ApiProblem as exc:
            response = error_page(request, exc.status, "请求未能完成", exc.detail or exc.code,
                                  viewer)
        return _timed(response, started)

    wrapped.__name__ = handler.__name__
    return wrapped


FormHandler = Callable[[web.Request, Viewer, Mapping[str, Any]], Awaitable[web.StreamResponse]]
MAX_FORM_BYTES = 16 * 1024


def action(role: Role) -> Callable[[FormHandler], Callable[[web.Request],
                                                           Awaitable[web.StreamResponse]]]:
    def decorate(handler: FormHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            if (request.content_length or 0) > MAX_FORM_BYTES:
                return error_page(request, 413, "表单内容过长", "the form is too large")
            viewer = await viewer_for(request)
            if viewer is None:
                return _timed(error_page(request, 401, "登录已失效，请重新登录",
                                         "your session has ended: log in again"), started)
            form = await request.post()
            if not sessions.csrf_ok(sessions.session_secret(request),
                                    str(form.get(sessions.CSRF_FIELD, ""))):
                return _timed(error_page(
                    request, 403, "表单已过期或来源不明（CSRF 校验失败），请刷新页面后重试",
                    "the form is stale or did not come from this dashboard (CSRF check "
                    "failed): reload the page and try again", viewer), started)
            if not viewer.user.has_role(role):
                zh_role, _ = labels.ROLES[role]
                return _timed(error_page(
                    request, 403, f"此操作需要「{zh_role}」或更高权限",
                    f"this needs the {role} role", viewer), started)
            try:
                response = await handler(request, viewer, form)
            except ApiProblem as exc:
                response = error_page(request, exc.status, "操作未能完成",
                                      exc.detail or exc.code, viewer)
            return _timed(response, started)

        wrapped.__name__ = handler.__name__
        return wrapped

    return decorate
