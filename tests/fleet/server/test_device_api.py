"""The kiosk-facing endpoints: enrolment, heartbeats, command results — and every way a
request can be bad (unauthenticated, forged, replayed, revoked, oversized, malformed, wrong
types, unknown command): a 4xx with a wire ApiError and nothing stored. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from fleet.server.schema import commands, device_status, devices, events, heartbeats
from fleet.wire import MAX_HEARTBEAT_BYTES, ApiError, HeartbeatAck
from provisioning.device import make_csr
from provisioning.signing import sign_request
from tests.fleet.server.simkiosk import SimKiosk, heartbeat

pytestmark = pytest.mark.asyncio
HB = "/api/v1/device/heartbeat"


async def count(srv, table, *where) -> int:
    async with srv.db.engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(table).where(*where))


async def device_row(srv, device_id):
    async with srv.db.engine.connect() as conn:
        return (await conn.execute(sa.select(devices).where(devices.c.id == device_id))).first()


def is_api_error(body, code: str) -> bool:
    return ApiError.model_validate(body).error == code


async def test_enrol_then_heartbeat_puts_the_kiosk_online(srv, kiosk):
    row = await device_row(srv, kiosk.device_id)
    assert row.state == "new" and row.site_id == "wx-icbc-01"
    status, body = await kiosk.beat(1)
    assert status == 200, body
    ack = HeartbeatAck.model_validate(body)
    assert ack.commands == [] and ack.interval_s == 30
    row = await device_row(srv, kiosk.device_id)
    assert row.state == "online" and row.app_version == "1.0.0" and row.health == "ok"
    assert row.last_counter == kiosk.counter
    assert await count(srv, heartbeats, heartbeats.c.device_id == kiosk.device_id) == 1
    assert await count(srv, device_status, device_status.c.device_id == kiosk.device_id) == 2


async def test_enrolment_token_errors(srv, http):
    site = await srv.create_site(site_id="wx-post-01", site_type="post")
    key = ec.generate_private_key(ec.SECP256R1())

    async def enrol(token: str, csr: str | None = None):
        async with http.post(srv.url + "/api/v1/enrol",
                             json={"token": token, "csr_pem": csr or make_csr(key)}) as r:
            return r.status, await r.json()

    status, body = await enrol("kenr_" + "a" * 32)
    assert status == 401 and is_api_error(body, "token_unknown")
    token = await srv.create_enrolment_token(site)
    status, body = await enrol(token, "-----BEGIN CERTIFICATE REQUEST-----\njunk\n")
    assert status == 400 and is_api_error(body, "csr_rejected")
    status, body = await enrol(token)  # a rejected CSR did not use the token up
    assert status == 200, body
    status, body = await enrol(token)
    assert status == 409 and is_api_error(body, "token_used")
    expired = await srv.create_enrolment_token(site, ttl_s=60)
    from fleet.server.context import CLOCK
    srv.app[CLOCK].advance(61)
    status, body = await enrol(expired)
    assert status == 401 and is_api_error(body, "token_expired")
    assert await count(srv, devices) == 1


async def test_unauthenticated_forged_replayed_and_revoked_heartbeats_store_nothing(srv, kiosk):
    assert (await kiosk.beat(1))[0] == 200
    before = await count(srv, heartbeats)
    body = json.dumps(heartbeat(2, sent_at=kiosk.clock())).encode()

    status, resp = await kiosk.post(HB, body, headers={})
    assert status == 401 and is_api_error(resp, "missing_signature")

    other = ec.generate_private_key(ec.SECP256R1())  # right id, wrong key
    forged = sign_request(other, kiosk.device_id, kiosk.counter + 1, "POST", HB, body,
                          kiosk.clock())
    status, resp = await kiosk.post(HB, body, headers=forged)
    assert status == 401 and is_api_error(resp, "bad_signature")

    tampered = kiosk.headers("POST", HB, body)  # signed, then the body changed
    status, resp = await kiosk.post(HB, body.replace(b'"seq": 2', b'"seq": 3'), headers=tampered)
    assert status == 401 and is_api_error(resp, "bad_signature")

    old = kiosk.headers("POST", HB, body, now=kiosk.clock() - 3600)
    status, resp = await kiosk.post(HB, body, headers=old)
    assert status == 401 and is_api_error(resp, "clock_skew")

    good = kiosk.headers("POST", HB, body)
    assert (await kiosk.post(HB, body, headers=good))[0] == 200
    status, resp = await kiosk.post(HB, body, headers=good)  # the same request again
    assert status == 401 and is_api_error(resp, "replayed")
    lower = kiosk.headers("POST", HB, body, counter=1)
    status, resp = await kiosk.post(HB, body, headers=lower)
    assert status == 401 and is_api_error(resp, "replayed")

    unknown = SimKiosk(kiosk.url, kiosk.session, other, device_id="nobody-k1", clock=kiosk.clock)
    status, resp = await unknown.beat(1)
    assert status == 401 and is_api_error(resp, "unknown_device")

    assert await count(srv, heartbeats) == before + 1
    await srv.revoke(kiosk.device_id)
    status, resp = await kiosk.beat(5)
    assert status == 401 and is_api_error(resp, "device_revoked")
    assert await count(srv, heartbeats) == before + 1


async def test_revocation_from_another_process_is_seen_at_the_next_request(srv, kiosk):
    """The key cache does not let a revoked kiosk in: the counter UPDATE checks revoked_at."""
    assert (await kiosk.beat(1))[0] == 200
    async with srv.db.engine.begin() as conn:  # as another server process would
        await conn.execute(devices.update().where(devices.c.id == kiosk.device_id)
                           .values(revoked_at=srv.now()))
    status, resp = await kiosk.beat(2)
    assert status == 401 and is_api_error(resp, "device_revoked")


async def test_oversized_malformed_and_wrongly_typed_bodies_are_refused(srv, kiosk):
    before = await count(srv, heartbeats)
    big = b'{"pad": "' + b"x" * MAX_HEARTBEAT_BYTES + b'"}'
    status, resp = await kiosk.post(HB, big)
    assert status == 413 and is_api_error(resp, "body_too_large")
    status, resp = await kiosk.post(HB, b'{"seq": 1, "sent_at": ')
    assert status == 400 and is_api_error(resp, "malformed_json")
    status, resp = await kiosk.post(HB, heartbeat(1) | {"seq": "one"})
    assert status == 422 and is_api_error(resp, "invalid_body")
    assert "seq" in resp["detail"]
    status, resp = await kiosk.post(HB, heartbeat(1) | {"wire_version": 2})
    assert status == 400 and is_api_error(resp, "wire_version")
    status, resp = await kiosk.post(HB, heartbeat(1) | {"surprise": True})
    assert status == 422 and is_api_error(resp, "invalid_body")
    assert await count(srv, heartbeats) == before
    assert (await device_row(srv, kiosk.device_id)).state == "new"


async def test_commands_are_delivered_and_their_results_stored(srv, kiosk):
    command_id = await srv.issue_command(kiosk.device_id, "out_of_service", {"reason": "维护"})
    status, body = await kiosk.beat(1)
    ack = HeartbeatAck.model_validate(body)
    assert [c.id for c in ack.commands] == [command_id]
    assert ack.commands[0].args == {"reason": "维护"}
    # until the result arrives the command is offered again (the kiosk dedupes by id)
    status, body = await kiosk.beat(2)
    assert [c["id"] for c in body["commands"]] == [command_id]
    status, body = await kiosk.result(command_id, "done", detail="out of service")
    assert status == 200, body
    status, body = await kiosk.beat(3)
    assert body["commands"] == []
    async with srv.db.engine.connect() as conn:
        row = (await conn.execute(sa.select(commands).where(commands.c.id == command_id))).first()
    assert row.status == "done" and row.detail == "out of service"
    status, body = await kiosk.result(command_id, "done")
    assert status == 409 and is_api_error(body, "command_finished")


async def test_unknown_and_foreign_command_results_are_refused(srv, kiosk, http, fleet_clock):
    site = await srv.create_site(site_id="wx-post-02", site_type="post")
    other = await SimKiosk.enrol(srv.url, http, await srv.create_enrolment_token(site),
                                 clock=fleet_clock)
    theirs = await srv.issue_command(other.device_id, "screenshot")
    before = await count(srv, events)
    status, body = await kiosk.result("c0000000000000000")
    assert status == 404 and is_api_error(body, "command_unknown")
    status, body = await kiosk.result(theirs, data={"png_base64": "AAAA"})
    assert status == 404 and is_api_error(body, "command_unknown")
    status, body = await kiosk.post(f"/api/v1/device/commands/{theirs}/result",
                                    {"command_id": "other", "status": "done", "finished_at": 1})
    assert status == 422
    async with srv.db.engine.connect() as conn:
        row = (await conn.execute(sa.select(commands).where(commands.c.id == theirs))).first()
    assert row.status == "pending" and row.data is None
    assert await count(srv, events) == before


async def test_usage_is_summed_per_item_and_repeats_are_ignored(srv, kiosk, admin):
    usage = [{"item_id": "social_insurance_proof", "completed": 3, "abandoned": 1,
              "ratings": {"very_satisfied": 2, "dissatisfied": 1}},
             {"item_id": "housing_fund_query", "completed": 1}]
    assert (await kiosk.beat(1, usage=usage))[0] == 200
    assert (await kiosk.beat(1, usage=usage))[0] == 200  # same seq: a resend, not new usage
    assert (await kiosk.beat(2, usage=usage[:1]))[0] == 200
    stats = await admin.get("/api/v1/stats?group_by=item")
    rows = {r["key"]: r for r in stats["rows"]}
    assert rows["social_insurance_proof"]["completed"] == 6
    assert rows["social_insurance_proof"]["ratings"]["very_satisfied"] == 4
    assert rows["social_insurance_proof"]["satisfaction"] == pytest.approx(4 / 6)
    assert rows["housing_fund_query"]["completed"] == 1
    by_region = await admin.get("/api/v1/stats?group_by=region")
    assert by_region["rows"][0]["key"] == "320205" and by_region["rows"][0]["completed"] == 7
    by_site = await admin.get("/api/v1/stats?group_by=site")
    assert by_site["rows"][0]["label"] == "工商银行无锡分行营业部"


async def test_concurrent_heartbeats_share_group_commits(srv, http, fleet_clock):
    import asyncio

    site = await srv.create_site(site_id="wx-hall-02", site_type="hall")
    kiosks = [await SimKiosk.enrol(srv.url, http, await srv.create_enrolment_token(site),
                                   clock=fleet_clock) for _ in range(12)]
    for seq in (1, 2, 3):
        results = await asyncio.gather(*(k.beat(seq) for k in kiosks))
        assert all(status == 200 for status, _ in results), results
    assert await count(srv, heartbeats) == 36
    stats = srv.ingest_stats
    assert stats.accepted == 36 and stats.refused == 0
    assert stats.batches < 36 and stats.largest_batch > 1  # commits were shared


async def test_maintenance_sign_ins_reported_by_the_kiosk_are_stored_once(srv, kiosk):
    tried = [{"event": "maintenance_login", "at": 1000.0, "ok": False, "reason": "wrong_pin",
              "cred_id": "c7f3a2"},
             {"event": "maintenance_login", "at": 1010.0, "ok": True, "cred_id": "c7f3a2"}]
    status, body = await kiosk.beat(1, events=tried)
    assert status == 200, body
    status, body = await kiosk.beat(1, events=tried)  # the same heartbeat resent
    assert status == 200, body
    async with srv.db.engine.connect() as conn:
        rows = (await conn.execute(sa.select(events).where(
            events.c.device_id == kiosk.device_id, events.c.kind == "maintenance_login"))).all()
    assert len(rows) == 2
    details = sorted(json.dumps(dict(r._mapping), default=str) for r in rows)
    assert any("wrong_pin" in d for d in details)
