"""Platform answers: what `HttpPlatformClient` does with the bytes the platform sends back.

`platform_answers` calls the client's real public methods (verify_code, fetch_certificates,
submit, query_case, query, rate, catalogue) with only `_exchange` (the HTTP round trip) and
`_sleep` replaced: each call gets a scripted sequence of (HTTP status, body) — the token
answer, then the call's own answer, maybe a 401 invalid_token and a second round. Bodies are
the wire models of `kiosk/platform/wire.py` built valid (a real PDF with its SHA-256, a
catalogue signed with a real Ed25519 key), then mutated as trees (wrong types, huge and
non-finite numbers, deep nesting, missing and unknown keys, odd strings) and re-serialised,
mutated as bytes, replaced by deeply nested JSON or random bytes; error answers in both error
shapes. Catalogue payloads are re-signed after mutation half the time, so the payload model
and the envelope checks are reached, not only the signature check.

Documented errors: `PlatformError` and its subclasses (kiosk/platform/api.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.identity.model import Authorization, Identity, IdentitySource
from kiosk.platform.api import (
    Application,
    CaseState,
    CertificateType,
    PlatformError,
    PlatformUnavailable,
    Rating,
    RatingLevel,
)
from kiosk.platform.client import HttpPlatformClient, RetryPolicy
from kiosk.platform.wire import canonical_json
from tests.fuzz import mutate
from tests.fuzz.engine import Target
from tests.fuzz.sync import run_coroutine

NOW = 1_795_000_000.0
ID_NUMBER = "320211198506151318"  # fictional (drivers/sim test citizen), valid check
_CALLS = ("verify_code", "fetch_certificates", "submit", "query_case", "query", "rate", "catalogue")
_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_KEY_ID = "fuzz-key"
_PUBLIC = _KEY.public_key().public_bytes_raw()


def _valid_id(rng: random.Random) -> str:
    return ID_NUMBER if rng.random() < 0.8 else rng.choice(
        ("320211198506151310", "11010519491231002X", "32021119850615131x", "000000000000000000", "١٢٣")
    )


def _token(rng: random.Random) -> dict[str, Any]:
    return {"access_token": "t" * 32, "token_type": rng.choice(("Bearer", "bearer", "mac")),
            "expires_in": rng.choice((3600, 1, 60))}


def _pdf(rng: random.Random) -> bytes:
    return b"%PDF-1.7\n" + rng.randbytes(rng.randint(0, 64)) if rng.random() < 0.9 else rng.randbytes(12)


def _certificate(rng: random.Random) -> dict[str, Any]:
    pdf = _pdf(rng)
    return {
        "licence_code": "L-1", "type": rng.choice([str(t) for t in CertificateType] + ["other"]),
        "title": "证明", "holder_id_number": _valid_id(rng), "issuer_name": "人社厅",
        "issuer_code": "1132", "item_code": "320000-SB", "region_code": "320000",
        "status": "issued", "issued_on": rng.choice(("2026-01-05", "2026-02-30", "20260105")),
        "valid_until": rng.choice((None, "2027-01-05", "x")), "verify_url": "https://v/1",
        "file": {
            "format": "pdf",
            "content_base64": base64.b64encode(pdf).decode(),
            "sha256": hashlib.sha256(pdf).hexdigest() if rng.random() < 0.9 else "0" * 64,
        },
    }


def _case(rng: random.Random) -> dict[str, Any]:
    states = [str(s) for s in CaseState] + ["lost"]
    return {
        "case_number": "SZ-2026-000123", "item_code": "320000-SB-DJ-0101",
        "state": rng.choice(states), "received_at": NOW, "updated_at": NOW,
        "history": [{"state": rng.choice(states), "at": NOW, "note": "ok"} for _ in range(rng.randint(0, 3))],
    }


def catalogue_answer(rng: random.Random, mutate_payload: bool) -> dict[str, Any]:
    payload: Any = {
        "version": 7, "issued_at": NOW,
        "entries": [{"item_id": "ssc_payment_records", "item_code": "320000-SB-CX-0001",
                     "version": "1.0.0", "enabled": True} for _ in range(rng.randint(0, 3))],
    }
    if mutate_payload:
        payload = mutate.mutate_tree(rng, payload)
    raw = _json(rng, payload) if mutate_payload else canonical_json(payload)
    signed = raw if rng.random() < 0.7 else mutate.mutate_bytes(rng, raw)
    return {
        "version": 7, "issued_at": NOW, "key_id": rng.choice((_KEY_ID, _KEY_ID, "other")),
        "algorithm": "Ed25519",
        "payload_base64": base64.b64encode(signed).decode(),
        "signature_base64": base64.b64encode(_KEY.sign(raw)).decode(),
    }


def _answer(rng: random.Random, call: str) -> Any:
    if call == "verify_code":
        return {"holder": {"name": rng.choice(("王晓明", " ", "张" * 64)), "id_number": _valid_id(rng)},
                "authorization": {"token": "a" * 32, "expires_in": 60,
                                  "certificate_types": ["ssc_participation", "unknown"]}}
    if call == "fetch_certificates":
        return {"certificates": [_certificate(rng) for _ in range(rng.randint(0, 3))]}
    if call in ("submit", "query_case"):
        return _case(rng)
    if call == "query":
        return {"item_code": "320000-SB-CX-0001", "as_of": NOW,
                "summary": {"total": 12, "unit": "元"}, "rows": [{"month": "2026-01", "amount": 1.5}]}
    if call == "rate":
        return {"rating_id": "r-1", "follow_up_required": False}
    return catalogue_answer(rng, rng.random() < 0.5)


def _json(rng: random.Random, tree: Any) -> bytes:
    return mutate.to_json(rng, tree)


def _body(rng: random.Random, tree: Any) -> bytes:
    roll = rng.random()
    if roll < 0.3:
        return _json(rng, tree)
    if roll < 0.75:
        return _json(rng, mutate.mutate_tree(rng, tree))
    if roll < 0.85:
        return mutate.mutate_bytes(rng, _json(rng, tree))
    if roll < 0.92:
        return mutate.deep_json(rng).encode()
    return mutate.random_bytes(rng, 64)


def _error(rng: random.Random) -> tuple[int, bytes]:
    status = rng.choice((400, 401, 403, 404, 409, 410, 415, 418, 422, 429, 500, 502, 503, 302, 204))
    code = rng.choice(("invalid_token", "code_expired", "code_replayed", "code_invalid", "not_found",
                       "invalid_client", "authorization_scope", "rate_limited", "x" * 65, "", "新"))
    tree = rng.choice(({"error": {"code": code, "message": "m"}}, {"error": code}, [code], code))
    return status, _body(rng, tree)


def _platform_input(rng: random.Random) -> tuple[str, list[tuple[int, bytes]], int]:
    call = rng.choice(_CALLS)
    script: list[tuple[int, bytes]] = []
    script.append((200, _body(rng, _token(rng)) if rng.random() < 0.1 else _json(rng, _token(rng))))
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        if rng.random() < 0.2:
            script.append(_error(rng))
        else:
            script.append((rng.choice((200, 200, 200, 201, 299)), _body(rng, _answer(rng, call))))
    return call, script, rng.randrange(2**32)


def _identity(source: IdentitySource) -> Identity:
    authorization = Authorization("z" * 32, NOW + 60, ("ssc_participation",)) \
        if source is IdentitySource.SUFU_CODE else None
    return Identity.create(source, ID_NUMBER, "王晓明", authorization=authorization)


_IDENTITIES = [_identity(s) for s in IdentitySource]


def call_platform(value: tuple[str, list[tuple[int, bytes]], int]) -> str:
    call, script, seed = value
    rng = random.Random(seed)
    answers = list(script)

    async def exchange(method: str, path: str, *, timeout: float, body: Any,
                       headers: Any) -> tuple[int, bytes, dict[str, str]]:
        if not answers:
            raise PlatformUnavailable(f"{method} {path}: connection refused")
        status, raw = answers.pop(0)
        return status, raw, {"Retry-After": rng.choice(("1", "x", "1e400", ""))}

    async def sleep(_: float) -> None:
        return None

    client = HttpPlatformClient(
        "http://platform.invalid", device_id="fuzz-kiosk", client_secret="s",
        clock=lambda: NOW, retry=RetryPolicy(attempts=2, base_delay_s=0.0),
        catalogue_keys={_KEY_ID: _PUBLIC} if seed % 4 else None,
    )
    client._exchange = exchange
    client._sleep = sleep
    identity = _IDENTITIES[seed % len(_IDENTITIES)]
    if call == "verify_code":
        result: Any = client.verify_code("CODE-1234567890", item_code="320000-SB-CX-0001")
    elif call == "fetch_certificates":
        result = client.fetch_certificates(identity, [CertificateType.SSC_PARTICIPATION,
                                                      CertificateType.HOUSEHOLD_REGISTER])
    elif call == "submit":
        application = Application("flexible_employment_enrol", "320000-SB-DJ-0101", identity,
                                  {"insurance": "pension"}, True, NOW)
        result = client.submit(application, idempotency_key="fuzz-key-0001")
    elif call == "query_case":
        result = client.query_case("SZ-2026-000123")
    elif call == "query":
        result = client.query("320000-SB-CX-0001", identity, {"year": 2026})
    elif call == "rate":
        result = client.rate(Rating("320000-SB-CX-0001", RatingLevel.SATISFIED, None, NOW))
    else:
        result = client.catalogue()
    outcome = run_coroutine(result)
    repr(outcome)
    return f"{call}: ok"


def _platform_from_bytes(data: bytes) -> tuple[str, list[tuple[int, bytes]], int]:
    """First byte: the call; the rest: its 200 answer, after a valid token."""
    token = json.dumps({"access_token": "t" * 32, "expires_in": 3600}).encode()
    call = _CALLS[data[0] % len(_CALLS)] if data else "query"
    return call, [(200, token), (200, data[1:])], 1


PLATFORM_ANSWERS = Target(
    name="platform_answers",
    parser="kiosk/platform/client.py + wire.py: every answer model via decode(), error_for, "
           "certificate_from, catalogue verification (through HttpPlatformClient's methods)",
    generate=_platform_input,
    run=call_platform,
    documented=(PlatformError,),
    label=lambda exc: type(exc).__name__,
    short_examples=5_000,
    from_bytes=_platform_from_bytes,
)

TARGETS = (PLATFORM_ANSWERS,)
