"""Device sessions: one ECDSA-signed handshake, then an HMAC-SHA256 per request.

Why: verifying a kiosk's ECDSA P-256 signature costs the fleet server ~63 µs of CPU per
request, about a quarter of a heartbeat's path. mTLS would pay the asymmetric step once per
connection, but TLS ends at the load balancer (docs/security.md §2), so the same idea one
layer up: the kiosk proves who it is once with its device key, both sides agree a session
key, and later requests carry a MAC made with that key (a few µs to check).

Handshake: `POST /api/v1/device/session`, itself an ordinary signed request (counter and all):

    kiosk  → {"wire_version": 1, "kex_public": <X25519 public key, base64url>}
    server → {"session": <ticket>, "kex_public": <server's ephemeral X25519 key>,
              "expires_at": <Unix s>}

Both sides compute

    session_key = HKDF-SHA256(X25519(shared), length 32, salt None,
                              info = b"kiosk-session-v1\\n" + device_id + b"\\n"
                                     + kiosk_kex_public + server_kex_public)

so nothing secret crosses the wire (the balancer → server hop may be plain HTTP).

The ticket is stateless, so any server process with the ticket key accepts it (several
workers, several hosts):

    ticket = key_id (1) || nonce (12) || AES-256-GCM(ticket_key, nonce,
             expires_at (8, big-endian) || session_key (32) || device_id, aad=b"kiosk-ticket-v1")

`key_id` is the first byte of SHA-256 over the key (so the key file is just 32 random bytes);
it picks the current or the previous key when the ticket key is rotated (`TicketKeys`).

Session requests carry the four signed-request headers plus `Kiosk-Session: <ticket>`, and
`Kiosk-Signature` is base64url(HMAC-SHA256(session_key, signed_bytes(...))) under the domain
`kiosk-session-request-v1` (provisioning/signing.py), so a MAC never passes for a signature
or the other way round. Counter, timestamp and revocation checks are exactly those of signed
requests: the session only replaces the ECDSA verification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fleet.wire import DeviceSessionRequest, DeviceSessionResponse
from provisioning.keystore import (
    FILE_MODE,
    KeystoreError,
    group_or_other_can_read,
    read_private,
    sync_directory,
)
from provisioning.signing import (
    BAD_SESSION,
    BAD_SIGNATURE,
    H_COUNTER,
    H_DEVICE,
    H_SESSION,
    H_SIGNATURE,
    H_TIMESTAMP,
    MALFORMED_HEADERS,
    MALFORMED_SIGNATURE,
    MAX_COUNTER,
    MISSING_HEADER,
    SESSION_DOMAIN,
    SESSION_EXPIRED,
    SIGNED_HEADERS,
    AuthError,
    b64url_decode,
    check_common_headers,
    check_skew,
    is_device_id,
    read_auth_headers,
    signed_bytes,
)

SESSION_PATH = "/api/v1/device/session"
SESSION_HEADERS = (*SIGNED_HEADERS, H_SESSION)
TICKET_KEY_FILE = "session-ticket.key"
PREVIOUS_TICKET_KEY_FILE = "session-ticket.prev.key"
DEFAULT_TTL_S = 3600
KEY_BYTES = 32
MAC_BYTES = 32
KEX_INFO = b"kiosk-session-v1\n"
TICKET_AAD = b"kiosk-ticket-v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEAD_BYTES = 1 + _NONCE_BYTES
_MIN_TICKET_BYTES = _HEAD_BYTES + 8 + KEY_BYTES + 1 + _TAG_BYTES
_MAX_TICKET_BYTES = _HEAD_BYTES + 8 + KEY_BYTES + 64 + _TAG_BYTES  # device ids: <= 64 chars
_TICKET = re.compile(r"^[A-Za-z0-9_-]{40,250}\Z")


class TicketKeyError(Exception):
    """The ticket key file cannot be created or read, or is not a ticket key. Never carries
    key material, only the path and the reason."""


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def key_id_of(key: bytes) -> int:
    """The byte that names a ticket key inside its tickets."""
    return hashlib.sha256(b"kiosk-ticket-key-id\n" + key).digest()[0]


def derive_session_key(
    private_key: X25519PrivateKey,
    peer_public: bytes,
    device_id: str,
    kiosk_public: bytes,
    server_public: bytes,
) -> bytes:
    """The session key from our X25519 key and the peer's public key (32 raw bytes). Raises
    ValueError for a key that is not a usable X25519 public key (wrong size, low order)."""
    if len(peer_public) != 32:
        raise ValueError("an X25519 public key is 32 bytes")
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    info = KEX_INFO + device_id.encode("ascii") + b"\n" + kiosk_public + server_public
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(shared)


def _raw_public(private_key: X25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- tickets (server side) ----------------------------------------------------------------

@dataclass(frozen=True)
class Ticket:
    """What an opened ticket says: whose session, its key, until when (server clock)."""

    device_id: str
    session_key: bytes = field(repr=False)
    expires_at: int


def seal_ticket(key: bytes, ticket: Ticket, nonce: bytes) -> str:
    """The ticket text for `ticket` under the ticket key `key`. `nonce` must never repeat
    under one key (TicketKeys.seal draws it at random; the fuzz target fixes it)."""
    if len(nonce) != _NONCE_BYTES or len(ticket.session_key) != KEY_BYTES:
        raise ValueError("wrong nonce or session key size")
    plain = (int(ticket.expires_at).to_bytes(8, "big") + ticket.session_key
             + ticket.device_id.encode("ascii"))
    sealed = AESGCM(key).encrypt(nonce, plain, TICKET_AAD)
    return b64url(bytes([key_id_of(key)]) + nonce + sealed)


class TicketKeys:
    """The server's ticket key and, during a rotation, the previous one (still accepted,
    never used to seal). Every server process behind the balancer must hold the same files."""

    def __init__(self, current: bytes, previous: bytes | None = None) -> None:
        for key in (current, previous):
            if key is not None and len(key) != KEY_BYTES:
                raise TicketKeyError(f"a ticket key is {KEY_BYTES} bytes")
        self._current = current
        self._current_id = key_id_of(current)
        self._current_aead = AESGCM(current)
        self._aeads = [(self._current_id, self._current_aead)]
        if previous is not None and previous != current:
            self._aeads.append((key_id_of(previous), AESGCM(previous)))

    @classmethod
    def generate(cls) -> TicketKeys:
        """A fresh key held in memory only (tests; a single process that keeps no state)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def load(cls, state_dir: Path | str) -> TicketKeys:
        state_dir = Path(state_dir)
        current = _read_key(state_dir / TICKET_KEY_FILE)
        try:
            previous = _read_key(state_dir / PREVIOUS_TICKET_KEY_FILE)
        except FileNotFoundError:
            previous = None
        return cls(current, previous)

    @classmethod
    def ensure(cls, state_dir: Path | str) -> TicketKeys:
        """Load the keys, creating the current one first if it does not exist (safe when
        several server processes start at once: one wins, the others read its file)."""
        create_ticket_key(state_dir)
        return cls.load(state_dir)

    def seal(self, device_id: str, session_key: bytes, expires_at: int) -> str:
        return seal_ticket(self._current, Ticket(device_id, session_key, int(expires_at)),
                           os.urandom(_NONCE_BYTES))

    def open(self, text: object) -> Ticket:
        """The ticket's content, or AuthError("bad_session") for anything this server did
        not seal with one of its keys."""
        if not isinstance(text, str) or not _TICKET.match(text) or len(text) % 4 == 1:
            raise AuthError(BAD_SESSION, "Kiosk-Session is not a session ticket")
        raw = b64url_decode(text)
        if not _MIN_TICKET_BYTES <= len(raw) <= _MAX_TICKET_BYTES:
            raise AuthError(BAD_SESSION, "Kiosk-Session is not a session ticket")
        key_id, nonce, sealed = raw[0], raw[1:_HEAD_BYTES], raw[_HEAD_BYTES:]
        for candidate_id, aead in self._aeads:
            if candidate_id != key_id:
                continue
            try:
                plain = aead.decrypt(nonce, sealed, TICKET_AAD)
            except InvalidTag:
                continue
            try:
                device_id = plain[8 + KEY_BYTES:].decode("ascii")
            except UnicodeDecodeError:
                break
            if not is_device_id(device_id):
                break
            return Ticket(device_id, plain[8:8 + KEY_BYTES], int.from_bytes(plain[:8], "big"))
        raise AuthError(BAD_SESSION, "the session ticket was not issued by this fleet server "
                                     "(or its key has been rotated out): open a new session")

    def accept(self, device_id: str, kiosk_kex_public: str, now: float,
               ttl_s: float) -> DeviceSessionResponse:
        """The server's half of the handshake for an authenticated kiosk. Raises ValueError
        when `kiosk_kex_public` is not a usable X25519 public key."""
        try:
            kiosk_public = b64url_decode(kiosk_kex_public)
        except ValueError:
            raise ValueError("kex_public is not base64url") from None
        ephemeral = X25519PrivateKey.generate()
        server_public = _raw_public(ephemeral)
        session_key = derive_session_key(ephemeral, kiosk_public, device_id, kiosk_public,
                                         server_public)
        expires_at = int(now + ttl_s)
        return DeviceSessionResponse(session=self.seal(device_id, session_key, expires_at),
                                     kex_public=b64url(server_public), expires_at=expires_at)


def _read_key(path: Path) -> bytes:
    try:
        key = read_private(path)
    except FileNotFoundError:
        raise
    except KeystoreError as exc:
        raise TicketKeyError(str(exc)) from None
    if len(key) != KEY_BYTES:
        raise TicketKeyError(f"{path} is not a session ticket key ({KEY_BYTES} bytes)")
    if group_or_other_can_read(path):
        raise TicketKeyError(f"{path} is readable by other users: chmod 600 it and rotate "
                             "the key (docs/security.md)")
    return key


def create_ticket_key(state_dir: Path | str, name: str = TICKET_KEY_FILE) -> bool:
    """Create `<state_dir>/<name>` (32 random bytes, 0600) unless it exists; True when this
    call created it. The key is written and fsynced under a temporary name, then hard-linked
    to its name: link() never replaces an existing file, so when several processes race,
    exactly one file wins and nobody ever reads half a key."""
    directory = Path(state_dir)
    target = directory / name
    if target.exists():
        return False
    tmp = directory / f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            os.write(fd, secrets.token_bytes(KEY_BYTES))  # 32 bytes: one write
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, target)
            created = True
        except FileExistsError:
            created = False
        sync_directory(directory)
        return created
    except OSError as exc:
        raise TicketKeyError(f"cannot create {target} ({exc.strerror or exc})") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


# --- session requests (both sides) --------------------------------------------------------

@dataclass(frozen=True)
class SessionHeaders:
    device_id: str
    counter: int
    timestamp: int
    ticket: str
    mac: bytes


def has_session(headers: Mapping[str, str]) -> bool:
    """Whether a request is in session mode (carries Kiosk-Session)."""
    try:
        return H_SESSION in headers if hasattr(headers, "getall") else any(
            isinstance(k, str) and k.lower() == "kiosk-session" for k in headers)
    except Exception:
        return False


def parse_session_headers(headers: Mapping[str, str]) -> SessionHeaders:
    """The headers of a session-mode request (names case-insensitive). Raises only
    `AuthError`, whatever `headers` holds."""
    try:
        return _parse_session(headers)
    except AuthError:
        raise
    except Exception:
        raise AuthError(MALFORMED_HEADERS, "the request headers cannot be read") from None


def _parse_session(headers: Mapping[str, str]) -> SessionHeaders:
    found = read_auth_headers(headers, SESSION_HEADERS)
    device_id, counter, timestamp, sig_text = check_common_headers(found)
    if H_SESSION not in found:
        raise AuthError(MISSING_HEADER, "Kiosk-Session missing")
    try:
        mac = b64url_decode(sig_text)
    except ValueError:
        mac = b""
    if len(mac) != MAC_BYTES:
        raise AuthError(MALFORMED_SIGNATURE, "Kiosk-Signature must be a base64url "
                                             "HMAC-SHA256 in session mode")
    return SessionHeaders(device_id, counter, timestamp, found[H_SESSION], mac)


def session_mac(session_key: bytes, method: str, path_and_query: str, device_id: str,
                counter: int, timestamp: int, body: bytes) -> bytes:
    message = signed_bytes(method, path_and_query, device_id, counter, timestamp, body,
                           domain=SESSION_DOMAIN)
    return hmac.new(session_key, message, hashlib.sha256).digest()


def verify_session_request(
    ticket: Ticket,
    signed: SessionHeaders,
    method: str,
    path_and_query: str,
    body: bytes,
    now: float,
    max_skew_s: float,
) -> None:
    """`bad_session` (another kiosk's ticket), `session_expired`, `clock_skew` or
    `bad_signature`, as AuthError. The counter check is the caller's, as for signatures."""
    if ticket.device_id != signed.device_id:
        raise AuthError(BAD_SESSION, "this session belongs to another kiosk")
    if ticket.expires_at <= now:
        raise AuthError(SESSION_EXPIRED, "the session has expired: open a new one")
    check_skew(signed.timestamp, now, max_skew_s)
    expected = session_mac(ticket.session_key, method, path_and_query, signed.device_id,
                           signed.counter, signed.timestamp, body)
    if not hmac.compare_digest(expected, signed.mac):
        raise AuthError(BAD_SIGNATURE, "the session MAC does not verify")


# --- the kiosk's half ---------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceSession:
    """An open session, kept in the agent's memory only (never on disk: whoever reads it can
    speak for the kiosk until it expires)."""

    device_id: str
    ticket: str = field(repr=False)
    key: bytes = field(repr=False)
    expires_at: int

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at - (time.time() if now is None else now) < seconds

    def sign(self, method: str, path_and_query: str, body: bytes, counter: int,
             now: float) -> dict[str, str]:
        """The five headers of one session-mode request."""
        if isinstance(counter, bool) or not 0 <= int(counter) <= MAX_COUNTER:
            raise ValueError("counter out of range")
        timestamp = int(now)
        mac = session_mac(self.key, method, path_and_query, self.device_id, int(counter),
                          timestamp, body)
        return {
            H_DEVICE: self.device_id,
            H_COUNTER: str(int(counter)),
            H_TIMESTAMP: str(timestamp),
            H_SESSION: self.ticket,
            H_SIGNATURE: b64url(mac),
        }


class SessionOffer:
    """The kiosk's ephemeral X25519 key for one handshake: `body` goes to the session
    endpoint (signed with the device key), `accept` turns the answer into a session."""

    def __init__(self, device_id: str) -> None:
        if not is_device_id(device_id):
            raise ValueError("device_id is not a valid identifier")
        self.device_id = device_id
        self._private = X25519PrivateKey.generate()
        self.public = _raw_public(self._private)

    @property
    def body(self) -> bytes:
        return DeviceSessionRequest(kex_public=b64url(self.public)).model_dump_json().encode()

    def accept(self, response: DeviceSessionResponse) -> DeviceSession:
        """Raises ValueError when the server's key is unusable."""
        server_public = b64url_decode(response.kex_public)
        key = derive_session_key(self._private, server_public, self.device_id, self.public,
                                 server_public)
        return DeviceSession(self.device_id, response.session, key, int(response.expires_at))
