"""A minimal kiosk for the server's tests: enrols with a real CSR and sends signed requests.

Deliberately not the real agent (fleet/agent has its own tests against this server): here
each test controls exactly which bytes, counters and timestamps go out, to test forged,
replayed and malformed requests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.wire import Heartbeat
from provisioning.device import make_csr
from provisioning.signing import sign_request


def heartbeat(seq: int = 1, **overrides: Any) -> dict[str, Any]:
    """A healthy heartbeat as JSON-ready data; `overrides` replace top-level fields."""
    hb: dict[str, Any] = {
        "wire_version": 1, "kind": "heartbeat", "seq": seq, "sent_at": time.time(),
        "interval_s": 30,
        "app": {"state": "running", "screen": "attract", "uptime_s": 100.0},
        "devices": [
            {"name": "receipt", "device_class": "receipt_printer", "lifecycle": "enabled",
             "state": "online", "supplies": {"paper": "full"}},
            {"name": "idcard", "device_class": "id_card_reader", "lifecycle": "enabled",
             "state": "online"},
        ],
        "counters": {"journeys_started": 10, "journeys_completed": 8},
        "usage": [],
        "versions": {"app": "1.0.0", "catalogue": "2026.11", "config": "abc"},
        "disk": {"path": "/", "total_bytes": 10**10, "free_bytes": 5 * 10**9},
        "cabinet": {"door_open": False, "tamper": False},
        "clock_synced": True,
    }
    hb.update(overrides)
    Heartbeat.model_validate(hb)  # the helper itself never sends an invalid heartbeat by mistake
    return hb


@dataclass
class SimKiosk:
    url: str
    session: aiohttp.ClientSession
    key: ec.EllipticCurvePrivateKey
    device_id: str = ""
    counter: int = 0
    clock: Callable[[], float] = field(default=time.time)

    @classmethod
    async def enrol(cls, url: str, session: aiohttp.ClientSession, token: str,
                    clock: Callable[[], float] = time.time) -> SimKiosk:
        key = ec.generate_private_key(ec.SECP256R1())
        kiosk = cls(url, session, key, clock=clock)
        async with session.post(f"{url}/api/v1/enrol",
                                json={"token": token, "csr_pem": make_csr(key),
                                      "app_version": "1.0.0"}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        kiosk.device_id = body["device_id"]
        return kiosk

    def headers(self, method: str, path: str, body: bytes, *, counter: int | None = None,
                now: float | None = None) -> dict[str, str]:
        if counter is None:
            self.counter += 1
            counter = self.counter
        return sign_request(self.key, self.device_id, counter, method, path, body,
                            self.clock() if now is None else now)

    async def post(self, path: str, body: bytes | dict[str, Any], *,
                   headers: dict[str, str] | None = None, **sign: Any) -> tuple[int, Any]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = headers if headers is not None else self.headers("POST", path, raw, **sign)
        async with self.session.post(self.url + path, data=raw,
                                     headers={**hdrs, "Content-Type": "application/json"}) as r:
            return r.status, await r.json()

    async def beat(self, seq: int = 1, **overrides: Any) -> tuple[int, Any]:
        overrides.setdefault("sent_at", self.clock())
        return await self.post("/api/v1/device/heartbeat", heartbeat(seq, **overrides))

    async def result(self, command_id: str, status: str = "done", **fields: Any
                     ) -> tuple[int, Any]:
        body = {"command_id": command_id, "status": status, "finished_at": self.clock(),
                **fields}
        return await self.post(f"/api/v1/device/commands/{command_id}/result", body)
