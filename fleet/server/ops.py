"""What ops do to the fleet: sites, enrolment tokens, commands, revocation, acknowledging.

Shared by the HTTP API, the CLI, the dashboard and `fleet.server.testing`, so each action is
written once. Every action that changes a kiosk leaves an event row. Failures are
`ApiProblem`s (status, stable code, sentence), which the CLI prints and the API returns.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import sqlalchemy as sa

from fleet.server.db import Database
from fleet.server.errors import ApiProblem
from fleet.server.schema import (
    alerts,
    commands,
    devices,
    enrolment_tokens,
    events,
    revoked_credentials,
    sites,
)
from fleet.wire import Command, Site
from provisioning.tokens import new_enrolment_token


def event_row(kind: str, at: float, device_id: str | None = None, **detail: Any) -> dict[str, Any]:
    return {"device_id": device_id, "at": at, "kind": kind,
            "detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":"))}


def site_model(row: Any) -> Site:
    return Site(site_id=row.id, site_type=row.site_type, name=row.name, address=row.address,
                region=row.region, longitude=row.longitude, latitude=row.latitude)


async def create_site(db: Database, site: Site, *, now: float) -> str:
    async with db.engine.begin() as conn:
        if await conn.scalar(sa.select(sites.c.id).where(sites.c.id == site.site_id)):
            raise ApiProblem(409, "site_exists", f"site {site.site_id} already exists")
        await conn.execute(sites.insert().values(
            id=site.site_id, site_type=site.site_type, name=site.name, address=site.address,
            region=site.region, longitude=site.longitude, latitude=site.latitude,
            created_at=now))
    return site.site_id


async def update_site(db: Database, site: Site) -> None:
    async with db.engine.begin() as conn:
        result = await conn.execute(sites.update().where(sites.c.id == site.site_id).values(
            site_type=site.site_type, name=site.name, address=site.address, region=site.region,
            longitude=site.longitude, latitude=site.latitude))
        if result.rowcount == 0:
            raise ApiProblem(404, "site_unknown", f"no site {site.site_id}")


async def delete_site(db: Database, site_id: str) -> None:
    async with db.engine.begin() as conn:
        if await conn.scalar(sa.select(sa.func.count()).select_from(devices)
                             .where(devices.c.site_id == site_id)):
            raise ApiProblem(409, "site_has_kiosks",
                             "the site still has kiosks; revoke and move them first")
        await conn.execute(enrolment_tokens.delete().where(enrolment_tokens.c.site_id == site_id))
        result = await conn.execute(sites.delete().where(sites.c.id == site_id))
        if result.rowcount == 0:
            raise ApiProblem(404, "site_unknown", f"no site {site_id}")


async def create_enrolment_token(db: Database, site_id: str, *, ttl_s: float, now: float,
                                 created_by: str = "") -> tuple[str, float]:
    """A one-time token bound to `site_id`: (token, expires_at). Only its hash is stored."""
    if not 60 <= ttl_s <= 30 * 86400:
        raise ApiProblem(400, "bad_ttl", "token lifetime must be 60 s to 30 days")
    token, digest = new_enrolment_token()
    async with db.engine.begin() as conn:
        if not await conn.scalar(sa.select(sites.c.id).where(sites.c.id == site_id)):
            raise ApiProblem(404, "site_unknown", f"no site {site_id}")
        await conn.execute(enrolment_tokens.insert().values(
            token_hash=digest, site_id=site_id, created_at=now, created_by=created_by,
            expires_at=now + ttl_s))
    return token, now + ttl_s


async def issue_command(db: Database, device_id: str, name: str, args: dict[str, Any], *,
                        issued_by: str, now: float, ttl_s: float) -> Command:
    """Queue a command; the kiosk gets it in its next heartbeat acknowledgement."""
    command = Command(id="c" + secrets.token_hex(8), name=name,  # type: ignore[arg-type]
                      args=args, issued_at=now, expires_at=now + ttl_s)
    async with db.engine.begin() as conn:
        result = await conn.execute(
            devices.update().where(devices.c.id == device_id, devices.c.revoked_at.is_(None))
            .values(pending_commands=devices.c.pending_commands + 1))
        if result.rowcount == 0:
            raise ApiProblem(404, "kiosk_unknown", f"no active kiosk {device_id}")
        await conn.execute(commands.insert().values(
            id=command.id, device_id=device_id, name=name,
            args=json.dumps(args, ensure_ascii=False), issued_by=issued_by, issued_at=now,
            expires_at=command.expires_at))
        await conn.execute(events.insert().values(event_row(
            "command_issued", now, device_id, command_id=command.id, name=name, by=issued_by)))
    return command


async def revoke_device(db: Database, device_id: str, *, by: str, now: float) -> None:
    """Refuse the kiosk from its next request on; its open alerts are resolved and its
    pending commands dropped."""
    async with db.engine.begin() as conn:
        result = await conn.execute(
            devices.update().where(devices.c.id == device_id, devices.c.revoked_at.is_(None))
            .values(revoked_at=now, revoked_by=by, pending_commands=0, alert_dirty=True,
                    cond_version=devices.c.cond_version + 1))
        if result.rowcount == 0:
            exists = await conn.scalar(sa.select(devices.c.id).where(devices.c.id == device_id))
            if exists is None:
                raise ApiProblem(404, "kiosk_unknown", f"no kiosk {device_id}")
            raise ApiProblem(409, "already_revoked", f"kiosk {device_id} is already revoked")
        await conn.execute(commands.update().where(
            commands.c.device_id == device_id, commands.c.status.in_(("pending", "delivered"))
        ).values(status="expired", detail="kiosk revoked"))
        await conn.execute(events.insert().values(event_row("revoked", now, device_id, by=by)))


async def acknowledge_alert(db: Database, alert_id: int, *, by: str, now: float,
                            region_clause: sa.ColumnElement[bool] | None = None) -> dict[str, Any]:
    """Mark an alert as seen by `by`. Acknowledging twice keeps the first acknowledgement."""
    async with db.engine.begin() as conn:
        q = (sa.select(alerts.c.id, alerts.c.acked_by, alerts.c.device_id)
             .select_from(alerts.join(devices, devices.c.id == alerts.c.device_id)
                          .join(sites, sites.c.id == devices.c.site_id))
             .where(alerts.c.id == alert_id))
        if region_clause is not None:
            q = q.where(region_clause)
        row = (await conn.execute(q)).first()
        if row is None:
            raise ApiProblem(404, "alert_unknown", f"no alert {alert_id}")
        if row.acked_by is None:
            await conn.execute(alerts.update().where(alerts.c.id == alert_id)
                               .values(acked_by=by, acked_at=now))
            await conn.execute(events.insert().values(event_row(
                "alert_acknowledged", now, row.device_id, alert_id=alert_id, by=by)))
    return {"alert_id": alert_id}


async def revoke_credential(db: Database, credential_id: str, *, by: str, now: float,
                            note: str = "") -> None:
    """Revoke a kiosk maintenance credential fleet-wide (sent in every heartbeat ack)."""
    async with db.engine.begin() as conn:
        if await conn.scalar(sa.select(revoked_credentials.c.credential_id)
                             .where(revoked_credentials.c.credential_id == credential_id)):
            return
        await conn.execute(revoked_credentials.insert().values(
            credential_id=credential_id, revoked_at=now, revoked_by=by, note=note))
