"""Enrolment: a one-time token and a CSR in, a device certificate out (DESIGN §9).

The token is checked, the CSR signed, the token consumed and the device row created in one
transaction; a CSR the CA refuses leaves the token unused, so the engineer can retry with a
good key. The kiosk's id is chosen here (site id + random suffix): ids are never reused.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from fleet.server.db import Database
from fleet.server.errors import ApiProblem
from fleet.server.ops import event_row, site_model
from fleet.server.schema import devices, enrolment_tokens, events, sites
from fleet.wire import EnrolRequest, EnrolResponse
from provisioning.ca import CSRRejected, FleetCA, public_key_of
from provisioning.tokens import looks_like_token, token_hash


def new_device_id(site_id: str) -> str:
    return f"{site_id[:48]}-k{secrets.token_hex(5)}"


async def enrol(db: Database, ca: FleetCA, req: EnrolRequest, *, now: float,
                heartbeat_interval_s: int, bundle_signing_key_pem: str = "") -> EnrolResponse:
    if not looks_like_token(req.token):
        raise ApiProblem(401, "token_unknown", "this is not an enrolment token")
    digest = token_hash(req.token)
    async with db.engine.begin() as conn:
        tok = (await conn.execute(sa.select(enrolment_tokens)
                                  .where(enrolment_tokens.c.token_hash == digest))).first()
        if tok is None:
            raise ApiProblem(401, "token_unknown", "no such enrolment token")
        if tok.used_at is not None:
            raise ApiProblem(409, "token_used", "this enrolment token has already been used")
        if tok.expires_at <= now:
            raise ApiProblem(401, "token_expired", "this enrolment token has expired; ask ops "
                                                   "for a new one")
        site_row = (await conn.execute(sa.select(sites).where(sites.c.id == tok.site_id))).first()
        if site_row is None:
            raise ApiProblem(401, "token_unknown", "the token's site no longer exists")
        device_id = new_device_id(tok.site_id)
        try:
            cert_pem = ca.issue_device_certificate(req.csr_pem, device_id, tok.site_id)
        except CSRRejected as exc:
            raise ApiProblem(400, "csr_rejected", f"{exc.code}: {exc.detail}") from None
        used = await conn.execute(
            enrolment_tokens.update()
            .where(enrolment_tokens.c.token_hash == digest, enrolment_tokens.c.used_at.is_(None))
            .values(used_at=now, device_id=device_id))
        if used.rowcount != 1:
            raise ApiProblem(409, "token_used", "this enrolment token has already been used")
        public_pem = public_key_of(cert_pem).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")
        await conn.execute(devices.insert().values(
            id=device_id, site_id=tok.site_id, certificate_pem=cert_pem,
            public_key_pem=public_pem, enrolled_at=now, interval_s=heartbeat_interval_s,
            app_version=req.app_version or None, state="new", state_since=now))
        await conn.execute(events.insert().values(event_row(
            "enrolled", now, device_id, site_id=tok.site_id, app_version=req.app_version)))
    return EnrolResponse(
        device_id=device_id, certificate_pem=cert_pem, ca_certificate_pem=ca.certificate_pem,
        site=site_model(site_row), heartbeat_interval_s=heartbeat_interval_s,
        bundle_signing_key_pem=bundle_signing_key_pem)
