"""Failed ops logins slow guessing down (fleet/server/login_throttle.py): five free wrong
passwords per user name, then locks that double; a locked name is refused with 429 and
Retry-After without its password being checked, on the API and the dashboard's form, in
every process (the counter is in the database); a right password clears the count."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import aiohttp
import pytest

from fleet.server import login_throttle
from fleet.server.login_throttle import FREE_FAILURES, LoginThrottle, lock_for
from fleet.server.testing import running_fleet_server
from tests.fleet.server.conftest import ADMIN_PASSWORD


def test_locks_double_and_stop_at_the_maximum():
    assert [lock_for(n) for n in range(1, FREE_FAILURES + 1)] == [0.0] * FREE_FAILURES
    locks = [lock_for(FREE_FAILURES + n) for n in range(1, 9)]
    assert locks[:5] == [30.0, 60.0, 120.0, 240.0, 480.0]
    assert locks[5:] == [login_throttle.MAX_LOCK_S] * 3
    assert lock_for(10**6) == login_throttle.MAX_LOCK_S


async def _login(http, srv, user, password):
    async with http.post(srv.url + "/api/v1/auth/login",
                         json={"username": user, "password": password}) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


@pytest.mark.asyncio
async def test_api_logins_are_throttled_per_name(srv, http, fleet_clock):
    for _ in range(FREE_FAILURES):
        status, body, _ = await _login(http, srv, "admin", "guess")
        assert status == 401 and body["error"] == "bad_credentials"
    status, body, _ = await _login(http, srv, "admin", "guess")  # the first locking failure
    assert status == 401
    # Locked: even the right password is refused, with how long to wait.
    status, body, retry = await _login(http, srv, "admin", ADMIN_PASSWORD)
    assert status == 429 and body["error"] == "too_many_attempts", body
    assert 29 <= int(retry) <= 30 and "try again in" in body["detail"]
    # Another name is not affected; the name's case does not matter.
    status, _, _ = await _login(http, srv, "ADMIN", ADMIN_PASSWORD)
    assert status == 429
    await srv.add_user("duty", "duty-password", "operator")
    assert (await _login(http, srv, "duty", "duty-password"))[0] == 200

    fleet_clock.advance(31)  # the lock ran out: one more wrong guess locks for twice as long
    status, _, _ = await _login(http, srv, "admin", "guess")
    assert status == 401
    status, _, retry = await _login(http, srv, "admin", ADMIN_PASSWORD)
    assert status == 429 and 59 <= int(retry) <= 60

    fleet_clock.advance(61)  # a right password after the lock logs in and clears the count
    status, body, _ = await _login(http, srv, "admin", ADMIN_PASSWORD)
    assert status == 200, body
    for _ in range(FREE_FAILURES):
        assert (await _login(http, srv, "admin", "guess"))[0] == 401


@pytest.mark.asyncio
async def test_unknown_names_are_counted_and_old_ones_forgotten(srv, http, fleet_clock):
    for _ in range(FREE_FAILURES + 1):
        assert (await _login(http, srv, "nobody", "guess"))[0] == 401
    status, body, _ = await _login(http, srv, "nobody", "guess")
    assert status == 429  # the same answer as for a name that exists
    throttle = LoginThrottle(srv.db)
    assert await throttle.retry_after("nobody", srv.now()) > 0
    fleet_clock.advance(login_throttle.WINDOW_S + login_throttle.MAX_LOCK_S + 1)
    assert await throttle.retry_after("nobody", srv.now()) == 0
    await throttle.failed("someone-else", srv.now())  # prunes what is past its window
    import sqlalchemy as sa

    from fleet.server.schema import login_failures
    async with srv.db.engine.connect() as conn:
        names = (await conn.execute(sa.select(login_failures.c.name))).scalars().all()
    assert names == ["someone-else"]


@pytest.mark.asyncio
async def test_logins_do_not_stall_heartbeats(srv, http, kiosk, monkeypatch):
    """The password check runs off the event loop: a slow hash (here 0.3 s) does not hold
    up a kiosk's heartbeat sent meanwhile."""
    from fleet.server import users

    real = users._verify_blocking

    def slow(password_hash, password):
        time.sleep(0.3)
        return real(password_hash, password)

    monkeypatch.setattr(users, "_verify_blocking", slow)
    login = asyncio.create_task(_login(http, srv, "admin", ADMIN_PASSWORD))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    status, _ = await kiosk.beat(1)
    assert status == 200 and time.monotonic() - started < 0.25
    assert (await login)[0] == 200


@pytest.mark.asyncio
async def test_the_dashboard_form_is_throttled_too(tmp_path: Path):
    async with running_fleet_server(tmp_path, run_evaluator=False) as srv:
        await srv.add_user("duty", "duty-password", "operator")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await (await http.get(srv.url + "/login")).text()
            for attempt in range(FREE_FAILURES + 2):
                token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
                password = "duty-password" if attempt == FREE_FAILURES + 1 else "guess"
                async with http.post(srv.url + "/login", data={
                        "username": "duty", "password": password, "csrf_token": token},
                        allow_redirects=False) as r:
                    page = await r.text()
                    status, retry = r.status, r.headers.get("Retry-After")
            assert status == 429 and int(retry) >= 29
            assert "登录失败次数过多" in page and "too many failed logins" in page
