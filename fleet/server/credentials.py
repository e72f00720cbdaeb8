"""The revoked maintenance credentials every heartbeat ack carries, cached per process.

Read at most every `TTL_S` seconds (a revocation reaches kiosks within one heartbeat
interval plus this), never once per heartbeat: at thousands of heartbeats a second the list
would otherwise be the busiest query of the server.
"""

from __future__ import annotations

import asyncio
import time

import sqlalchemy as sa

from fleet.server.db import Database
from fleet.server.schema import revoked_credentials

TTL_S = 5.0


class RevokedCredentials:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._ids: list[str] = []
        self._fresh_until = 0.0
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._fresh_until = 0.0

    async def ids(self) -> list[str]:
        if time.monotonic() < self._fresh_until:
            return self._ids
        async with self._lock:
            if time.monotonic() >= self._fresh_until:
                async with self._db.engine.connect() as conn:
                    rows = await conn.execute(sa.select(revoked_credentials.c.credential_id)
                                              .order_by(revoked_credentials.c.credential_id))
                    self._ids = [r[0] for r in rows]
                self._fresh_until = time.monotonic() + TTL_S
        return self._ids
