"""Every kiosk's one heartbeat, each sent exactly once (the fleet's first heartbeats before
the timed runs). Not timed, so a plain aiohttp client does: unlike a wrk run of fixed
length it ends when the last kiosk has been answered, however slow first heartbeats are."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import aiohttp
from cryptography.hazmat.primitives import serialization

from bench.fleetload.payloads import SimKiosk, heartbeat_body, template_checked
from bench.fleetload.pool import HEARTBEAT_PATH
from provisioning.signing import sign_request


async def send_once(url: str, kiosks: tuple[SimKiosk, ...], connections: int, seq: int,
                    interval_s: int) -> dict[str, int]:
    """{"<status>": count} over all kiosks ("error" for a request that got no answer)."""
    statuses: Counter[str] = Counter()
    queue = list(reversed(kiosks))
    counter = time.time_ns() // 1000

    async def worker(http: aiohttp.ClientSession) -> None:
        while queue:
            kiosk = queue.pop()
            key = serialization.load_pem_private_key(kiosk.key_pem.encode(), None)
            now = time.time()
            body = heartbeat_body(template_checked(kiosk, interval_s), seq, now)
            headers = sign_request(key, kiosk.device_id, counter, "POST", HEARTBEAT_PATH, body,
                                   now)
            headers["Content-Type"] = "application/json"
            try:
                async with http.post(url + HEARTBEAT_PATH, data=body, headers=headers) as r:
                    await r.read()
                    statuses[str(r.status)] += 1
            except aiohttp.ClientError:
                statuses["error"] += 1

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        await asyncio.gather(*(worker(http) for _ in range(connections)))
    return dict(statuses)
