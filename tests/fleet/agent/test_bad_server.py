"""The agent against a server that answers badly: junk, wrong shapes, errors, oversized
bodies, commands it cannot read. It never crashes, keeps what may have been stored, drops what
certainly was not, and answers unreadable or expired commands with a result.

The peer is a real aiohttp server on a loopback port whose answers the test scripts; the
requests it receives are checked with the real signature verification."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time

import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.agent.agent import Agent, read_revoked
from fleet.agent.app_health import AppHealth
from fleet.agent.server_client import FleetClient
from fleet.agent.settings import AgentSettings
from fleet.agent.store import AgentStore
from provisioning.signing import RequestCounter, parse_signed_headers, sign_request, verify_request


class Identity:
    def __init__(self) -> None:
        self.device_id = "kiosk-test-01"
        self.private_key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, method, path, body, counter, now):
        return sign_request(self.private_key, self.device_id, counter, method, path, body, now)


class ScriptedServer:
    """Answers heartbeats from `self.answers` (status, body) in turn; records what it got."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.answers: list[tuple[int, bytes]] = []
        self.heartbeats: list[dict] = []
        self.results: list[dict] = []
        self.last_counter = 0
        self.delay = 0.0  # a server that hangs before answering

    def _check(self, request: web.Request, body: bytes) -> None:
        signed = parse_signed_headers(request.headers)
        verify_request(self.identity.private_key.public_key(), signed, request.method,
                       request.path_qs, body, time.time())
        assert signed.counter > self.last_counter, "counters must only go up"
        self.last_counter = signed.counter

    async def heartbeat(self, request: web.Request) -> web.Response:
        body = await request.read()
        self._check(request, body)
        self.heartbeats.append(json.loads(body))
        await asyncio.sleep(self.delay)
        status, answer = self.answers.pop(0) if self.answers else (200, ack())
        return web.Response(status=status, body=answer, content_type="application/json")

    async def result(self, request: web.Request) -> web.Response:
        body = await request.read()
        self._check(request, body)
        self.results.append(json.loads(body))
        return web.json_response({"ok": True})


def ack(commands=(), revoked=(), interval=30) -> bytes:
    return json.dumps({"server_time": time.time(), "interval_s": interval,
                       "commands": list(commands), "revoked_credentials": list(revoked)}).encode()


@pytest_asyncio.fixture
async def peer(short_dir):
    identity = Identity()
    server = ScriptedServer(identity)
    app = web.Application()
    app.router.add_post("/api/v1/device/heartbeat", server.heartbeat)
    app.router.add_post("/api/v1/device/commands/{cid}/result", server.result)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = AgentSettings(state_dir=short_dir, health_socket=short_dir / "none.sock",
                             data_dir=short_dir, interval_s=0.2)
    client = FleetClient(identity, RequestCounter(short_dir / "counter"),
                         f"http://127.0.0.1:{port}", timeout_s=2)
    store = AgentStore(short_dir / "agent.sqlite3")
    agent = Agent(settings, client=client, store=store, health=AppHealth(settings.health_socket))
    agent.commands.start()
    try:
        yield server, agent, store
    finally:
        await agent.commands.stop()
        await client.close()
        store.close()
        await runner.cleanup()


@pytest.mark.asyncio
async def test_bad_answers_never_crash_and_keep_what_may_be_stored(peer):
    server, agent, store = peer
    # 200 but not JSON, 200 but the wrong shape, 500: each may have been stored.
    for answer in [(200, b"<html>oops"), (200, b'{"server_time": "soon"}'), (500, b"{}")]:
        server.answers = [answer] * 3
        assert await agent.tick() is False
        assert store.pending() is not None
    # The app is down (no socket): that is what the heartbeats said.
    assert {hb["app"]["state"] for hb in server.heartbeats} == {"down"}
    # Every retry of a maybe-stored heartbeat was the same heartbeat, byte for byte.
    first_seq = server.heartbeats[0]["seq"]
    assert {hb["seq"] for hb in server.heartbeats} == {first_seq}
    # 4xx: stored nothing, dropped; the next heartbeat is a summary of the buffered ones.
    server.answers = [(401, b'{"error": "device_revoked", "detail": "revoked"}')]
    assert await agent.tick() is False
    assert store.pending() is None
    server.answers = []
    assert await agent.tick() is True
    assert server.heartbeats[-1]["kind"] == "summary"
    assert server.heartbeats[-1]["summary"]["heartbeats_buffered"] == 4
    assert server.heartbeats[-1]["seq"] > first_seq
    assert await agent.tick() is True
    assert server.heartbeats[-1]["kind"] == "heartbeat"


@pytest.mark.asyncio
async def test_unreadable_and_expired_commands_get_results(peer):
    server, agent, store = peer
    now = time.time()
    server.answers = [(200, ack(
        commands=[
            {"id": "c-new", "name": "format_disk", "args": {}, "issued_at": now, "expires_at": now + 60},
            {"id": "c-old", "name": "in_service", "args": {}, "issued_at": now - 120, "expires_at": now - 60},
            {"id": "c-app", "name": "screenshot", "args": {}, "issued_at": now, "expires_at": now + 60},
            {"no id": True},
        ],
        revoked=["cred-1", "cred-2"],
    ))]
    assert await agent.tick() is True
    await agent.commands.idle()
    results = {r["command_id"]: r for r in server.results}
    assert results["c-new"]["status"] == "rejected"
    assert results["c-old"]["status"] == "expired"
    assert results["c-app"]["status"] == "failed"  # the app is not answering: says so
    assert "not answering" in results["c-app"]["detail"]
    assert read_revoked(agent.settings.state_dir) == ["cred-1", "cred-2"]
    # Handed out again before the server noted the results: not run twice.
    server.answers = [(200, ack(commands=[
        {"id": "c-app", "name": "screenshot", "args": {}, "issued_at": now, "expires_at": now + 60}]))]
    assert await agent.tick() is True
    await agent.commands.idle()
    assert len(server.results) == 3


@pytest.mark.asyncio
async def test_a_restarted_agent_resends_what_may_have_arrived(peer):
    """The agent dies after sending, before hearing back: the next agent on the same state
    sends that same heartbeat first (same seq: the server counts it once)."""
    server, agent, store = peer
    server.answers = [(503, b"{}")] * 3
    assert await agent.tick() is False
    maybe_stored = server.heartbeats[-1]
    again = AgentStore(store.path)
    try:
        restarted = Agent(agent.settings, client=agent.client, store=again, health=agent.health)
        assert await restarted.tick() is True
    finally:
        again.close()
    assert server.heartbeats[-2] == maybe_stored  # byte for byte the same heartbeat
    assert server.heartbeats[-1]["seq"] > maybe_stored["seq"]


@pytest.mark.asyncio
async def test_stop_is_prompt_even_when_the_server_hangs(peer):
    """SIGTERM during a heartbeat to a server that does not answer: the agent stops within
    the going-offline timeout, and sends nothing after the heartbeat that may have arrived."""
    server, agent, store = peer
    agent.settings = dataclasses.replace(
        agent.settings, interval_s=30.0, going_offline_timeout_s=0.5
    )
    agent.interval_s = 30.0
    server.delay = 2.5
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    await asyncio.sleep(0.5)
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(run, 5)
    assert time.monotonic() - started < 2.0
    assert store.pending() is not None  # kept for the next start
    assert {hb["kind"] for hb in server.heartbeats} == {"heartbeat"}
    assert {hb["seq"] for hb in server.heartbeats} == {store.pending().seq}
