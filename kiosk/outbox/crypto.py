"""Sealing of an outbox record's personal part: its codec and AES-GCM encryption.

What is personal: the applicant (`Identity`, with its authorisation token) and the form
fields. They are serialised together (`encode_personal`) and sealed with AES-256-GCM under a
96-bit random nonce. Everything the sender and ops need in clear (reference, idempotency key,
item, timestamps) is bound into the associated data (`associated_data`), so ciphertext moved
to another row, or a row whose reference, key or item was edited, fails authentication instead
of sending one citizen's data under another submission.

Blob layout: version byte (1) | nonce (12) | ciphertext with the 16-byte tag.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.identity.model import Assurance, Authorization, Identity, IdentitySource, Sex

_VERSION = 1
_NONCE_BYTES = 12
_TAG_BYTES = 16
_AD_DOMAIN = "kiosk.outbox.record/v1"


class RecordUnreadable(Exception):
    """A sealed record failed authentication or decoding: tampered, swapped, truncated,
    or sealed under a key this kiosk no longer has. Carries no record content."""


class UnserializableFields(TypeError):
    """The form fields hold a value the outbox cannot store faithfully (a bug in the item)."""


# -- AES-GCM ---------------------------------------------------------------------------------


def associated_data(
    *,
    local_ref: str,
    idempotency_key: str,
    key_id: str,
    item_id: str,
    item_code: str,
    commitment_accepted: bool,
    submitted_at: float,
) -> bytes:
    """The record's clear metadata as canonical bytes, authenticated with its ciphertext."""
    return json.dumps(
        [
            _AD_DOMAIN,
            local_ref,
            idempotency_key,
            key_id,
            item_id,
            item_code,
            bool(commitment_accepted),
            float(submitted_at).hex(),  # exact: no float formatting drift between versions
        ],
        ensure_ascii=True,
        separators=(",", ":"),
    ).encode("ascii")


def seal(key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """Encrypt under a fresh random nonce; never reuse a (key, nonce) pair."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return bytes([_VERSION]) + nonce + AESGCM(key).encrypt(nonce, plaintext, ad)


def unseal(key: bytes, blob: bytes, ad: bytes) -> bytes:
    """Decrypt and authenticate, or raise RecordUnreadable."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise RecordUnreadable("sealed record is not bytes")
    blob = bytes(blob)
    if len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
        raise RecordUnreadable("sealed record is truncated")
    if blob[0] != _VERSION:
        raise RecordUnreadable("sealed record has an unknown format version")
    nonce, ciphertext = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag:
        raise RecordUnreadable("sealed record failed authentication") from None


# -- the personal part's codec ---------------------------------------------------------------


def encode_personal(applicant: Identity, fields: Mapping[str, Any]) -> bytes:
    """Applicant and fields as UTF-8 JSON. Raises UnserializableFields for values that would
    not come back as they went in."""
    document = {
        "v": 1,
        "applicant": _identity_to_json(applicant),
        "fields": _encode_value(dict(fields)),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_personal(plaintext: bytes) -> tuple[Identity, dict[str, Any]]:
    try:
        document = json.loads(plaintext.decode("utf-8"))
        if document.get("v") != 1:
            raise ValueError("unknown personal document version")
        return _identity_from_json(document["applicant"]), _decode_value(document["fields"])
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
        # The text of a decoding error can quote the document: keep only its class.
        raise RecordUnreadable(f"personal part does not decode ({type(exc).__name__})") from None


def _identity_to_json(identity: Identity) -> dict[str, Any]:
    auth = identity.authorization
    return {
        "source": identity.source.value,
        "id_number": identity.id_number,
        "name": identity.name,
        "assurance": int(identity.assurance),
        "sex": identity.sex.value if identity.sex is not None else None,
        "birth_date": identity.birth_date.isoformat() if identity.birth_date else None,
        "nation": identity.nation,
        "ssc_card_number": identity.ssc_card_number,
        "authorization": None
        if auth is None
        else {
            "token": auth.token,
            "expires_at": auth.expires_at,
            "certificate_types": list(auth.certificate_types),
        },
    }


def _identity_from_json(data: Mapping[str, Any]) -> Identity:
    # The constructor, not Identity.create: rebuild exactly what was stored; the number was
    # validated when the identity was first made.
    auth = data["authorization"]
    return Identity(
        source=IdentitySource(data["source"]),
        id_number=data["id_number"],
        name=data["name"],
        assurance=Assurance(data["assurance"]),
        sex=Sex(data["sex"]) if data["sex"] is not None else None,
        birth_date=dt.date.fromisoformat(data["birth_date"]) if data["birth_date"] else None,
        nation=data["nation"],
        ssc_card_number=data["ssc_card_number"],
        authorization=None
        if auth is None
        else Authorization(
            token=auth["token"],
            expires_at=auth["expires_at"],
            certificate_types=tuple(auth["certificate_types"]),
        ),
    )


# Field values beyond JSON's own types travel as {"$t": tag, "v": ...}. A dict that itself has
# a "$t" key is wrapped as {"$t": "dict", ...} so it can never be mistaken for a tagged value.
_TAG = "$t"


def _encode_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_encode_value(v) for v in value]
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise UnserializableFields(f"field keys must be strings, not {type(k).__name__}")
            out[k] = _encode_value(v)
        return {_TAG: "dict", "v": out} if _TAG in out else out
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {_TAG: "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    raise UnserializableFields(f"cannot store a field value of type {type(value).__name__}")


def _decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag is None:
            return {k: _decode_value(v) for k, v in value.items()}
        inner = value["v"]
        if tag == "dict":
            return {k: _decode_value(v) for k, v in inner.items()}
        if tag == "datetime":
            return dt.datetime.fromisoformat(inner)
        if tag == "date":
            return dt.date.fromisoformat(inner)
        if tag == "decimal":
            return decimal.Decimal(inner)
        if tag == "bytes":
            return base64.b64decode(inner, validate=True)
        raise ValueError("unknown value tag")
    return value
