"""Who sent this device request: signed-request verification with a cache of device keys.

The signature check needs the kiosk's public key on every request; parsing a certificate
each time would cost more than the signature itself, so keys are cached per process (a kiosk's
key never changes; a revoked kiosk is refused by the counter UPDATE in the database, which
every process shares, so a stale cache entry cannot let it in). Unknown ids are remembered
briefly so a flood of junk ids does not become a flood of queries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.server.db import Database
from fleet.server.errors import ApiProblem
from fleet.server.schema import devices
from provisioning.ca import public_key_of
from provisioning.signing import (
    DEVICE_REVOKED,
    UNKNOWN_DEVICE,
    AuthError,
    SignedHeaders,
    parse_signed_headers,
    verify_request,
)

UNKNOWN_TTL_S = 2.0


@dataclass(frozen=True)
class DeviceKey:
    device_id: str
    site_id: str
    public_key: ec.EllipticCurvePublicKey
    revoked: bool


class DeviceKeys:
    def __init__(self, db: Database, *, max_skew_s: float, clock: Callable[[], float]) -> None:
        self._db = db
        self._max_skew_s = max_skew_s
        self._clock = clock
        self._keys: dict[str, DeviceKey] = {}
        self._unknown: dict[str, float] = {}

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
                           body: bytes) -> tuple[SignedHeaders, DeviceKey]:
        """The verified signature headers and the key that verified them, or ApiProblem 401.
        The replay check (counter) is the caller's, in the same transaction as its write."""
        try:
            signed = parse_signed_headers(headers)
            key = await self.lookup(signed.device_id)
            if key is None:
                raise AuthError(UNKNOWN_DEVICE, "no kiosk with this id is enrolled")
            if key.revoked:
                raise AuthError(DEVICE_REVOKED, "this kiosk has been revoked")
            verify_request(key.public_key, signed, method, path_and_query, body, self._clock(),
                           max_skew_s=self._max_skew_s)
        except AuthError as exc:
            raise ApiProblem(401, exc.code, exc.detail) from None
        return signed, key

    def mark_revoked(self, device_id: str) -> None:
        key = self._keys.get(device_id)
        if key is not None:
            self._keys[device_id] = DeviceKey(key.device_id, key.site_id, key.public_key, True)
