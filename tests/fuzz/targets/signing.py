"""Signed request headers, as the fleet server reads them from every kiosk request.

`session_headers` does the same for session-mode requests (provisioning/sessions.py):
`parse_session_headers`, the ticket opened with the server's ticket keys, then
`verify_session_request`, on real session headers (deterministic tickets and MACs) with
junk or truncated tickets, tickets sealed by another key or with a byte flipped, wrong or
ECDSA-sized MACs, a MAC under the signature's domain, the device swapped for another
kiosk's (with or without its ticket), expired sessions and every mutation of the signed
headers' values. Documented error: `AuthError`.

`signed_headers` gives `signing.parse_signed_headers` and then `verify_request` what a request
may carry: headers signed for real with a P-256 device key, then mutated — each header's
value replaced (odd text, huge or signed numbers, padded/unpadded/std base64, DER signatures
with flipped bytes, huge integers or trailing data), names in other cases or repeated,
non-text values, headers missing — and random mappings. Documented error: `AuthError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning import sessions, signing
from provisioning.signing import AuthError
from tests.fuzz import mutate
from tests.fuzz.engine import Target

NOW = 1_795_000_000

# -- inputs --------------------------------------------------------------------

_DEVICE_KEY = ec.derive_private_key(0x5EED_F022, ec.SECP256R1())
_DEVICE_PUBLIC = _DEVICE_KEY.public_key()
_METHOD, _PATH, _BODY = "POST", "/api/v1/heartbeat", b'{"seq": 1}'


def _signature_bytes(value: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None


def _header_value(rng: random.Random, name: str, value: Any) -> Any:
    if not isinstance(value, str):  # already replaced by a non-text value
        return value
    roll = rng.randrange(10)
    if roll == 0:
        return mutate.odd_text(rng, 20)
    if roll == 1:
        return rng.choice(("", " ", "-1", "+1", "0x10", "1e3", "١٢٣", "9" * 19, "9" * 20,
                           str(2**63), "0" * 30 + "1", "\t7 ", "7\n"))
    if roll == 2:  # the signature in other alphabets and paddings
        raw = (_signature_bytes(value) if name == signing.H_SIGNATURE else None) or value.encode()
        return rng.choice((base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
                           value + "=", value[:-1], value + "A", value * 2))
    if roll == 3 and name == signing.H_SIGNATURE:  # DER with one byte changed, or junk DER
        raw = _signature_bytes(value) or b""
        raw = mutate.mutate_bytes(rng, raw) if rng.random() < 0.7 else (
            b"\x30\x08\x02\x02\x00\x01\x02\x02\xff\xff" + rng.randbytes(rng.randint(0, 4)))
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    if roll == 4:
        return rng.choice((None, 7, b"bytes", ["list"], 1.5))
    if roll == 5:
        return mutate.mutate_text(rng, value)
    return value


def _sign(device_id: str, counter: int, timestamp: int) -> dict[str, str]:
    """`sign_request`'s headers, but with RFC 6979 deterministic ECDSA: the same seed gives
    the same signature, so a failing input can be generated again."""
    message = signing.signed_bytes(_METHOD, _PATH, device_id, counter, timestamp, _BODY)
    signature = _DEVICE_KEY.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    headers = signing.sign_request(_DEVICE_KEY, device_id, counter, _METHOD, _PATH, _BODY, timestamp)
    headers[signing.H_SIGNATURE] = base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")
    return headers


def _headers_input(rng: random.Random) -> tuple[Any, int, bytes]:
    counter = rng.choice((1, 2**40, signing.MAX_COUNTER))
    timestamp = NOW + rng.choice((0, 0, 299, -300, 301, -10**6))
    headers: Any = _sign(rng.choice(("kiosk-0001", "k")), counter, timestamp)
    body = _BODY if rng.random() < 0.9 else mutate.mutate_bytes(rng, _BODY)
    roll = rng.random()
    if roll < 0.2:
        return headers, NOW, body
    if roll < 0.8:
        for _ in range(rng.choice((1, 1, 2))):
            name = rng.choice(list(signing.SIGNED_HEADERS))
            headers[name] = _header_value(rng, name, headers[name])
        if rng.random() < 0.1:
            del headers[rng.choice(list(signing.SIGNED_HEADERS))]
        if rng.random() < 0.1:  # the same header twice, in another case
            name = rng.choice(list(signing.SIGNED_HEADERS))
            headers[name.upper()] = headers.get(name, "1")
        return headers, NOW, body
    if roll < 0.9:
        return {rng.choice(list(signing.SIGNED_HEADERS) + ["x"]): mutate.odd_text(rng, 30)
                for _ in range(rng.randint(0, 5))}, NOW, body
    return rng.choice((None, [], "headers", {1: 2}, {signing.H_SIGNATURE: None})), NOW, body


def check_headers(value: tuple[Any, int, bytes]) -> str:
    headers, now, body = value
    signed = signing.parse_signed_headers(headers)
    signing.verify_request(_DEVICE_PUBLIC, signed, _METHOD, _PATH, body, now)
    return "verified"


SIGNED_HEADERS = Target(
    name="signed_headers",
    parser="provisioning/signing.py: parse_signed_headers, verify_request",
    generate=_headers_input,
    run=check_headers,
    documented=(AuthError,),
    short_examples=5_000,
)

# -- session requests ------------------------------------------------------------

_TICKET_KEY = bytes(range(32))
_OTHER_TICKET_KEY = bytes(range(32, 64))
_TICKET_KEYS = sessions.TicketKeys(_TICKET_KEY)
_KIOSKS = ("kiosk-0001", "kiosk-0002")


def _session(rng: random.Random, device_id: str, ticket_key: bytes = _TICKET_KEY,
             expires_at: int = NOW + 3600) -> sessions.DeviceSession:
    """A session as the server would have opened it, with every random part from `rng`."""
    key = rng.randbytes(32)
    ticket = sessions.seal_ticket(ticket_key, sessions.Ticket(device_id, key, expires_at),
                                  rng.randbytes(12))
    return sessions.DeviceSession(device_id, ticket, key, expires_at)


def _session_input(rng: random.Random) -> tuple[Any, int, bytes]:
    device_id = rng.choice(_KIOSKS)
    session = _session(rng, device_id, expires_at=NOW + rng.choice((3600, 3600, 1, 0, -5)))
    counter = rng.choice((1, 2**40, signing.MAX_COUNTER))
    timestamp = NOW + rng.choice((0, 0, 299, -300, 301))
    headers: Any = session.sign(_METHOD, _PATH, _BODY, counter, timestamp)
    body = _BODY if rng.random() < 0.9 else mutate.mutate_bytes(rng, _BODY)
    roll = rng.random()
    if roll < 0.25:
        return headers, NOW, body
    if roll < 0.55:  # tickets: junk, truncated, flipped, another key's, another kiosk's
        ticket = headers[signing.H_SESSION]
        raw = signing.b64url_decode(ticket)
        choice = rng.randrange(6)
        if choice == 0:
            headers[signing.H_SESSION] = sessions.b64url(rng.randbytes(rng.randint(0, 200)))
        elif choice == 1:
            headers[signing.H_SESSION] = sessions.b64url(raw[:rng.randrange(len(raw))])
        elif choice == 2:
            headers[signing.H_SESSION] = sessions.b64url(mutate.mutate_bytes(rng, raw))
        elif choice == 3:
            headers[signing.H_SESSION] = _session(rng, device_id, _OTHER_TICKET_KEY).ticket
        elif choice == 4:  # swapped devices: the other kiosk's name on this ticket
            headers[signing.H_DEVICE] = _KIOSKS[1 - _KIOSKS.index(device_id)]
        else:  # the other kiosk's valid ticket and key under this kiosk's name
            other = _session(rng, _KIOSKS[1 - _KIOSKS.index(device_id)])
            swapped = sessions.DeviceSession(device_id, other.ticket, other.key,
                                             other.expires_at)
            headers = swapped.sign(_METHOD, _PATH, _BODY, counter, timestamp)
        return headers, NOW, body
    if roll < 0.7:  # MACs: random, ECDSA-sized, under the signature's domain
        choice = rng.randrange(3)
        if choice == 0:
            mac = rng.randbytes(32)
        elif choice == 1:
            mac = rng.randbytes(rng.choice((31, 33, 70, 72)))
        else:
            message = signing.signed_bytes(_METHOD, _PATH, device_id, counter, timestamp, body)
            mac = hmac.new(session.key, message, hashlib.sha256).digest()
        headers[signing.H_SIGNATURE] = sessions.b64url(mac)
        return headers, NOW, body
    if roll < 0.95:
        names = list(sessions.SESSION_HEADERS)
        for _ in range(rng.choice((1, 1, 2))):
            name = rng.choice(names)
            headers[name] = _header_value(rng, name, headers[name])
        if rng.random() < 0.1:
            del headers[rng.choice(names)]
        if rng.random() < 0.1:
            name = rng.choice(names)
            headers[name.upper()] = headers.get(name, "1")
        return headers, NOW, body
    return rng.choice((None, [], {1: 2}, {signing.H_SESSION: None},
                       {signing.H_SESSION: "x" * 60})), NOW, body


def check_session(value: tuple[Any, int, bytes]) -> str:
    headers, now, body = value
    signed = sessions.parse_session_headers(headers)
    ticket = _TICKET_KEYS.open(signed.ticket)
    sessions.verify_session_request(ticket, signed, _METHOD, _PATH, body, now, 300)
    return "verified"


SESSION_HEADERS = Target(
    name="session_headers",
    parser="provisioning/sessions.py: parse_session_headers, TicketKeys.open, "
           "verify_session_request",
    generate=_session_input,
    run=check_session,
    documented=(AuthError,),
    short_examples=5_000,
)

TARGETS = (SIGNED_HEADERS, SESSION_HEADERS)
