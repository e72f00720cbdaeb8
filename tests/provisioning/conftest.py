"""Fixtures for the provisioning tests: a real fleet CA in a temporary directory and a tiny
real enrolment server (aiohttp on 127.0.0.1, a free port) built from FleetCA and the token
functions, standing in for fleet/server until it exists. It answers exactly as the wire says:
EnrolResponse on success, ApiError {error, detail} otherwise."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from fleet.wire import ApiError, EnrolRequest, EnrolResponse, Site
from provisioning.ca import CSRRejected, FleetCA
from provisioning.tokens import looks_like_token, new_enrolment_token, token_hash

SITE = Site(
    site_id="wx-bank-001", site_type="bank", name="无锡市某银行营业厅",
    address="无锡市梁溪区",
    region="320213", longitude=120.30, latitude=31.57,
)


@dataclass
class TokenRow:
    site: Site
    expires_at: float
    used_at: float | None = None


@dataclass
class EnrolServer:
    ca: FleetCA
    bundle_key: Ed25519PrivateKey
    server: TestServer | None = None
    tokens: dict[str, TokenRow] = field(default_factory=dict)  # hash -> row
    requests: int = 0
    # Hooks for a misbehaving server: replace the answer before it is sent.
    tamper: object = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def new_token(self, ttl_s: float = 3600, site: Site = SITE) -> str:
        token, digest = new_enrolment_token()
        self.tokens[digest] = TokenRow(site, time.time() + ttl_s)
        return token

    @property
    def bundle_public_pem(self) -> str:
        return self.bundle_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/enrol", self._enrol)
        return app

    async def _enrol(self, request: web.Request) -> web.Response:
        self.requests += 1

        def error(status: int, code: str, detail: str = "") -> web.Response:
            answer = ApiError(error=code, detail=detail).model_dump()
            return web.json_response(answer, status=status)

        try:
            body = EnrolRequest.model_validate_json(await request.read())
        except ValidationError:
            return error(400, "bad_request", "not an EnrolRequest")
        row = self.tokens.get(token_hash(body.token)) if looks_like_token(body.token) else None
        if row is None:
            return error(401, "token_unknown")
        if row.used_at is not None:
            return error(409, "token_used")
        if row.expires_at < time.time():
            return error(410, "token_expired")
        device_id = "kiosk-" + secrets.token_hex(4)
        try:
            cert = self.ca.issue_device_certificate(body.csr_pem, device_id, row.site.site_id)
        except CSRRejected as exc:
            return error(400, "csr_rejected", exc.code)
        row.used_at = time.time()
        answer = EnrolResponse(
            device_id=device_id, certificate_pem=cert, ca_certificate_pem=self.ca.certificate_pem,
            site=row.site, heartbeat_interval_s=30, bundle_signing_key_pem=self.bundle_public_pem,
        )
        if callable(self.tamper):
            answer = self.tamper(answer)
        return web.json_response(text=answer.model_dump_json())


@pytest.fixture(scope="session")
def session_ca(tmp_path_factory) -> FleetCA:
    return FleetCA.create(tmp_path_factory.mktemp("fleet-ca"))


@pytest_asyncio.fixture
async def enrol_server(session_ca: FleetCA) -> AsyncIterator[EnrolServer]:
    fake = EnrolServer(session_ca, Ed25519PrivateKey.generate())
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    fake.server = server
    yield fake
    await server.close()


def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A private TLS CA and a server certificate for 127.0.0.1: (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TLS CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "tls-ca.pem", directory / "tls-cert.pem", directory / "tls-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return paths
