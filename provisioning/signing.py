"""Signed requests: how every kiosk request after enrolment proves which kiosk sent it.

Not mTLS, because the fleet server runs behind a TLS-terminating load balancer: the client
certificate would end at the balancer. Instead each request carries four headers and an
ECDSA P-256/SHA-256 signature, made with the device key, over

    kiosk-request-v1 \\n METHOD \\n path_and_query \\n device_id \\n counter \\n timestamp
    \\n sha256_hex(body)

(UTF-8, joined by `\\n`, method upper-case, path and query exactly as sent). The server looks
the device up, verifies with the public key from its certificate, checks the timestamp is
within `max_skew_s` of its clock, and then accepts the counter only if it is higher than the
last one it saw, atomically in its database:

    UPDATE devices SET last_counter=:c WHERE id=:id AND last_counter < :c AND revoked_at IS NULL

No row updated means a replay (or a revoked kiosk): refused. `RequestCounter` is the kiosk's
half: strictly increasing, persisted, and at least the current time in microseconds so a
reinstalled counter file still moves forward.

After the first request a kiosk normally works in a *session* (provisioning/sessions.py):
the same four headers plus `Kiosk-Session`, with an HMAC-SHA256 instead of the ECDSA
signature, over the same lines but under the domain `kiosk-session-request-v1`, so a
signature and a MAC can never stand in for each other. The counter, timestamp and
revocation rules are the same for both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from provisioning.keystore import write_private

H_DEVICE = "Kiosk-Device"
H_COUNTER = "Kiosk-Counter"
H_TIMESTAMP = "Kiosk-Timestamp"
H_SIGNATURE = "Kiosk-Signature"
H_SESSION = "Kiosk-Session"  # session-mode requests only (provisioning/sessions.py)
SIGNED_HEADERS = (H_DEVICE, H_COUNTER, H_TIMESTAMP, H_SIGNATURE)
DOMAIN = b"kiosk-request-v1"
SESSION_DOMAIN = b"kiosk-session-request-v1"
MAX_SKEW_S = 300
MAX_COUNTER = 2**63 - 1  # the server keeps it in a BIGINT
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}\Z")
_DIGITS = re.compile(r"^[0-9]{1,19}\Z")
_B64URL = re.compile(r"^[A-Za-z0-9_-]{8,100}\Z")  # a P-256 DER signature is at most 72 bytes

# AuthError codes. The server answers 401 with `{"error": code, "detail": ...}`; the codes
# after the blank line are the server's own (it decides them from its database).
MISSING_SIGNATURE = "missing_signature"
MISSING_HEADER = "missing_header"
MALFORMED_HEADERS = "malformed_headers"
MALFORMED_DEVICE = "malformed_device"
MALFORMED_COUNTER = "malformed_counter"
MALFORMED_TIMESTAMP = "malformed_timestamp"
MALFORMED_SIGNATURE = "malformed_signature"
BAD_SIGNATURE = "bad_signature"
CLOCK_SKEW = "clock_skew"
BAD_SESSION = "bad_session"  # the session ticket cannot be opened or is another kiosk's
SESSION_EXPIRED = "session_expired"

UNKNOWN_DEVICE = "unknown_device"
DEVICE_REVOKED = "device_revoked"
REPLAYED = "replayed"


def is_device_id(text: object) -> bool:
    return isinstance(text, str) and _IDENT.match(text) is not None


class AuthError(Exception):
    """A request whose signature headers are missing, malformed or wrong. `code` is stable,
    `detail` a sentence (never containing key material or the signed bytes)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class SignedHeaders:
    device_id: str
    counter: int
    timestamp: int
    signature: bytes


def signed_bytes(
    method: str,
    path_and_query: str,
    device_id: str,
    counter: int,
    timestamp: int,
    body: bytes,
    domain: bytes = DOMAIN,
) -> bytes:
    """Exactly the bytes the signature (or, with `SESSION_DOMAIN`, the session MAC) covers."""
    parts = [
        domain.decode("ascii"),
        method.upper(),
        path_and_query,
        device_id,
        str(int(counter)),
        str(int(timestamp)),
        hashlib.sha256(bytes(body)).hexdigest(),
    ]
    return "\n".join(parts).encode("utf-8")


def sign_request(
    private_key: ec.EllipticCurvePrivateKey,
    device_id: str,
    counter: int,
    method: str,
    path_and_query: str,
    body: bytes,
    now: float,
) -> dict[str, str]:
    """The four headers for one request."""
    if not _IDENT.match(device_id):
        raise ValueError("device_id is not a valid identifier")
    if isinstance(counter, bool) or not 0 <= int(counter) <= MAX_COUNTER:
        raise ValueError("counter out of range")
    timestamp = int(now)
    message = signed_bytes(method, path_and_query, device_id, counter, timestamp, body)
    signature = private_key.sign(message, ec.ECDSA(hashes.SHA256()))
    return {
        H_DEVICE: device_id,
        H_COUNTER: str(int(counter)),
        H_TIMESTAMP: str(timestamp),
        H_SIGNATURE: base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii"),
    }


def parse_signed_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """The signature headers of a request (names case-insensitive). Raises only `AuthError`,
    whatever `headers` holds."""
    try:
        return _parse(headers)
    except AuthError:
        raise
    except Exception:  # junk we did not foresee (odd mapping types, odd values)
        raise AuthError(MALFORMED_HEADERS, "the request headers cannot be read") from None


_WANTED: dict[tuple[str, ...], dict[str, str]] = {}  # lower-case name → name, per tuple


def read_auth_headers(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The values of `names` in `headers` (names case-insensitive, values stripped of blanks
    and tabs). A name given twice, or a value that is not text, is `malformed_headers`."""
    if not isinstance(headers, Mapping):
        raise AuthError(MALFORMED_HEADERS, "no headers")
    wanted = _WANTED.get(names)
    if wanted is None:
        wanted = _WANTED[names] = {name.lower(): name for name in names}
    found: dict[str, str] = {}
    for key, value in headers.items():
        if not isinstance(key, str):
            continue
        name = wanted.get(key.lower())
        if name is None:
            continue
        if name in found:
            raise AuthError(MALFORMED_HEADERS, f"{name} appears more than once")
        if not isinstance(value, str):
            raise AuthError(MALFORMED_HEADERS, f"{name} is not text")
        found[name] = value.strip(" \t")
    return found


def check_common_headers(found: Mapping[str, str]) -> tuple[str, int, int, str]:
    """Device id, counter and timestamp checked, and the signature text (not yet decoded):
    what a signed and a session request have in common."""
    if H_SIGNATURE not in found:
        raise AuthError(MISSING_SIGNATURE, "the request is not signed (Kiosk-Signature missing)")
    for name in (H_DEVICE, H_COUNTER, H_TIMESTAMP):
        if name not in found:
            raise AuthError(MISSING_HEADER, f"{name} missing")
    device_id = found[H_DEVICE]
    if not _IDENT.match(device_id):
        raise AuthError(MALFORMED_DEVICE, "Kiosk-Device is not a device id")
    if not _DIGITS.match(found[H_COUNTER]) or int(found[H_COUNTER]) > MAX_COUNTER:
        raise AuthError(MALFORMED_COUNTER, "Kiosk-Counter must be a non-negative integer")
    if not _DIGITS.match(found[H_TIMESTAMP]) or len(found[H_TIMESTAMP]) > 12:
        raise AuthError(MALFORMED_TIMESTAMP, "Kiosk-Timestamp must be Unix seconds")
    sig_text = found[H_SIGNATURE]
    if not _B64URL.match(sig_text) or len(sig_text) % 4 == 1:
        raise AuthError(MALFORMED_SIGNATURE, "Kiosk-Signature must be unpadded base64url")
    return device_id, int(found[H_COUNTER]), int(found[H_TIMESTAMP]), sig_text


def b64url_decode(text: str) -> bytes:
    """Unpadded base64url (already matched against its alphabet) to bytes."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_skew(timestamp: int, now: float, max_skew_s: float) -> None:
    skew = timestamp - now
    if abs(skew) > max_skew_s:
        raise AuthError(
            CLOCK_SKEW,
            f"the kiosk's clock is {skew:+.0f} s off the server's (allowed ±{max_skew_s:.0f} s)",
        )


def _parse(headers: Mapping[str, str]) -> SignedHeaders:
    found = read_auth_headers(headers, SIGNED_HEADERS)
    device_id, counter, timestamp, sig_text = check_common_headers(found)
    try:
        signature = b64url_decode(sig_text)
        decode_dss_signature(signature)  # a DER SEQUENCE of two INTEGERs, or junk
    except (binascii.Error, ValueError):
        raise AuthError(
            MALFORMED_SIGNATURE, "Kiosk-Signature is not a DER ECDSA signature"
        ) from None
    return SignedHeaders(device_id, counter, timestamp, signature)


def verify_request(
    public_key: ec.EllipticCurvePublicKey,
    signed: SignedHeaders,
    method: str,
    path_and_query: str,
    body: bytes,
    now: float,
    max_skew_s: float = MAX_SKEW_S,
) -> None:
    """Raise `AuthError("clock_skew")` when the timestamp is too far from `now`, or
    `AuthError("bad_signature")` when the signature does not verify. The counter check is the
    caller's (atomic, in its database)."""
    check_skew(signed.timestamp, now, max_skew_s)
    message = signed_bytes(
        method, path_and_query, signed.device_id, signed.counter, signed.timestamp, body
    )
    try:
        public_key.verify(signed.signature, message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise AuthError(BAD_SIGNATURE, "the signature does not verify") from None


class RequestCounter:
    """The kiosk's request counter, persisted in `path` (one decimal number, 0600).

    `next()` returns max(last + 1, time_ns() // 1000): strictly increasing across calls and
    restarts, and still ahead of the server's last value when the file is lost or restored
    from an old backup (as long as the clock is not behind by more than the gap). Each value
    is written (temporary file, fsync, rename) before it is returned, so a crash never hands
    out the same number twice. Thread-safe.
    """

    def __init__(self, path: Path | str, *, clock_ns=time.time_ns) -> None:
        self.path = Path(path)
        self._clock_ns = clock_ns
        self._lock = threading.Lock()

    @property
    def last(self) -> int:
        with self._lock:
            return self._read()

    def next(self) -> int:
        with self._lock:
            value = max(self._read() + 1, self._clock_ns() // 1000)
            if value > MAX_COUNTER:
                raise OverflowError("request counter exhausted")
            self._write(value)
            return value

    def advance_to(self, value: int) -> None:
        """Make sure the next value is above `value` (e.g. the server said `replayed` and
        reported its last counter)."""
        with self._lock:
            if value > self._read():
                self._write(min(int(value), MAX_COUNTER - 1))

    def _read(self) -> int:
        # Read every time (it is one small file): another process, such as `kiosk provision
        # status` or a restored backup, may have changed it.
        try:
            text = self.path.read_text("ascii").strip()
        except FileNotFoundError:
            return 0
        except (OSError, UnicodeDecodeError):
            return 0  # unreadable: the time floor still moves forward
        return int(text) if _DIGITS.match(text) else 0

    def _write(self, value: int) -> None:
        write_private(self.path, f"{value}\n")  # raises KeystoreError
