"""Every kiosk's one heartbeat, each sent exactly once (the fleet's first heartbeats before
the timed runs). Not timed, so a plain aiohttp client does: unlike a wrk run of fixed
length it ends when the last kiosk has been answered, however slow first heartbeats are.

With `sessions_out`, each kiosk first opens a device session (provisioning/sessions.py: the
handshake signed with its key, counter c), sends its heartbeat in it (MAC, counter c + 1) and
the sessions are written to that file for the pool writer, as
`[{"device_id", "ticket", "key" (base64url), "expires_at"}]` — benchmark state only: a real
agent never writes its session anywhere.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization

from bench.fleetload.payloads import SimKiosk, heartbeat_body, template_checked
from bench.fleetload.pool import HEARTBEAT_PATH
from fleet.wire import DeviceSessionResponse
from provisioning.sessions import SESSION_PATH, DeviceSession, SessionOffer, b64url
from provisioning.signing import sign_request


async def send_once(url: str, kiosks: tuple[SimKiosk, ...], connections: int, seq: int,
                    interval_s: int, sessions_out: Path | None = None) -> dict[str, int]:
    """{"<status>": count} over all kiosks ("error" for a request that got no answer;
    "session_<status>" for a kiosk whose session could not be opened)."""
    statuses: Counter[str] = Counter()
    opened: list[DeviceSession] = []
    queue = list(reversed(kiosks))
    counter = time.time_ns() // 1000

    async def open_session(http: aiohttp.ClientSession, kiosk: SimKiosk,
                           key) -> DeviceSession | None:
        offer = SessionOffer(kiosk.device_id)
        body = offer.body
        headers = sign_request(key, kiosk.device_id, counter, "POST", SESSION_PATH, body,
                               time.time())
        headers["Content-Type"] = "application/json"
        async with http.post(url + SESSION_PATH, data=body, headers=headers) as r:
            answer = await r.read()
            if r.status != 200:
                statuses[f"session_{r.status}"] += 1
                return None
        return offer.accept(DeviceSessionResponse.model_validate_json(answer))

    async def worker(http: aiohttp.ClientSession) -> None:
        while queue:
            kiosk = queue.pop()
            key = serialization.load_pem_private_key(kiosk.key_pem.encode(), None)
            try:
                session = None
                if sessions_out is not None:
                    session = await open_session(http, kiosk, key)
                    if session is None:
                        continue
                    opened.append(session)
                now = time.time()
                body = heartbeat_body(template_checked(kiosk, interval_s), seq, now)
                if session is not None:
                    headers = session.sign("POST", HEARTBEAT_PATH, body, counter + 1, now)
                else:
                    headers = sign_request(key, kiosk.device_id, counter, "POST",
                                           HEARTBEAT_PATH, body, now)
                headers["Content-Type"] = "application/json"
                async with http.post(url + HEARTBEAT_PATH, data=body, headers=headers) as r:
                    await r.read()
                    statuses[str(r.status)] += 1
            except aiohttp.ClientError:
                statuses["error"] += 1

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        await asyncio.gather(*(worker(http) for _ in range(connections)))
    if sessions_out is not None:
        sessions_out.write_text(json.dumps([
            {"device_id": s.device_id, "ticket": s.ticket, "key": b64url(s.key),
             "expires_at": s.expires_at} for s in opened]))
    return dict(statuses)


def load_sessions(path: Path) -> dict[str, DeviceSession]:
    """What `send_once(..., sessions_out=path)` wrote, by device id."""
    from provisioning.signing import b64url_decode

    return {e["device_id"]: DeviceSession(e["device_id"], e["ticket"], b64url_decode(e["key"]),
                                          int(e["expires_at"]))
            for e in json.loads(path.read_text())}
