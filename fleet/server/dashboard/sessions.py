"""Dashboard sessions: the cookie, its flags, and the CSRF token every POST form carries.

The session is a `users.issue_token(..., "session")` row: the cookie holds the secret, the
database only its SHA-256, so logging out or disabling a user ends the session at once. The
cookie is HttpOnly (no script reads it), SameSite=Strict (another site cannot make the
browser send it) and Secure when the request came over https — directly or, behind a
TLS-terminating load balancer, as its `X-Forwarded-Proto` says.

CSRF: SameSite=Strict already stops cross-site form posts in current browsers; the token is
the second lock for older browsers and for same-site attackers (another app on a sibling
sub-domain). It is an HMAC of a fixed label keyed by the session secret, so it is tied to the
session, needs no storage, changes at every login, and cannot be computed without the
HttpOnly cookie. The login form, which has no session yet, uses a double-submit cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from fleet.server.routes import SESSION_COOKIE

LOGIN_CSRF_COOKIE = "fleet_login_csrf"
CSRF_FIELD = "csrf_token"


def is_https(request: web.Request) -> bool:
    """The browser's connection is TLS (here, or at the load balancer in front)."""
    if request.secure:
        return True
    forwarded = request.headers.get("X-Forwarded-Proto", "")
    return forwarded.split(",")[0].strip().lower() == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, *,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                        samesite="Strict", secure=is_https(request))


def set_session_cookie(response: web.StreamResponse, request: web.Request, token: str,
                       ttl_s: float) -> None:
    set_cookie(response, request, SESSION_COOKIE, token, max_age=int(ttl_s))


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(SESSION_COOKIE, path="/", secure=is_https(request), httponly=True,
                        samesite="Strict")


def session_secret(request: web.Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")


def csrf_token(session: str) -> str:
    """The CSRF token of the session whose cookie secret is `session`."""
    return hmac.new(session.encode("utf-8", "surrogatepass"), b"fleet-dashboard-csrf-v1",
                    hashlib.sha256).hexdigest()


def csrf_ok(session: str, submitted: str) -> bool:
    if not session or not submitted:
        return False
    return hmac.compare_digest(csrf_token(session), submitted)


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def login_csrf_ok(request: web.Request, submitted: str) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(cookie) and bool(submitted) and hmac.compare_digest(cookie, submitted)
