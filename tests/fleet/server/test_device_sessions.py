"""Device sessions on the real server (SQLite and PostgreSQL): one signed handshake, then
heartbeats with an HMAC under the session ticket — and every way a session request can be
wrong (forged MAC, another kiosk's ticket, junk ticket, a MAC under the signature's domain,
expired, replayed, revoked): 401 with its code and nothing stored. A ticket is accepted by a
second server process on the same state directory, and by the same process after the ticket
key is rotated (previous key kept)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from fleet.server.context import KEYS
from fleet.server.schema import devices, heartbeats
from fleet.wire import ApiError, DeviceSessionResponse
from provisioning.sessions import (
    PREVIOUS_TICKET_KEY_FILE,
    SESSION_PATH,
    TICKET_KEY_FILE,
    DeviceSession,
    SessionOffer,
    TicketKeys,
    b64url,
    key_id_of,
)
from provisioning.signing import H_SESSION, H_SIGNATURE, b64url_decode, signed_bytes
from tests.fleet.conftest import free_port
from tests.fleet.server.simkiosk import SimKiosk, heartbeat

pytestmark = pytest.mark.asyncio
HB = "/api/v1/device/heartbeat"
SQLITE_ONLY = pytest.mark.parametrize("db_url", [None], ids=["sqlite"])


async def open_session(kiosk: SimKiosk) -> DeviceSession:
    offer = SessionOffer(kiosk.device_id)
    status, body = await kiosk.post(SESSION_PATH, offer.body)
    assert status == 200, body
    return offer.accept(DeviceSessionResponse.model_validate(body))


def session_headers(kiosk: SimKiosk, session: DeviceSession, body: bytes, *,
                    counter: int | None = None, now: float | None = None) -> dict[str, str]:
    if counter is None:
        kiosk.counter += 1
        counter = kiosk.counter
    return session.sign("POST", HB, body, counter, kiosk.clock() if now is None else now)


def hb_bytes(kiosk: SimKiosk, seq: int) -> bytes:
    return json.dumps(heartbeat(seq, sent_at=kiosk.clock())).encode()


async def count_heartbeats(srv) -> int:
    async with srv.db.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(heartbeats))


async def last_counter(srv, device_id: str) -> int:
    async with srv.db.engine.connect() as conn:
        return await conn.scalar(sa.select(devices.c.last_counter)
                                 .where(devices.c.id == device_id))


def refused(status: int, body, code: str) -> bool:
    return status == 401 and ApiError.model_validate(body).error == code


async def test_session_opens_and_carries_heartbeats(srv, kiosk):
    stats = srv.app[KEYS].stats
    session = await open_session(kiosk)
    assert session.expires_at == pytest.approx(srv.now() + 3600, abs=2)
    assert await last_counter(srv, kiosk.device_id) == kiosk.counter  # the handshake counted
    for seq in (1, 2):
        body = hb_bytes(kiosk, seq)
        status, answer = await kiosk.post(HB, body, headers=session_headers(kiosk, session, body))
        assert status == 200, answer
    assert await count_heartbeats(srv) == 2
    assert await last_counter(srv, kiosk.device_id) == kiosk.counter
    assert (stats.session, stats.sessions_opened) == (2, 1)
    # A session cannot open another (a stolen session key must not outlive its ticket),
    # and signed requests keep working beside sessions (older agents).
    offer = SessionOffer(kiosk.device_id)
    status, answer = await kiosk.post(SESSION_PATH, offer.body,
                                      headers=session_headers(kiosk, session, offer.body))
    assert refused(status, answer, "session_not_accepted")
    assert (await kiosk.beat(3))[0] == 200
    assert stats.signed >= 2
    # An unusable key-exchange key (all zeros: X25519's low-order point).
    status, answer = await kiosk.post(SESSION_PATH, {"wire_version": 1,
                                                     "kex_public": b64url(bytes(32))})
    assert status == 422 and answer["error"] == "invalid_body"


async def test_session_refusals_store_nothing(srv, kiosk, http, fleet_clock):
    site = await srv.create_site(site_id="wx-post-09", site_type="post")
    other = await SimKiosk.enrol(srv.url, http, await srv.create_enrolment_token(site),
                                 clock=fleet_clock)
    mine, theirs = await open_session(kiosk), await open_session(other)
    body = hb_bytes(kiosk, 1)
    good = session_headers(kiosk, mine, body)
    assert (await kiosk.post(HB, body, headers=good))[0] == 200
    stored, counter = await count_heartbeats(srv), await last_counter(srv, kiosk.device_id)

    # A forged MAC (right ticket, wrong key).
    forged = session_headers(kiosk, mine, body)
    forged[H_SIGNATURE] = b64url(hmac.new(os.urandom(32), b"x", hashlib.sha256).digest())
    assert refused(*await kiosk.post(HB, body, headers=forged), "bad_signature")
    # The body changed after the MAC.
    tampered = session_headers(kiosk, mine, body)
    assert refused(*await kiosk.post(HB, body.replace(b'"seq": 1', b'"seq": 7'),
                                     headers=tampered), "bad_signature")
    # Kiosk A's ticket (and A's key) under kiosk B's name.
    swapped = DeviceSession(other.device_id, mine.ticket, mine.key, mine.expires_at)
    assert refused(*await kiosk.post(HB, body, headers=session_headers(other, swapped, body)),
                   "bad_session")
    # B's real ticket with A's name.
    borrowed = DeviceSession(kiosk.device_id, theirs.ticket, theirs.key, theirs.expires_at)
    assert refused(*await kiosk.post(HB, body, headers=session_headers(kiosk, borrowed, body)),
                   "bad_session")
    # A ticket nobody issued, and one with a byte changed.
    junk = session_headers(kiosk, mine, body)
    junk[H_SESSION] = b64url(os.urandom(90))
    assert refused(*await kiosk.post(HB, body, headers=junk), "bad_session")
    flipped = session_headers(kiosk, mine, body)
    flipped[H_SESSION] = mine.ticket[:30] + ("A" if mine.ticket[30] != "A" else "B") + \
        mine.ticket[31:]
    assert refused(*await kiosk.post(HB, body, headers=flipped), "bad_session")
    # The session key over the signature's bytes (domain kiosk-request-v1).
    wrong_domain = session_headers(kiosk, mine, body)
    message = signed_bytes("POST", HB, kiosk.device_id, int(wrong_domain["Kiosk-Counter"]),
                           int(wrong_domain["Kiosk-Timestamp"]), body)
    wrong_domain[H_SIGNATURE] = b64url(hmac.new(mine.key, message, hashlib.sha256).digest())
    assert refused(*await kiosk.post(HB, body, headers=wrong_domain), "bad_signature")
    # The same request again (valid MAC), and an older counter.
    assert refused(*await kiosk.post(HB, body, headers=good), "replayed")
    assert refused(*await kiosk.post(HB, body, headers=session_headers(
        kiosk, mine, body, counter=1)), "replayed")
    # The timestamp checks stay as they are.
    assert refused(*await kiosk.post(HB, body, headers=session_headers(
        kiosk, mine, body, now=fleet_clock() - 3600)), "clock_skew")
    # Revoked by another process (this one's key cache does not know): the counter UPDATE
    # refuses the kiosk although its ticket and MAC are good.
    async with srv.db.engine.begin() as conn:
        await conn.execute(devices.update().where(devices.c.id == other.device_id)
                           .values(revoked_at=srv.now()))
    other_body = hb_bytes(other, 1)
    assert refused(*await other.post(HB, other_body, headers=session_headers(
        other, theirs, other_body)), "device_revoked")
    assert refused(*await other.post(HB, other_body, headers=session_headers(
        other, theirs, other_body)), "device_revoked")  # now from the key cache
    # Expired: the server's clock moves past the ticket's end.
    fleet_clock.advance(3601)
    assert refused(*await kiosk.post(HB, body, headers=session_headers(kiosk, mine, body)),
                   "session_expired")

    assert await count_heartbeats(srv) == stored
    assert await last_counter(srv, kiosk.device_id) == counter
    # After all that a new session works.
    fresh = await open_session(kiosk)
    body = hb_bytes(kiosk, 2)
    assert (await kiosk.post(HB, body, headers=session_headers(kiosk, fresh, body)))[0] == 200


@SQLITE_ONLY
async def test_a_second_server_process_accepts_the_ticket(srv, kiosk, http):
    """Stateless tickets: a process started on the same state directory (another worker,
    another host with the same key file) opens what this one sealed, and the reverse."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet.server.cli", "serve", "--state-dir",
         str(srv.settings.state_dir), "--port", str(port), "--no-evaluator"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        second = f"http://127.0.0.1:{port}"
        for _ in range(200):
            assert proc.poll() is None, proc.stdout.read().decode()
            try:
                async with http.get(second + "/healthz") as r:
                    if r.status == 200:
                        break
            except OSError:
                await asyncio.sleep(0.05)
        session = await open_session(kiosk)  # sealed by this process
        other_side = SimKiosk(second, http, kiosk.key, kiosk.device_id, kiosk.counter,
                              kiosk.clock)
        body = hb_bytes(kiosk, 1)
        status, answer = await other_side.post(HB, body, headers=session_headers(
            other_side, session, body))
        assert status == 200, answer
        session = await open_session(other_side)  # sealed by the second process
        kiosk.counter = other_side.counter
        body = hb_bytes(kiosk, 2)
        status, answer = await kiosk.post(HB, body, headers=session_headers(kiosk, session, body))
        assert status == 200, answer
        assert await count_heartbeats(srv) == 2
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


@SQLITE_ONLY
async def test_ticket_key_rotation_keeps_the_previous_key(srv, kiosk):
    state: Path = srv.settings.state_dir
    keys = srv.app[KEYS]
    old = await open_session(kiosk)
    # Rotation as docs/security.md says: the current key becomes the previous one, a new
    # current key is made, the processes load both.
    os.replace(state / TICKET_KEY_FILE, state / PREVIOUS_TICKET_KEY_FILE)
    keys.use_ticket_keys(TicketKeys.ensure(state))
    body = hb_bytes(kiosk, 1)
    assert (await kiosk.post(HB, body, headers=session_headers(kiosk, old, body)))[0] == 200
    new = await open_session(kiosk)
    new_key = (state / TICKET_KEY_FILE).read_bytes()
    assert b64url_decode(new.ticket)[0] == key_id_of(new_key)  # sealed with the new key
    # The previous key retired: old tickets are refused, new ones still work.
    (state / PREVIOUS_TICKET_KEY_FILE).unlink()
    keys.use_ticket_keys(TicketKeys.load(state))
    body = hb_bytes(kiosk, 2)
    status, answer = await kiosk.post(HB, body, headers=session_headers(kiosk, old, body))
    assert refused(status, answer, "bad_session")
    assert (await kiosk.post(HB, body, headers=session_headers(kiosk, new, body)))[0] == 200


@SQLITE_ONLY
async def test_server_start_and_init_create_the_ticket_key(srv, tmp_path, monkeypatch):
    key = srv.settings.state_dir / TICKET_KEY_FILE
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    from fleet.server.cli import main

    monkeypatch.setenv("ADMIN_PW", "first-admin-pw")
    state = tmp_path / "fresh"
    # `init` runs its own event loop: in a thread, beside this test's.
    assert await asyncio.to_thread(main, ["init", "--state-dir", str(state),
                                          "--password-env", "ADMIN_PW"]) == 0
    first = (state / TICKET_KEY_FILE).read_bytes()
    assert await asyncio.to_thread(main, ["init", "--state-dir", str(state), "--admin", "other",
                                          "--password-env", "ADMIN_PW"]) == 0
    assert (state / TICKET_KEY_FILE).read_bytes() == first  # kept
