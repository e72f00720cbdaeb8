"""The agent's device sessions: against the real fleet server its heartbeats go with a session
MAC (one signed handshake), it renews a session that is about to end, and when the server's
ticket key changes it opens a new session and sends that heartbeat once more — stored once.
Against a server without the session endpoint (404) it signs every request, and does not ask
again at every request."""

from __future__ import annotations

import dataclasses
import json
import socket
import time

import pytest
import sqlalchemy as sa
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.agent.agent import Agent
from fleet.agent.app_health import AppHealth
from fleet.agent.server_client import FleetClient
from fleet.agent.settings import AgentSettings
from fleet.agent.store import AgentStore
from fleet.wire import Site
from provisioning.device import DeviceIdentity, enrol
from provisioning.sessions import SESSION_PATH, TicketKeys
from provisioning.signing import RequestCounter, parse_signed_headers, verify_request

fleet_testing = pytest.importorskip("fleet.server.testing", reason="the fleet server's harness")

from fleet.server import schema  # noqa: E402
from fleet.server.context import KEYS  # noqa: E402


def _agent(short_dir, client: FleetClient) -> tuple[Agent, AgentStore]:
    settings = AgentSettings(state_dir=short_dir, health_socket=short_dir / "none.sock",
                             data_dir=short_dir, interval_s=0.2)
    store = AgentStore(short_dir / "agent.sqlite3")
    return Agent(settings, client=client, store=store,
                 health=AppHealth(settings.health_socket)), store


async def _stored(srv) -> int:
    """Heartbeats stored (history rows; the test has one kiosk), checked against the
    server's own count of accepted heartbeats."""
    async with srv.db.engine.connect() as conn:
        rows = await conn.scalar(sa.select(sa.func.count()).select_from(schema.heartbeats))
    assert rows == srv.ingest_stats.accepted
    return rows


@pytest.mark.asyncio
async def test_heartbeats_go_in_a_session_and_survive_a_ticket_key_change(tmp_path, short_dir):
    async with fleet_testing.running_fleet_server(tmp_path, run_evaluator=False) as srv:
        site = await srv.create_site()
        identity = await enrol(srv.url, await srv.create_enrolment_token(site),
                               short_dir / "state")
        client = FleetClient(identity, RequestCounter(short_dir / "state" / "counter"),
                             srv.url, timeout_s=3)
        agent, store = _agent(short_dir, client)
        server = srv.app[KEYS].stats
        try:
            assert await agent.tick() is True
            assert await agent.tick() is True
            # One signed handshake, then MACs only; the server verified no heartbeat by ECDSA.
            assert (client.stats.signed, client.stats.in_session,
                    client.stats.sessions_opened) == (1, 2, 1)
            assert (server.sessions_opened, server.session, server.signed) == (1, 2, 1)

            # The server's ticket key changes (a rotation without the previous key, or a
            # restart with a new state directory): bad_session → new session → sent again.
            srv.app[KEYS].use_ticket_keys(TicketKeys.generate())
            assert await agent.tick() is True
            assert server.refused["bad_session"] == 1
            assert client.stats.sessions_refused == 1 and client.stats.sessions_opened == 2
            assert await _stored(srv) == 3  # each heartbeat stored once

            # A session with less than five minutes left is renewed before the next request.
            client._device_session = dataclasses.replace(
                client._device_session, expires_at=int(time.time()) + 100)
            assert await agent.tick() is True
            assert client.stats.sessions_opened == 3 and client.stats.sessions_refused == 1
            assert server.session == 4 and server.signed == 3  # hb 1, 2, 3 (again), 4

            # Revoked: the kiosk itself is refused, with or without a session.
            await srv.revoke(identity.device_id)
            assert await agent.tick() is False
            assert await _stored(srv) == 4
            # The session lives in memory only: nothing on disk holds its ticket.
            ticket = client._device_session.ticket.encode()
            for path in (short_dir / "state").rglob("*"):
                assert not path.is_file() or ticket not in path.read_bytes(), path
        finally:
            await client.close()
            store.close()


class OldServer:
    """A server from before sessions: heartbeats only (checked with the real ECDSA
    verification); the session endpoint answers 404 as aiohttp does for unknown routes."""

    def __init__(self, public_key: ec.EllipticCurvePublicKey) -> None:
        self.public_key = public_key
        self.heartbeats = 0
        self.session_asks = 0

    async def heartbeat(self, request: web.Request) -> web.Response:
        body = await request.read()
        verify_request(self.public_key, parse_signed_headers(request.headers), request.method,
                       request.path_qs, body, time.time())
        self.heartbeats += 1
        return web.json_response({"server_time": time.time(), "interval_s": 30,
                                  "commands": [], "revoked_credentials": []})

    async def session(self, request: web.Request) -> web.Response:
        self.session_asks += 1
        raise web.HTTPNotFound()


@pytest.mark.asyncio
async def test_a_server_without_sessions_gets_signed_requests(short_dir):
    key = ec.generate_private_key(ec.SECP256R1())
    identity = DeviceIdentity(
        device_id="kiosk-old-01", server_url="", private_key=key, certificate_pem="",
        ca_pem="", bundle_signing_key_pem="", heartbeat_interval_s=30,
        site=Site(site_id="s1", site_type="bank", name="网点", region="320205",
                  longitude=120.3, latitude=31.5))
    old = OldServer(key.public_key())
    app = web.Application()
    app.router.add_post("/api/v1/device/heartbeat", old.heartbeat)
    app.router.add_post(SESSION_PATH, old.session)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = FleetClient(identity, RequestCounter(short_dir / "counter"),
                         f"http://127.0.0.1:{port}", timeout_s=2)
    agent, store = _agent(short_dir, client)
    try:
        for _ in range(3):
            assert await agent.tick() is True
        assert old.heartbeats == 3 and old.session_asks == 1  # asked once, not every time
        assert client.stats.in_session == 0 and client.stats.signed == 4
        assert json.loads((short_dir / "counter").read_text()) >= 4
    finally:
        await client.close()
        store.close()
        await runner.cleanup()
