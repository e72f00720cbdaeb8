"""Maintenance credentials, as the kiosk reads them from a scanned QR code or typed text.

`maintenance_credential` gives `credentials.read_credential` the `kcred1.<payload>.<sig>`
text: credentials issued for real, their payload JSON mutated as a tree (wrong types, huge
numbers, odd ids, missing keys) and signed again with the trusted key (so the payload checks
after the signature run), text mutations, other base64 alphabets and paddings, signatures by
another key, random text. The contract is `ValueError("malformed")` or
`ValueError("bad_signature")`: any other exception, or a ValueError with another message
(a UnicodeDecodeError, a binascii.Error leaking through), is a failure.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from provisioning import credentials
from tests.fuzz import mutate
from tests.fuzz.engine import Target

NOW = 1_795_000_000
_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(3, 35)))
_OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(4, 36)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _payload_of(text: str) -> Any:
    body = text[len(credentials.PREFIX):].split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _signed(payload: bytes, key: Ed25519PrivateKey) -> str:
    return f"{credentials.PREFIX}{_b64(payload)}.{_b64(key.sign(credentials.DOMAIN + payload))}"


def _fixed(text: str, number: int) -> str:
    """An issued credential with its random parts (id, PIN salt and hash) made fixed and
    signed again, so the same seed gives the same inputs in every process."""
    payload = _payload_of(text)
    payload.update(id=f"cred_fuzz{number:04d}", s=_b64(bytes(16)), p=_b64(bytes(range(16))))
    return _signed(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(), _KEY)


# Issuing runs scrypt (cost 2^12 at least): done once, mutated many times.
_ISSUED = [
    _fixed(credentials.issue_credential(_KEY, "ops.wx", regions=("320200",), pin="123456",
                                        valid_for_s=3600, now=NOW, scrypt_log_n=12)[1], 1),
    _fixed(credentials.issue_credential(_KEY, "工程师", kiosks=("kiosk-0001",), pin="654321",
                                        valid_for_s=60, now=NOW, scrypt_log_n=12)[1], 2),
]


def _credential_input(rng: random.Random) -> str:
    text = rng.choice(_ISSUED)
    roll = rng.random()
    if roll < 0.15:
        return text
    if roll < 0.6:  # payload mutated, signed again: the payload checks run
        payload = mutate.to_json(rng, mutate.mutate_tree(rng, _payload_of(text)))
        if rng.random() < 0.1:
            payload = mutate.mutate_bytes(rng, payload)
        return _signed(payload, _KEY if rng.random() < 0.9 else _OTHER)
    if roll < 0.8:
        return mutate.mutate_text(rng, text)
    if roll < 0.9:
        body, signature = text[len(credentials.PREFIX):].split(".")
        return rng.choice((
            text + "=", text.replace("-", "+").replace("_", "/"), " " + text + "\r\n",
            credentials.PREFIX + body, credentials.PREFIX + body + "." + signature + ".x",
            credentials.PREFIX + body + "=." + signature, text.upper(), text * 2,
        ))
    return credentials.PREFIX * rng.randint(0, 1) + mutate.odd_text(rng, 60)


def read(text: str) -> str:
    try:
        credential = credentials.read_credential(text, _KEY.public_key())
    except ValueError as exc:
        if type(exc) is ValueError and str(exc) in ("malformed", "bad_signature"):
            raise
        raise AssertionError(f"{type(exc).__name__} is not the documented ValueError") from exc
    return "read" if credential.holder else "read (no holder)"


MAINTENANCE_CREDENTIAL = Target(
    name="maintenance_credential",
    parser="provisioning/credentials.py: read_credential (kcred1 text: base64url, Ed25519, "
           "payload JSON)",
    generate=_credential_input,
    run=read,
    documented=(ValueError,),
    label=lambda exc: f"ValueError:{exc}",
    short_examples=3_000,
)

TARGETS = (MAINTENANCE_CREDENTIAL,)
