"""Who sent this device request: signed-request verification with a cache of device keys,
and device sessions (one signed handshake, then an HMAC per request; provisioning/sessions.py).

The signature check needs the kiosk's public key on every request; parsing a certificate
each time would cost more than the signature itself, so keys are cached per process (a kiosk's
key never changes; a revoked kiosk is refused by the counter UPDATE in the database, which
every process shares, so a stale cache entry cannot let it in). Unknown ids are remembered
briefly so a flood of junk ids does not become a flood of queries.

Session tickets are opened with the ticket keys in the state directory (every process and
host behind the balancer holds the same ones) and the opened ones are cached per process in
a bounded dict: a ticket is the same bytes on every request of its session. The cache holds
only what the ticket itself says, so it can never outlive a key change unnoticed: swapping
the keys (`use_ticket_keys`) empties it. Revocation and replay are decided by the same
counter UPDATE as for signed requests.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.server.db import Database
from fleet.server.errors import ApiProblem
from fleet.server.schema import devices
from fleet.wire import DeviceSessionResponse
from provisioning.ca import public_key_of
from provisioning.sessions import (
    DEFAULT_TTL_S,
    Ticket,
    TicketKeys,
    has_session,
    parse_session_headers,
    verify_session_request,
)
from provisioning.signing import (
    DEVICE_REVOKED,
    UNKNOWN_DEVICE,
    AuthError,
    parse_signed_headers,
    verify_request,
)

UNKNOWN_TTL_S = 2.0
MAX_OPENED_TICKETS = 65_536  # ~200 bytes each; a fleet's worth of sessions per process
SESSION_NOT_ACCEPTED = "session_not_accepted"


@dataclass(frozen=True)
class DeviceKey:
    device_id: str
    site_id: str
    public_key: ec.EllipticCurvePublicKey
    revoked: bool


@dataclass(frozen=True)
class Authenticated:
    """A device request whose signature or session MAC verified (the counter is not yet
    checked: that is the caller's, in the transaction of its write)."""

    device_id: str
    counter: int
    key: DeviceKey | None  # None: a session request from a kiosk this process has not looked up
    session: bool  # True: HMAC under a session ticket; False: ECDSA with the device key


@dataclass
class AuthStats:
    """This process's device authentications, for tests and /metrics."""

    signed: int = 0  # ECDSA-verified requests
    session: int = 0  # session-MAC-verified requests
    sessions_opened: int = 0
    refused: Counter[str] = field(default_factory=Counter)  # by AuthError code


class DeviceKeys:
    def __init__(self, db: Database, *, max_skew_s: float, clock: Callable[[], float],
                 tickets: TicketKeys | None = None,
                 session_ttl_s: float = DEFAULT_TTL_S) -> None:
        self._db = db
        self._max_skew_s = max_skew_s
        self._clock = clock
        self._keys: dict[str, DeviceKey] = {}
        self._unknown: dict[str, float] = {}
        # Without a state directory (a test building this directly) the tickets hold only
        # in this process; the server always passes the shared keys (for_settings).
        self._tickets = tickets or TicketKeys.generate()
        self._opened: dict[str, Ticket] = {}
        self.session_ttl_s = session_ttl_s
        self.stats = AuthStats()

    @classmethod
    def for_settings(cls, db: Database, settings: Any, *,
                     clock: Callable[[], float]) -> DeviceKeys:
        """The server's: ticket keys from (created if missing in) the state directory."""
        return cls(db, max_skew_s=settings.max_signature_skew_s, clock=clock,
                   tickets=TicketKeys.ensure(settings.state_dir),
                   session_ttl_s=settings.device_session_ttl_s)

    def use_ticket_keys(self, tickets: TicketKeys) -> None:
        """Switch to other ticket keys (a rotation); tickets opened so far are opened again."""
        self._tickets = tickets
        self._opened.clear()

    def forget(self, device_id: str) -> None:
        self._keys.pop(device_id, None)
        self._unknown.pop(device_id, None)

    async def lookup(self, device_id: str) -> DeviceKey | None:
        key = self._keys.get(device_id)
        if key is not None:
            return key
        until = self._unknown.get(device_id)
        if until is not None and until > time.monotonic():
            return None
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(
                sa.select(devices.c.site_id, devices.c.certificate_pem, devices.c.revoked_at)
                .where(devices.c.id == device_id))).first()
        if row is None:
            if len(self._unknown) > 100_000:
                self._unknown.clear()
            self._unknown[device_id] = time.monotonic() + UNKNOWN_TTL_S
            return None
        key = DeviceKey(device_id, row.site_id, public_key_of(row.certificate_pem),
                        row.revoked_at is not None)
        self._keys[device_id] = key
        return key

    async def authenticate(self, headers: Mapping[str, str], method: str, path_and_query: str,
                           body: bytes, *, allow_session: bool = True) -> Authenticated:
        """The verified request, or ApiProblem 401 with a stable code. A request carrying
        `Kiosk-Session` is checked as a session request, any other as a signed one. The
        replay check (counter) is the caller's, in the same transaction as its write."""
        try:
            if has_session(headers):
                if not allow_session:
                    raise AuthError(SESSION_NOT_ACCEPTED, "this request must be signed with "
                                    "the device key, not a session")
                return await self._session_request(headers, method, path_and_query, body)
            signed = parse_signed_headers(headers)
            key = await self._usable_key(signed.device_id)
            verify_request(key.public_key, signed, method, path_and_query, body, self._clock(),
                           max_skew_s=self._max_skew_s)
        except AuthError as exc:
            self.stats.refused[exc.code] += 1
            raise ApiProblem(401, exc.code, exc.detail) from None
        self.stats.signed += 1
        return Authenticated(signed.device_id, signed.counter, key, session=False)

    async def _session_request(self, headers: Mapping[str, str], method: str,
                               path_and_query: str, body: bytes) -> Authenticated:
        signed = parse_session_headers(headers)
        ticket = self._opened.get(signed.ticket)
        if ticket is None:
            ticket = self._tickets.open(signed.ticket)  # AuthError bad_session
            if len(self._opened) >= MAX_OPENED_TICKETS:
                del self._opened[next(iter(self._opened))]  # the oldest
            self._opened[signed.ticket] = ticket
        verify_session_request(ticket, signed, method, path_and_query, body, self._clock(),
                               self._max_skew_s)
        # No key lookup: the ticket proves the kiosk was enrolled and signed the handshake.
        # A kiosk revoked since is refused by the counter UPDATE of this request's write
        # (which marks it revoked here too); a kiosk already known revoked is refused now.
        # Looking the key up would cost each process a query per kiosk for nothing.
        key = self._keys.get(signed.device_id)
        if key is not None and key.revoked:
            raise AuthError(DEVICE_REVOKED, "this kiosk has been revoked")
        self.stats.session += 1
        return Authenticated(signed.device_id, signed.counter, key, session=True)

    async def _usable_key(self, device_id: str) -> DeviceKey:
        key = await self.lookup(device_id)
        if key is None:
            raise AuthError(UNKNOWN_DEVICE, "no kiosk with this id is enrolled")
        if key.revoked:
            raise AuthError(DEVICE_REVOKED, "this kiosk has been revoked")
        return key

    def open_session(self, device_id: str, kex_public: str, now: float) -> DeviceSessionResponse:
        """A session for an authenticated kiosk (its counter already accepted). Raises
        ValueError for an unusable key-exchange key."""
        response = self._tickets.accept(device_id, kex_public, now, self.session_ttl_s)
        self.stats.sessions_opened += 1
        return response

    def mark_revoked(self, device_id: str) -> None:
        key = self._keys.get(device_id)
        if key is not None:
            self._keys[device_id] = DeviceKey(key.device_id, key.site_id, key.public_key, True)
