"""Sessions, CSRF, redirects and labels: the pure pieces directly, the login flow over HTTP
against a real server (no browser needed to read Set-Cookie headers)."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from fleet.server.dashboard import labels
from fleet.server.dashboard.access import safe_next
from fleet.server.dashboard.render import width_class
from fleet.server.dashboard.sessions import csrf_ok, csrf_token
from fleet.server.routes import SESSION_COOKIE
from fleet.server.rules import RULES
from fleet.server.schema import KIOSK_STATES, RATING_LEVELS, ROLES, SITE_TYPES
from fleet.server.testing import running_fleet_server
from fleet.wire import CommandName, DeviceClass, DeviceState, OperatorAction, SupplyLevel


def test_csrf_token_is_tied_to_the_session() -> None:
    a, b = csrf_token("fss_one"), csrf_token("fss_two")
    assert a != b and csrf_token("fss_one") == a
    assert csrf_ok("fss_one", a) and not csrf_ok("fss_two", a)
    assert not csrf_ok("", csrf_token("")) and not csrf_ok("fss_one", "")


@pytest.mark.parametrize(("target", "expected"), [
    ("/kiosks?state=offline", "/kiosks?state=offline"), ("/alerts#alert-3", "/alerts#alert-3"),
    ("//evil.example/x", "/"), ("https://evil.example", "/"), ("/\\evil.example", "/"),
    ("evil", "/"), ("", "/"), (None, "/"), ("/a\r\nSet-Cookie: x=1", "/"),
])
def test_redirect_targets_stay_on_this_site(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


def test_every_code_the_server_stores_has_words() -> None:
    tables = [(labels.ALERT_RULES, RULES), (labels.KIOSK_STATES, KIOSK_STATES),
              (labels.SITE_TYPES, SITE_TYPES), (labels.RATING_LEVELS, RATING_LEVELS),
              (labels.ROLES, ROLES),
              (labels.COMMAND_NAMES, typing.get_args(CommandName)),
              (labels.DEVICE_CLASSES, typing.get_args(DeviceClass)),
              (labels.DEVICE_STATES, typing.get_args(DeviceState)),
              (labels.OPERATOR_ACTIONS, typing.get_args(OperatorAction)),
              (labels.SUPPLY_LEVELS, typing.get_args(SupplyLevel))]
    for table, codes in tables:
        assert set(codes) <= set(table), set(codes) - set(table)
    assert labels.label("rule", "offline") == "终端离线 / kiosk offline"
    assert labels.label("rule", "brand_new_rule") == "brand_new_rule"
    assert labels.label("state", None) == "—"


def test_bar_widths_are_whole_percent_classes() -> None:
    assert width_class(0, 10) == "w-0" and width_class(5, 0) == "w-0"
    assert width_class(1, 1000) == "w-1"  # a non-zero count stays visible
    assert width_class(1, 3) == "w-33" and width_class(10, 10) == "w-100"



def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


@pytest.mark.asyncio
async def test_login_cookie_flags_redirects_and_refusals(tmp_path: Path) -> None:
    async with running_fleet_server(tmp_path, run_evaluator=False) as srv:
        await srv.add_user("duty", "duty-password", "operator")
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            # Not logged in: pages send the browser to the login form and back; forms refuse.
            async with http.get(srv.url + "/kiosks?state=late", allow_redirects=False) as r:
                assert r.status == 303
                back = URL(r.headers["Location"])
                assert back.path == "/login" and back.query["next"] == "/kiosks?state=late"
            async with http.post(srv.url + "/alerts/1/ack", data={"csrf_token": "x"}) as r:
                assert r.status == 401

            # The login form itself is protected by a double-submit token.
            form = await (await http.get(srv.url + "/login")).text()
            token = _csrf(form)
            async with http.post(srv.url + "/login", data={
                    "username": "duty", "password": "duty-password", "csrf_token": "forged"},
                    allow_redirects=False) as r:
                assert r.status == 403 and SESSION_COOKIE not in r.cookies
                token = _csrf(await r.text())  # each form shown gets a fresh token
            async with http.post(srv.url + "/login", data={
                    "username": "duty", "password": "wrong-password", "csrf_token": token},
                    allow_redirects=False) as r:
                assert r.status == 401 and SESSION_COOKIE not in r.cookies
                assert "用户名或密码错误" in await r.text()
                token = _csrf(await r.text())

            # Behind a TLS-terminating load balancer the cookie is Secure; `next` stays local.
            async with http.post(srv.url + "/login", data={
                    "username": "duty", "password": "duty-password", "csrf_token": token,
                    "next": "//evil.example/"}, headers={"X-Forwarded-Proto": "https"},
                    allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"] == "/"
                cookie = r.cookies[SESSION_COOKIE]
                assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
                assert cookie.value.startswith("fss_")
            # The jar keeps a Secure cookie off plain http, as a browser does: send it by hand
            # (as the load balancer would pass it on).
            jar.update_cookies({SESSION_COOKIE: cookie.value})

            async with http.get(srv.url + "/", allow_redirects=False) as r:
                assert r.status == 200
                assert "default-src 'none'" in r.headers["Content-Security-Policy"]
                assert r.headers["Cache-Control"] == "no-store"
                assert re.fullmatch(r"app;dur=\d+\.\d", r.headers["Server-Timing"])
            # ...and the API accepts the same cookie for reading, never for changing.
            async with http.get(srv.url + "/api/v1/overview") as r:
                assert r.status == 200
            async with http.post(srv.url + "/api/v1/alerts/1/ack") as r:
                assert r.status == 401

            # A bad filter is a 400 page that says why, not an error trace.
            async with http.get(srv.url + "/kiosks?state=asleep") as r:
                assert r.status == 400 and "筛选条件不正确" in await r.text()
            async with http.get(srv.url + "/kiosks/..%2Fetc") as r:
                assert r.status == 404
