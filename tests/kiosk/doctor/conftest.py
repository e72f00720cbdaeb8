"""A kiosk for the doctor to examine: a config on the simulated devices with its data dir in
a temp folder, a fleet state dir enrolled with a certificate made here with `cryptography`,
and a real HTTP server answering the fleet's /healthz on a free loopback port."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.config import load
from kiosk.doctor import DoctorOptions

ME = getpass.getuser()  # the tests' kiosk and agent user: whoever runs them


def _name(cn: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(parts)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def enrol(state_dir: Path, server_url: str, *, valid_days: float = 825,
          expired_days_ago: float | None = None, other_key: bool = False,
          other_ca: bool = False) -> None:
    """Write an enrolment like provisioning/device.py does: key, certificate, CA, json."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Kiosk Fleet CA"))
          .issuer_name(_name("Kiosk Fleet CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(days=1))
          .not_valid_after(now + dt.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    device_key = ec.generate_private_key(ec.SECP256R1())
    certified = ec.generate_private_key(ec.SECP256R1()) if other_key else device_key
    if expired_days_ago is not None:
        not_before = now - dt.timedelta(days=expired_days_ago + 825)
        not_after = now - dt.timedelta(days=expired_days_ago)
    else:
        not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=valid_days)
    signer = ec.generate_private_key(ec.SECP256R1()) if other_ca else ca_key
    cert = (x509.CertificateBuilder().subject_name(_name("kiosk-test-001", "site-1"))
            .issuer_name(ca.subject).public_key(certified.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .sign(signer, hashes.SHA256()))
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    write_private(state_dir / "device.key", _pem_key(device_key))
    write_private(state_dir / "device.crt", cert.public_bytes(serialization.Encoding.PEM))
    write_private(state_dir / "ca.crt", ca.public_bytes(serialization.Encoding.PEM))
    write_private(state_dir / "enrolment.json", json.dumps({
        "device_id": "kiosk-test-001", "server_url": server_url,
        "site": {"id": "site-1", "name": "测试网点"}, "heartbeat_interval_s": 30,
        "bundle_signing_key_pem": "", "enrolled_at": now.isoformat(),
    }).encode())


@pytest_asyncio.fixture
async def fleet_url() -> AsyncIterator[str]:
    """A real HTTP server with the fleet's health endpoint."""
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def kiosk_dir(tmp_path: Path) -> Path:
    """A kiosk.toml on the simulators, data dir `data` beside it (mode 0750, like the unit's
    StateDirectory), outbox keys in a 0700 dir."""
    (tmp_path / "data" / "keys").mkdir(parents=True)
    os.chmod(tmp_path / "data", 0o750)
    os.chmod(tmp_path / "data" / "keys", 0o700)
    write_private(tmp_path / "data" / "keys" / "0123456789abcdef.key", os.urandom(32))
    write_private(tmp_path / "data" / "keys" / "current", b"0123456789abcdef")
    (tmp_path / "kiosk.toml").write_text('[paths]\ndata_dir = "data"\n', encoding="utf-8")
    return tmp_path


def write_config(kiosk_dir: Path, extra: str) -> None:
    (kiosk_dir / "kiosk.toml").write_text('[paths]\ndata_dir = "data"\n' + extra, "utf-8")


def options(kiosk_dir: Path, **overrides) -> DoctorOptions:
    values = dict(user=ME, agent_user=ME, state_dir=kiosk_dir / "state")
    values.update(overrides)
    return DoctorOptions(**values)


def config(kiosk_dir: Path):
    return load(kiosk_dir / "kiosk.toml")
