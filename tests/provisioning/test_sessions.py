"""Device sessions without a server: tickets sealed and opened (tampered, another key, wrong
key id, truncated, expired), both sides derive the same key, the MAC is bound to its domain
and request, headers parsed strictly, and the ticket key file created once however many
processes race for it."""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import os
import stat

import pytest

from fleet.wire import DeviceSessionRequest, DeviceSessionResponse
from provisioning import sessions as s
from provisioning.sessions import (
    DeviceSession,
    SessionOffer,
    Ticket,
    TicketKeyError,
    TicketKeys,
    b64url,
    create_ticket_key,
    parse_session_headers,
    verify_session_request,
)
from provisioning.signing import AuthError, b64url_decode, signed_bytes

NOW = 1_795_000_000.0
METHOD, PATH, BODY = "POST", "/api/v1/device/heartbeat", b'{"seq": 1}'


def code_of(call, *args) -> str:
    with pytest.raises(AuthError) as info:
        call(*args)
    return info.value.code


def handshake(keys: TicketKeys, device_id: str = "kiosk-0001", now: float = NOW,
              ttl_s: float = 3600) -> tuple[DeviceSession, DeviceSessionResponse]:
    offer = SessionOffer(device_id)
    request = DeviceSessionRequest.model_validate_json(offer.body)
    response = keys.accept(device_id, request.kex_public, now, ttl_s)
    return offer.accept(DeviceSessionResponse.model_validate_json(response.model_dump_json())), \
        response


def verify(keys: TicketKeys, headers: dict[str, str], body: bytes = BODY,
           now: float = NOW) -> None:
    signed = parse_session_headers(headers)
    verify_session_request(keys.open(signed.ticket), signed, METHOD, PATH, body, now, 300)


def test_both_sides_derive_the_same_key_and_the_ticket_carries_it():
    keys = TicketKeys.generate()
    session, response = handshake(keys)
    ticket = keys.open(response.session)
    assert ticket == Ticket("kiosk-0001", session.key, int(NOW) + 3600)
    assert len(session.key) == 32 and session.expires_at == int(NOW) + 3600
    # Another handshake: other ephemeral keys, another session key.
    assert handshake(keys)[0].key != session.key
    # Nothing secret in the wire messages or in a repr.
    assert session.key not in b64url_decode(response.session)
    assert session.key.hex() not in repr(session) and response.session not in repr(session)


def test_the_session_key_is_bound_to_the_device_and_both_public_keys():
    offer = SessionOffer("kiosk-0001")
    keys = TicketKeys.generate()
    response = keys.accept("kiosk-0001", b64url(offer.public), NOW, 60)
    mine = offer.accept(response).key
    assert keys.open(response.session).session_key == mine
    # The server derived for another device id: the kiosk (deriving for its own) disagrees.
    other = keys.accept("kiosk-0002", b64url(offer.public), NOW, 60)
    assert keys.open(other.session).device_id == "kiosk-0002"
    assert offer.accept(other).key != keys.open(other.session).session_key
    with pytest.raises(ValueError):  # an all-zero (low-order) key exchanges to nothing
        keys.accept("kiosk-0001", b64url(bytes(32)), NOW, 60)


def test_tampered_truncated_foreign_and_wrong_key_id_tickets_are_bad_sessions():
    keys = TicketKeys.generate()
    _, response = handshake(keys)
    raw = b64url_decode(response.session)
    assert code_of(keys.open, response.session[:-1]) == "bad_session"
    for index in (0, 1, 13, 20, len(raw) - 1):  # key id, nonce, ciphertext, tag
        changed = bytearray(raw)
        changed[index] ^= 0x01
        assert code_of(keys.open, b64url(bytes(changed))) == "bad_session", index
    for cut in (len(raw) - 1, 60, 13, 0):
        assert code_of(keys.open, b64url(raw[:cut])) == "bad_session", cut
    assert code_of(TicketKeys.generate().open, response.session) == "bad_session"
    for junk in ("", "x" * 1000, "not a ticket!!", None, 7, b64url(os.urandom(100))):
        assert code_of(keys.open, junk) == "bad_session"


def test_expired_session_and_device_mismatch():
    keys = TicketKeys.generate()
    session, _ = handshake(keys, ttl_s=60)
    headers = session.sign(METHOD, PATH, BODY, 5, NOW + 59)
    verify(keys, headers, now=NOW + 59)
    late = session.sign(METHOD, PATH, BODY, 6, NOW + 60)
    assert code_of(verify, keys, late, BODY, NOW + 60) == "session_expired"
    other, _ = handshake(keys, "kiosk-0002")
    swapped = DeviceSession("kiosk-0001", other.ticket, other.key, other.expires_at)
    assert code_of(verify, keys, swapped.sign(METHOD, PATH, BODY, 7, NOW)) == "bad_session"


def test_the_mac_covers_the_request_and_its_own_domain_only():
    keys = TicketKeys.generate()
    session, _ = handshake(keys)
    headers = session.sign(METHOD, PATH, BODY, 9, NOW)
    verify(keys, headers)
    assert code_of(verify, keys, headers, BODY + b" ") == "bad_signature"
    assert code_of(verify, keys, {**headers, "Kiosk-Counter": "10"}) == "bad_signature"
    assert code_of(verify, keys, headers, BODY, NOW + 301) == "clock_skew"
    # The same key over the signed-request bytes (domain kiosk-request-v1): refused.
    ecdsa_bytes = signed_bytes(METHOD, PATH, "kiosk-0001", 9, int(NOW), BODY)
    wrong = {**headers, "Kiosk-Signature": b64url(
        hmac.new(session.key, ecdsa_bytes, hashlib.sha256).digest())}
    assert code_of(verify, keys, wrong) == "bad_signature"


def test_session_headers_are_parsed_strictly():
    keys = TicketKeys.generate()
    session, _ = handshake(keys)
    headers = session.sign(METHOD, PATH, BODY, 9, NOW)
    lower = {k.lower(): v for k, v in headers.items()}
    assert parse_session_headers(lower).counter == 9
    no_ticket = {k: v for k, v in headers.items() if k != "Kiosk-Session"}
    assert code_of(parse_session_headers, no_ticket) == "missing_header"
    ecdsa_sized = {**headers, "Kiosk-Signature": b64url(os.urandom(70))}
    assert code_of(parse_session_headers, ecdsa_sized) == "malformed_signature"
    assert code_of(parse_session_headers, {**headers, "KIOSK-SESSION": "x"}) == \
        "malformed_headers"
    assert code_of(parse_session_headers, None) == "malformed_headers"
    assert s.has_session(lower) and not s.has_session({"Kiosk-Device": "k"})


def test_previous_key_opens_but_never_seals(tmp_path):
    old = TicketKeys.ensure(tmp_path)
    _, response = handshake(old)
    os.replace(tmp_path / s.TICKET_KEY_FILE, tmp_path / s.PREVIOUS_TICKET_KEY_FILE)
    rotated = TicketKeys.ensure(tmp_path)
    assert rotated.open(response.session).device_id == "kiosk-0001"
    _, fresh = handshake(rotated)
    assert code_of(old.open, fresh.session) == "bad_session"
    assert b64url_decode(fresh.session)[0] == s.key_id_of(
        (tmp_path / s.TICKET_KEY_FILE).read_bytes())


def _ensure(directory: str) -> bytes:
    return TicketKeys.ensure(directory)._current


def test_ticket_key_created_once_when_processes_race(tmp_path):
    with multiprocessing.get_context("fork").Pool(6) as pool:
        keys = pool.map(_ensure, [str(tmp_path)] * 24)
    assert len(set(keys)) == 1
    path = tmp_path / s.TICKET_KEY_FILE
    assert path.read_bytes() == keys[0] and len(keys[0]) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == [s.TICKET_KEY_FILE]  # no temp files
    assert create_ticket_key(tmp_path) is False


def test_unsafe_or_wrong_key_files_are_refused(tmp_path):
    create_ticket_key(tmp_path)
    path = tmp_path / s.TICKET_KEY_FILE
    os.chmod(path, 0o644)
    with pytest.raises(TicketKeyError, match="chmod 600"):
        TicketKeys.load(tmp_path)
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with pytest.raises(TicketKeyError, match="32 bytes"):
        TicketKeys.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        TicketKeys.load(tmp_path / "missing")
