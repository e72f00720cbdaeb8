"""Enrolment against a real HTTP server on 127.0.0.1 (tests/provisioning/conftest.py), the
state directory it leaves, and DeviceIdentity.load's checks."""

from __future__ import annotations

import json
import os
import ssl
import stat
import time

import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from provisioning import device as device_module
from provisioning import keystore
from provisioning.ca import FleetCA, public_key_of
from provisioning.device import (
    AlreadyEnrolled,
    DeviceIdentity,
    EnrolmentFailed,
    IdentityError,
    NotEnrolled,
    enrol,
    make_csr,
    ssl_context_for,
)
from provisioning.signing import parse_signed_headers, verify_request
from tests.provisioning.conftest import SITE, tls_files

pytestmark = pytest.mark.asyncio


def files(state_dir) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(state_dir.iterdir())}


async def test_enrol_writes_a_private_state_dir_the_agent_can_load(enrol_server, tmp_path):
    state = tmp_path / "state"
    identity = await enrol(enrol_server.url, enrol_server.new_token(), state, app_version="0.1.0")
    assert sorted(os.listdir(state)) == ["ca.crt", "device.crt", "device.key", "enrolment.json"]
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert keystore.check_private_dir(state) == []
    record = json.loads((state / "enrolment.json").read_text())
    assert set(record) >= {"device_id", "server_url", "site", "heartbeat_interval_s",
                           "bundle_signing_key_pem", "enrolled_at"}
    assert record["site"] == SITE.model_dump(mode="json")
    assert record["server_url"] == enrol_server.url
    loaded = DeviceIdentity.load(state)
    assert loaded.device_id == identity.device_id and loaded.site == SITE
    assert loaded.heartbeat_interval_s == 30
    assert loaded.bundle_signing_key() is not None
    assert loaded.credential_key() is not None  # falls back to the bundle key
    # The agent signs with it; the server verifies with the key from the certificate.
    now = time.time()
    headers = loaded.sign("POST", "/api/v1/device/heartbeat", b"{}", 7, now)
    verify_request(public_key_of(loaded.certificate_pem), parse_signed_headers(headers),
                   "POST", "/api/v1/device/heartbeat", b"{}", now)


@pytest.mark.parametrize("make_token, code, advice", [
    (lambda s: "kenr_" + "a" * 32, "token_unknown", "typed exactly"),
    (lambda s: s.new_token(ttl_s=-1), "token_expired", "new token"),
])
async def test_token_problems_become_sentences_for_ops(enrol_server, tmp_path, make_token, code,
                                                       advice):
    with pytest.raises(EnrolmentFailed) as err:
        await enrol(enrol_server.url, make_token(enrol_server), tmp_path / "state")
    assert err.value.code == code and advice in err.value.message
    assert not (tmp_path / "state" / "enrolment.json").exists()


async def test_a_token_enrols_one_kiosk_only(enrol_server, tmp_path):
    token = enrol_server.new_token()
    await enrol(enrol_server.url, token, tmp_path / "a")
    with pytest.raises(EnrolmentFailed) as err:
        await enrol(enrol_server.url, token, tmp_path / "b")
    assert err.value.code == "token_used" and "already been used" in err.value.message


async def test_a_mistyped_token_is_refused_before_any_request(enrol_server, tmp_path):
    with pytest.raises(EnrolmentFailed) as err:
        await enrol(enrol_server.url, "kenr_tooshort", tmp_path / "state")
    assert err.value.code == "token_malformed" and enrol_server.requests == 0


async def test_a_typed_token_in_groups_and_capitals_still_works(enrol_server, tmp_path):
    token = enrol_server.new_token()
    typed = token[:5].upper() + " ".join(token[5:][i:i + 8] for i in range(0, 32, 8)).upper()
    await enrol(enrol_server.url, typed, tmp_path / "state")


async def test_re_enrolment_needs_force_and_then_replaces_the_identity(enrol_server, tmp_path):
    state = tmp_path / "state"
    first = await enrol(enrol_server.url, enrol_server.new_token(), state)
    (state / "counter").write_text("123\n")  # the agent's file: left alone
    before = files(state)
    with pytest.raises(AlreadyEnrolled) as err:
        await enrol(enrol_server.url, enrol_server.new_token(), state)
    assert first.device_id in err.value.message and "--force" in err.value.message
    assert files(state) == before
    second = await enrol(enrol_server.url, enrol_server.new_token(), state, force=True)
    assert second.device_id != first.device_id
    assert files(state)["device.key"] != before["device.key"]
    assert (state / "counter").read_text() == "123\n"


async def test_a_crash_during_forced_re_enrolment_leaves_not_enrolled(enrol_server, tmp_path,
                                                                      monkeypatch):
    state = tmp_path / "state"
    await enrol(enrol_server.url, enrol_server.new_token(), state)
    real = keystore.write_private

    def crash_on_cert(path, data):
        if path.name == "device.crt":
            raise keystore.KeystoreError("power cut")
        real(path, data)

    monkeypatch.setattr(device_module, "write_private", crash_on_cert)
    with pytest.raises(EnrolmentFailed) as err:
        await enrol(enrol_server.url, enrol_server.new_token(), state, force=True)
    assert err.value.code == "state_write_failed" and "new token" in err.value.message
    with pytest.raises(NotEnrolled):  # never the old record with the new key
        DeviceIdentity.load(state)


async def test_a_certificate_for_another_key_is_refused_and_nothing_is_saved(enrol_server,
                                                                             tmp_path):
    other_key = ec.generate_private_key(ec.SECP256R1())

    def swap_key(answer):
        cert = enrol_server.ca.issue_device_certificate(
            make_csr(other_key), answer.device_id, "wx-bank-001")
        return answer.model_copy(update={"certificate_pem": cert})

    enrol_server.tamper = swap_key
    with pytest.raises(EnrolmentFailed) as err:
        await enrol(enrol_server.url, enrol_server.new_token(), tmp_path / "state")
    assert err.value.code == "bad_certificate" and "another key" in err.value.message
    assert not (tmp_path / "state").exists()


async def test_a_certificate_from_another_ca_is_refused(enrol_server, tmp_path):
    rogue = FleetCA.create(tmp_path / "rogue")
    enrol_server.tamper = lambda a: a.model_copy(
        update={"ca_certificate_pem": rogue.certificate_pem}
    )
    with pytest.raises(EnrolmentFailed) as err:
        await enrol(enrol_server.url, enrol_server.new_token(), tmp_path / "state")
    assert err.value.code == "bad_certificate"


async def test_network_and_server_failures(tmp_path, enrol_server):
    port = enrol_server.server.port
    await enrol_server.server.close()
    token = enrol_server.new_token()
    with pytest.raises(EnrolmentFailed) as err:
        await enrol(f"http://127.0.0.1:{port}", token, tmp_path / "s", timeout_s=5)
    assert err.value.code == "unreachable" and "token stays valid" in err.value.message
    with pytest.raises(EnrolmentFailed) as err:
        await enrol("http://fleet.example.cn", token, tmp_path / "s")
    assert err.value.code == "insecure_server_url"
    with pytest.raises(EnrolmentFailed) as err:
        await enrol("ftp://fleet.example.cn", token, tmp_path / "s")
    assert err.value.code == "bad_server_url"


async def test_an_answer_that_is_not_the_wire_format(tmp_path):
    from aiohttp import web

    async def bad_gateway(request):
        return web.Response(status=502, text="Bad Gateway")

    async def not_an_enrolment(request):
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_post("/api/v1/enrol", bad_gateway)
    app.router.add_post("/x/api/v1/enrol", not_an_enrolment)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        token = "kenr_" + "b" * 32
        with pytest.raises(EnrolmentFailed) as err:
            await enrol(url, token, tmp_path / "s")
        assert err.value.code == "server_error" and "HTTP 502" in err.value.message
        with pytest.raises(EnrolmentFailed) as err:
            await enrol(url + "/x", token, tmp_path / "s")
        assert err.value.code == "bad_response"
    finally:
        await server.close()


async def test_tls_needs_the_servers_ca(enrol_server, tmp_path):
    ca_pem, cert_pem, key_pem = tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_pem, key_pem)
    tls = TestServer(enrol_server.app(), host="127.0.0.1")
    await tls.start_server(ssl=context)
    try:
        url = f"https://127.0.0.1:{tls.port}"
        with pytest.raises(EnrolmentFailed) as err:
            await enrol(url, enrol_server.new_token(), tmp_path / "s")
        assert err.value.code == "tls_untrusted" and "--ca-file" in err.value.message
        identity = await enrol(url, enrol_server.new_token(), tmp_path / "s",
                               ssl=ssl_context_for(ca_pem))
        assert identity.server_url == url
    finally:
        await tls.close()


async def test_load_explains_what_is_wrong(enrol_server, tmp_path):
    with pytest.raises(NotEnrolled, match="kiosk provision"):
        DeviceIdentity.load(tmp_path / "nothing")
    state = tmp_path / "state"
    await enrol(enrol_server.url, enrol_server.new_token(), state)
    os.chmod(state / "device.key", 0o644)
    with pytest.raises(IdentityError, match="readable by other users"):
        DeviceIdentity.load(state)
    os.chmod(state / "device.key", 0o600)
    other = tmp_path / "other"
    await enrol(enrol_server.url, enrol_server.new_token(), other)
    saved = (state / "device.crt").read_bytes()
    (state / "device.crt").write_bytes((other / "device.crt").read_bytes())
    with pytest.raises(IdentityError, match="does not belong to device.key"):
        DeviceIdentity.load(state)
    (state / "device.crt").write_bytes(saved)
    (state / "enrolment.json").write_text("{not json")
    with pytest.raises(IdentityError):
        DeviceIdentity.load(state)
    (state / "enrolment.json").unlink()
    with pytest.raises(NotEnrolled):
        DeviceIdentity.load(state)


async def test_the_device_key_is_pkcs8_p256_and_never_sent(enrol_server, tmp_path):
    seen: list[bytes] = []
    handler = enrol_server._enrol

    async def spy(request):
        seen.append(await request.read())
        return await handler(request)

    enrol_server._enrol = spy
    app = enrol_server.app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        identity = await enrol(url, enrol_server.new_token(), tmp_path / "state")
    finally:
        await server.close()
    key_pem = (tmp_path / "state" / "device.key").read_bytes()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert isinstance(identity.private_key.curve, ec.SECP256R1)
    secret = identity.private_key.private_numbers().private_value.to_bytes(32, "big").hex()
    sent = b"".join(seen)
    assert b"PRIVATE KEY" not in sent and secret.encode() not in sent
    assert serialization.load_pem_private_key(key_pem, None).private_numbers() == (
        identity.private_key.private_numbers())


async def test_the_app_builds_its_maintenance_gate_from_enrolment_json_alone(enrol_server,
                                                                            tmp_path):
    from provisioning.credentials import MaintenanceGate, issue_credential
    from provisioning.device import EnrolmentRecord

    state = tmp_path / "state"
    identity = await enrol(enrol_server.url, enrol_server.new_token(), state)
    (state / "device.key").unlink()  # the app never needs the agent's key
    record = EnrolmentRecord.load(state)
    assert (record.device_id, record.site) == (identity.device_id, SITE)
    gate = MaintenanceGate.from_enrolment(state)
    _, text = issue_credential(enrol_server.bundle_key, "zhou.min", regions=["320200"],
                               pin="135790", valid_for_s=600, scrypt_log_n=12)
    assert gate.attempt(text, "135790").ok  # region 320213 lies in city 320200
    with pytest.raises(NotEnrolled):
        MaintenanceGate.from_enrolment(tmp_path / "nothing")
