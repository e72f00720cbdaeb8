"""Signed request headers, as the fleet server reads them from every kiosk request.

`signed_headers` gives `signing.parse_signed_headers` and then `verify_request` what a request
may carry: headers signed for real with a P-256 device key, then mutated — each header's
value replaced (odd text, huge or signed numbers, padded/unpadded/std base64, DER signatures
with flipped bytes, huge integers or trailing data), names in other cases or repeated,
non-text values, headers missing — and random mappings. Documented error: `AuthError`.
"""

from __future__ import annotations

import base64
import binascii
import random
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning import signing
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

TARGETS = (SIGNED_HEADERS,)
