"""Ops credentials for the kiosk's maintenance screen, checked offline on the kiosk.

The fleet server issues an engineer a credential: a small payload signed with the fleet's
Ed25519 "credential key", short enough for a QR code shown from a phone or a printed card:

    kcred1.<base64url(payload JSON)>.<base64url(Ed25519 signature)>

payload (compact keys; the `kcred1.` prefix is the format version): `id` credential id,
`h` holder (ops user name), `r` region codes (6 digits, GB/T 2260) and/or `k` kiosk ids,
`nb`/`ex` validity (Unix seconds), `s` PIN salt and `p` scrypt(PIN) (both base64url), `n`
scrypt's log2 cost. The signature covers `kiosk-credential-v1\\n` + the payload bytes exactly
as encoded.

The kiosk (`MaintenanceGate`) needs no network: it checks the signature against the public
key from enrolment, the validity window, the scope (its device id, or its region: a
province code `320000` or a city code `320200` covers the districts below it), the
revocation list the fleet server sends with every heartbeat ack, and finally the 6-digit PIN
typed on the keypad (the QR alone is not enough: a photographed card is useless without the
PIN). Failed attempts are rate-limited: 5 failures within 10 minutes lock the gate for
5 minutes, doubling on each repeat until a success. Events for the agent carry the
credential id and the reason, never the PIN or the credential text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provisioning.keystore import KeystoreError, read_private, write_private

PREFIX = "kcred1."
DOMAIN = b"kiosk-credential-v1\n"
MAX_TEXT_CHARS = 2000
MAX_VALIDITY_S = 30 * 24 * 3600
SCRYPT_LOG_N = 15  # ~0.1 s per PIN check on a kiosk CPU, 32 MiB
SCRYPT_LOG_N_RANGE = (12, 20)
SCRYPT_R, SCRYPT_P = 8, 1
PIN_HASH_BYTES = 16  # 128 bits: far more than a 6-digit PIN has; keeps the QR small
CLOCK_LEEWAY_S = 60  # the kiosk's and the server's clocks may differ a little

MAX_FAILURES = 5
FAILURE_WINDOW_S = 600.0
LOCK_S = 300.0
MAX_LOCK_S = 24 * 3600.0
MAX_EVENTS = 1000

REASONS = (
    "malformed", "bad_signature", "expired", "not_yet_valid", "out_of_scope", "revoked",
    "wrong_pin", "locked",
)
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
_REGION = re.compile(r"^[0-9]{6}\Z")
_PIN = re.compile(r"^[0-9]{6}\Z")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*\Z")


class CredentialError(ValueError):
    """Bad arguments to `issue_credential`."""


@dataclass(frozen=True)
class Credential:
    cred_id: str
    holder: str
    regions: tuple[str, ...]
    kiosks: tuple[str, ...]
    not_before: int
    expires_at: int
    pin_salt: bytes
    pin_hash: bytes
    scrypt_log_n: int


@dataclass(frozen=True)
class GateResult:
    ok: bool
    reason: str | None = None  # one of REASONS when not ok
    cred_id: str | None = None
    holder: str | None = None
    expires_at: int | None = None  # the maintenance session ends then at the latest


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _pin_hash(pin: str, salt: bytes, log_n: int) -> bytes:
    return hashlib.scrypt(
        pin.encode("ascii"), salt=salt, n=2**log_n, r=SCRYPT_R, p=SCRYPT_P, dklen=PIN_HASH_BYTES,
        maxmem=2**log_n * SCRYPT_R * 128 + 2**20,
    )


def issue_credential(
    signing_key: Ed25519PrivateKey,
    holder: str,
    *,
    regions: Iterable[str] = (),
    kiosks: Iterable[str] = (),
    pin: str,
    valid_for_s: float,
    now: float | None = None,
    scrypt_log_n: int = SCRYPT_LOG_N,
) -> tuple[str, str]:
    """A signed credential for `holder`, valid from now for `valid_for_s` on the kiosks in
    `regions` or `kiosks`. Returns `(cred_id, text)`; the text goes into the QR code."""
    regions, kiosks = tuple(regions), tuple(kiosks)
    if not isinstance(holder, str) or not 1 <= len(holder) <= 64 or not holder.isprintable():
        raise CredentialError("holder must be 1-64 printable characters")
    if not regions and not kiosks:
        raise CredentialError("a credential needs a scope: regions or kiosks")
    if not all(isinstance(r, str) and _REGION.match(r) for r in regions):
        raise CredentialError("regions are 6-digit codes")
    if not all(isinstance(k, str) and _IDENT.match(k) for k in kiosks):
        raise CredentialError("kiosks are device ids")
    if len(regions) + len(kiosks) > 50:
        raise CredentialError("at most 50 regions and kiosks (the QR code must stay small)")
    if not isinstance(pin, str) or not _PIN.match(pin):
        raise CredentialError("the PIN is 6 digits")
    if not 0 < valid_for_s <= MAX_VALIDITY_S:
        raise CredentialError(f"validity must be 1 s .. {MAX_VALIDITY_S // 86400} days")
    lo, hi = SCRYPT_LOG_N_RANGE
    if not lo <= scrypt_log_n <= hi:
        raise CredentialError(f"scrypt_log_n must be {lo}..{hi}")
    issued = int(time.time() if now is None else now)
    cred_id = "cred_" + secrets.token_hex(8)
    salt = secrets.token_bytes(16)
    payload: dict = {"id": cred_id, "h": holder}
    if regions:
        payload["r"] = list(regions)
    if kiosks:
        payload["k"] = list(kiosks)
    payload.update({
        "nb": issued,
        "ex": issued + int(valid_for_s),
        "s": _b64(salt),
        "p": _b64(_pin_hash(pin, salt, scrypt_log_n)),
        "n": scrypt_log_n,
    })
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signature = signing_key.sign(DOMAIN + body)
    return cred_id, f"{PREFIX}{_b64(body)}.{_b64(signature)}"


class _Malformed(Exception):
    pass


def _split(text: str) -> tuple[bytes, bytes]:
    if not isinstance(text, str):
        raise _Malformed
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS or not text.startswith(PREFIX):
        raise _Malformed
    parts = text[len(PREFIX):].split(".")
    if len(parts) != 2:
        raise _Malformed
    try:
        return _unb64(parts[0]), _unb64(parts[1])
    except (ValueError, binascii.Error):
        raise _Malformed from None


def _parse_payload(body: bytes) -> Credential:
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _Malformed from None
    if not isinstance(data, dict):
        raise _Malformed
    try:
        cred_id, holder = data["id"], data["h"]
        regions, kiosks = data.get("r", []), data.get("k", [])
        nb, ex, log_n = data["nb"], data["ex"], data["n"]
        salt, pin_hash = _unb64(data["s"]), _unb64(data["p"])
    except (KeyError, ValueError, TypeError, binascii.Error):
        raise _Malformed from None
    ok = (
        isinstance(cred_id, str) and _IDENT.match(cred_id)
        and isinstance(holder, str) and 0 < len(holder) <= 64
        and isinstance(regions, list)
        and all(isinstance(r, str) and _REGION.match(r) for r in regions)
        and isinstance(kiosks, list)
        and all(isinstance(k, str) and _IDENT.match(k) for k in kiosks)
        and all(isinstance(x, int) and not isinstance(x, bool) for x in (nb, ex, log_n))
        and SCRYPT_LOG_N_RANGE[0] <= log_n <= SCRYPT_LOG_N_RANGE[1]
        and len(salt) >= 8 and len(pin_hash) == PIN_HASH_BYTES
    )
    if not ok:
        raise _Malformed
    return Credential(cred_id, holder, tuple(regions), tuple(kiosks), nb, ex, salt, pin_hash, log_n)


def read_credential(text: str, public_key: Ed25519PublicKey) -> Credential:
    """Parse and verify the signature of a credential (no time, scope or PIN check).
    Raises ValueError("malformed" | "bad_signature")."""
    try:
        body, signature = _split(text)
    except _Malformed:
        raise ValueError("malformed") from None
    try:
        public_key.verify(signature, DOMAIN + body)
    except (InvalidSignature, ValueError):
        raise ValueError("bad_signature") from None
    try:
        return _parse_payload(body)
    except _Malformed:
        raise ValueError("malformed") from None


def region_covers(scope: str, region: str) -> bool:
    """GB/T 2260: `320000` (province) covers 32xxxx, `320200` (city) covers 3202xx, a
    district code covers itself."""
    if scope == region:
        return True
    if scope.endswith("0000"):
        return region[:2] == scope[:2]
    if scope.endswith("00"):
        return region[:4] == scope[:4]
    return False


@dataclass
class _Limiter:
    failures: deque = field(default_factory=deque)
    lock_count: int = 0
    locked_until: float = 0.0


class MaintenanceGate:
    """The maintenance screen's door. One per kiosk process; thread-safe.

    `revoked_path`, if given, keeps the revocation list across restarts (a kiosk that
    restarts offline still refuses a revoked credential)."""

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        device_id: str,
        region: str,
        clock: Callable[[], float] = time.time,
        *,
        revoked_path: Path | str | None = None,
    ) -> None:
        self.public_key = public_key
        self.device_id = device_id
        self.region = region
        self.clock = clock
        self.revoked_path = Path(revoked_path) if revoked_path else None
        self._lock = threading.Lock()
        self._limiter = _Limiter()
        self._events: deque[dict] = deque(maxlen=MAX_EVENTS)
        self._revoked: set[str] = self._load_revoked()

    @classmethod
    def from_enrolment(
        cls,
        state_dir: Path | str,
        clock: Callable[[], float] = time.time,
        *,
        revoked_path: Path | str | None = None,
    ) -> MaintenanceGate:
        """The gate for this kiosk, from its `enrolment.json` (device id, site region,
        credential key). Raises `NotEnrolled` / `IdentityError` (provisioning.device), or
        `IdentityError` when the enrolment carries no key to check credentials with."""
        from provisioning.device import EnrolmentRecord, IdentityError

        record = EnrolmentRecord.load(state_dir)
        key = record.credential_key()
        if key is None:
            raise IdentityError(
                "the enrolment has no credential or bundle key: maintenance credentials "
                "cannot be checked (re-enrol with a fleet server that sends one)"
            )
        return cls(key, record.device_id, record.site.region, clock, revoked_path=revoked_path)

    @property
    def locked_until(self) -> float | None:
        """When the gate opens again (Unix time), or None when it is not locked."""
        with self._lock:
            until = self._limiter.locked_until
            return until if until > self.clock() else None

    @property
    def revoked(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._revoked)

    def revoke(self, ids: Iterable[str]) -> None:
        """Add revoked credential ids (from each HeartbeatAck). Ids only ever get added:
        the server keeps listing a revoked id until the credential would have expired."""
        new = {i for i in ids if isinstance(i, str) and _IDENT.match(i)}
        with self._lock:
            if new <= self._revoked:
                return
            self._revoked |= new
            self._save_revoked()

    def attempt(self, text: str, pin: str) -> GateResult:
        """Check a scanned credential and the PIN typed for it."""
        with self._lock:
            now = self.clock()
            if self._limiter.locked_until > now:
                return self._record(now, GateResult(False, "locked"))
            result = self._check(text, pin, now)
            if result.ok:
                self._limiter = _Limiter()
            else:
                self._fail(now)
            return self._record(now, result)

    def drain_events(self) -> list[dict]:
        """Attempts since the last drain, for the agent to report: time, ok, reason,
        cred_id (only for a credential whose signature verified). No PIN, no text."""
        with self._lock:
            events = list(self._events)
            self._events.clear()
            return events

    # -- internals (lock held) --------------------------------------------------------------

    def _check(self, text: str, pin: str, now: float) -> GateResult:
        try:
            cred = read_credential(text, self.public_key)
        except ValueError as exc:
            return GateResult(False, str(exc))
        seen = dict(cred_id=cred.cred_id, holder=cred.holder, expires_at=cred.expires_at)
        if cred.cred_id in self._revoked:
            return GateResult(False, "revoked", **seen)
        if now < cred.not_before - CLOCK_LEEWAY_S:
            return GateResult(False, "not_yet_valid", **seen)
        if now >= cred.expires_at:
            return GateResult(False, "expired", **seen)
        in_scope = self.device_id in cred.kiosks or (
            bool(_REGION.match(self.region or ""))
            and any(region_covers(r, self.region) for r in cred.regions)
        )
        if not in_scope:
            return GateResult(False, "out_of_scope", **seen)
        if not (isinstance(pin, str) and _PIN.match(pin)):
            return GateResult(False, "wrong_pin", **seen)
        candidate = _pin_hash(pin, cred.pin_salt, cred.scrypt_log_n)
        if not hmac.compare_digest(candidate, cred.pin_hash):
            return GateResult(False, "wrong_pin", **seen)
        return GateResult(True, None, **seen)

    def _fail(self, now: float) -> None:
        limiter = self._limiter
        limiter.failures.append(now)
        while limiter.failures and limiter.failures[0] <= now - FAILURE_WINDOW_S:
            limiter.failures.popleft()
        if len(limiter.failures) >= MAX_FAILURES:
            limiter.lock_count += 1
            limiter.locked_until = now + min(LOCK_S * 2 ** (limiter.lock_count - 1), MAX_LOCK_S)
            limiter.failures.clear()

    def _record(self, now: float, result: GateResult) -> GateResult:
        self._events.append({
            "at": now,
            "event": "maintenance_login",
            "ok": result.ok,
            "reason": result.reason,
            "cred_id": result.cred_id,
        })
        return result

    def _load_revoked(self) -> set[str]:
        if self.revoked_path is None:
            return set()
        try:
            data = json.loads(read_private(self.revoked_path))
        except FileNotFoundError:
            return set()
        except (OSError, ValueError):
            return set()  # unreadable: the next heartbeat ack brings the list again
        if not isinstance(data, list):
            return set()
        return {i for i in data if isinstance(i, str) and _IDENT.match(i)}

    def _save_revoked(self) -> None:
        if self.revoked_path is None:
            return
        try:
            write_private(self.revoked_path, json.dumps(sorted(self._revoked)))
        except KeystoreError:
            pass  # kept in memory; the next heartbeat ack brings it again
