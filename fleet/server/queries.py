"""What ops read: overview counts, kiosk lists and details, alerts, statistics, the map.

The API handlers and the dashboard (fleet/server/dashboard) both call these, so a page and
its JSON twin always agree. Every function takes the user and applies their region scope in
SQL. The list queries read `devices` ⋈ `sites` plus one grouped subquery over open alerts,
which stays well under a second with tens of thousands of kiosks (indexes in schema.py).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from fleet.server import api_models as m
from fleet.server.db import Database
from fleet.server.ops import site_model
from fleet.server.schema import (
    RATING_LEVELS,
    alerts,
    commands,
    device_status,
    devices,
    enrolment_tokens,
    events,
    heartbeats,
    sites,
    usage_daily,
)
from fleet.server.users import User
from fleet.wire import Site

_ACTION_ACTOR = {"clear": "branch_staff", "maintenance": "engineer"}
_SEVERITY_BY_RANK = {1: "info", 2: "warning", 3: "critical"}


def _open_alerts_subquery() -> sa.Subquery:
    rank = sa.case((alerts.c.severity == "critical", 3), (alerts.c.severity == "warning", 2),
                   else_=1)
    return (sa.select(alerts.c.device_id, sa.func.count().label("n"),
                      sa.func.max(rank).label("worst"))
            .where(alerts.c.resolved_at.is_(None)).group_by(alerts.c.device_id).subquery())


def _kiosk_select(open_alerts: sa.Subquery) -> sa.Select[Any]:
    return (sa.select(
        devices.c.id, devices.c.site_id, sites.c.name.label("site_name"), sites.c.site_type,
        sites.c.region, sites.c.longitude, sites.c.latitude, devices.c.state, devices.c.health,
        devices.c.state_since, devices.c.last_seen, devices.c.app_state, devices.c.screen,
        devices.c.app_version, devices.c.catalogue_version, devices.c.revoked_at,
        sa.func.coalesce(open_alerts.c.n, 0).label("open_alerts"),
        open_alerts.c.worst)
        .select_from(devices.join(sites, sites.c.id == devices.c.site_id)
                     .outerjoin(open_alerts, open_alerts.c.device_id == devices.c.id)))


def _summary(r: Any) -> m.KioskSummary:
    return m.KioskSummary(
        device_id=r.id, site_id=r.site_id, site_name=r.site_name, site_type=r.site_type,
        region=r.region, longitude=r.longitude, latitude=r.latitude, state=r.state,
        health=r.health, state_since=r.state_since, last_seen=r.last_seen,
        app_state=r.app_state, screen=r.screen, app_version=r.app_version,
        catalogue_version=r.catalogue_version, open_alerts=r.open_alerts,
        worst_alert=_SEVERITY_BY_RANK.get(r.worst) if r.worst else None,
        revoked=r.revoked_at is not None)


async def list_kiosks(db: Database, user: User, q: m.KioskQuery) -> m.KioskList:
    open_alerts = _open_alerts_subquery()
    conds: list[sa.ColumnElement[bool]] = [user.region_clause(sites.c.region)]
    if q.region:
        conds.append(sites.c.region.startswith(q.region, autoescape=True))
    if q.site_type:
        conds.append(sites.c.site_type == q.site_type)
    if q.state:
        conds.append(devices.c.state == q.state)
    if q.health:
        conds.append(devices.c.health == q.health)
    if q.site_id:
        conds.append(devices.c.site_id == q.site_id)
    if q.alert:
        exists = sa.select(alerts.c.id).where(alerts.c.device_id == devices.c.id,
                                              alerts.c.resolved_at.is_(None))
        if q.alert != "any":
            exists = exists.where(alerts.c.rule == q.alert)
        conds.append(exists.exists())
    where = sa.and_(*conds)
    async with db.engine.connect() as conn:
        total = await conn.scalar(
            sa.select(sa.func.count()).select_from(
                devices.join(sites, sites.c.id == devices.c.site_id)).where(where))
        rows = (await conn.execute(
            _kiosk_select(open_alerts).where(where)
            .order_by(sa.func.coalesce(open_alerts.c.worst, 0).desc(), devices.c.id)
            .limit(q.limit).offset(q.offset))).all()
    return m.KioskList(total=total or 0, kiosks=[_summary(r) for r in rows])


async def overview(db: Database, user: User) -> m.Overview:
    scope = user.region_clause(sites.c.region)
    joined = devices.join(sites, sites.c.id == devices.c.site_id)
    active = sa.and_(scope, devices.c.revoked_at.is_(None))
    async with db.engine.connect() as conn:
        by_state = dict((await conn.execute(
            sa.select(devices.c.state, sa.func.count()).select_from(joined).where(active)
            .group_by(devices.c.state))).all())
        by_health = dict((await conn.execute(
            sa.select(devices.c.health, sa.func.count()).select_from(joined).where(active)
            .group_by(devices.c.health))).all())
        revoked = await conn.scalar(sa.select(sa.func.count()).select_from(joined)
                                    .where(scope, devices.c.revoked_at.is_not(None)))
        alert_rows = (await conn.execute(
            sa.select(alerts.c.severity, sa.func.count(),
                      sa.func.sum(sa.case((alerts.c.acked_by.is_(None), 1), else_=0)))
            .select_from(alerts.join(devices, devices.c.id == alerts.c.device_id)
                         .join(sites, sites.c.id == devices.c.site_id))
            .where(scope, alerts.c.resolved_at.is_(None)).group_by(alerts.c.severity))).all()
        n_sites = await conn.scalar(sa.select(sa.func.count()).select_from(sites).where(scope))
    states = {s: int(by_state.get(s, 0)) for s in ("new", "online", "late", "offline")}
    return m.Overview(
        kiosks=sum(states.values()), sites=n_sites or 0, states=states,
        health={h: int(by_health.get(h, 0)) for h in ("ok", "info", "warning", "critical")},
        open_alerts={s: 0 for s in ("info", "warning", "critical")}
        | {r[0]: int(r[1]) for r in alert_rows},
        unacknowledged_alerts=sum(int(r[2] or 0) for r in alert_rows),
        revoked=revoked or 0)


def _alert_row(r: Any) -> m.AlertRow:
    return m.AlertRow(
        id=r.id, device_id=r.device_id, site_id=r.site_id, site_name=r.site_name,
        region=r.region, rule=r.rule, subject=r.subject, severity=r.severity, actor=r.actor,
        message=r.message, first_seen=r.first_seen, last_seen=r.last_seen,
        resolved_at=r.resolved_at, acked_by=r.acked_by, acked_at=r.acked_at)


def _alerts_select() -> sa.Select[Any]:
    return (sa.select(alerts, devices.c.site_id, sites.c.name.label("site_name"), sites.c.region)
            .select_from(alerts.join(devices, devices.c.id == alerts.c.device_id)
                         .join(sites, sites.c.id == devices.c.site_id)))


async def list_alerts(db: Database, user: User, q: m.AlertQuery) -> m.AlertList:
    conds: list[sa.ColumnElement[bool]] = [user.region_clause(sites.c.region)]
    if q.status == "open":
        conds.append(alerts.c.resolved_at.is_(None))
    elif q.status == "resolved":
        conds.append(alerts.c.resolved_at.is_not(None))
    if q.severity:
        conds.append(alerts.c.severity == q.severity)
    if q.rule:
        conds.append(alerts.c.rule == q.rule)
    if q.actor:
        conds.append(alerts.c.actor == q.actor)
    if q.region:
        conds.append(sites.c.region.startswith(q.region, autoescape=True))
    if q.device_id:
        conds.append(alerts.c.device_id == q.device_id)
    if q.acked is not None:
        conds.append(alerts.c.acked_by.is_not(None) if q.acked else alerts.c.acked_by.is_(None))
    where = sa.and_(*conds)
    rank = sa.case((alerts.c.severity == "critical", 3), (alerts.c.severity == "warning", 2),
                   else_=1)
    async with db.engine.connect() as conn:
        total = await conn.scalar(
            sa.select(sa.func.count()).select_from(
                alerts.join(devices, devices.c.id == alerts.c.device_id)
                .join(sites, sites.c.id == devices.c.site_id)).where(where))
        rows = (await conn.execute(
            _alerts_select().where(where)
            .order_by(alerts.c.resolved_at.is_not(None), rank.desc(), alerts.c.first_seen.desc(),
                      alerts.c.id.desc())
            .limit(q.limit).offset(q.offset))).all()
    return m.AlertList(total=total or 0, alerts=[_alert_row(r) for r in rows])


def _command_row(r: Any, cls: type[m.CommandRow] = m.CommandRow, **extra: Any) -> Any:
    return cls(id=r.id, device_id=r.device_id, name=r.name, args=json.loads(r.args),
               issued_by=r.issued_by, issued_at=r.issued_at, expires_at=r.expires_at,
               status=r.status, delivered_at=r.delivered_at, finished_at=r.finished_at,
               detail=r.detail, has_data=r.data is not None, **extra)


async def kiosk_detail(db: Database, user: User, device_id: str, *,
                       recent: int = 20) -> m.KioskDetail | None:
    open_alerts = _open_alerts_subquery()
    async with db.engine.connect() as conn:
        row = (await conn.execute(
            _kiosk_select(open_alerts).add_columns(
                devices.c.interval_s, devices.c.clock_skew_s, devices.c.clock_synced,
                devices.c.config_version, devices.c.catalogue_published_at,
                devices.c.disk_free_bytes, devices.c.disk_total_bytes, devices.c.door_open,
                devices.c.tamper, devices.c.last_heartbeat, sites.c.address)
            .where(devices.c.id == device_id, user.region_clause(sites.c.region)))).first()
        if row is None:
            return None
        status_rows = (await conn.execute(
            sa.select(device_status).where(device_status.c.device_id == device_id)
            .order_by(device_status.c.name))).all()
        hb_rows = (await conn.execute(
            sa.select(heartbeats).where(heartbeats.c.device_id == device_id)
            .order_by(heartbeats.c.received_at.desc()).limit(recent))).all()
        ev_rows = (await conn.execute(
            sa.select(events).where(events.c.device_id == device_id)
            .order_by(events.c.at.desc(), events.c.id.desc()).limit(recent))).all()
        cmd_rows = (await conn.execute(
            sa.select(commands.c.id, commands.c.device_id, commands.c.name, commands.c.args,
                      commands.c.issued_by, commands.c.issued_at, commands.c.expires_at,
                      commands.c.status, commands.c.delivered_at, commands.c.finished_at,
                      commands.c.detail, commands.c.data.is_not(None).label("has"))
            .where(commands.c.device_id == device_id)
            .order_by(commands.c.issued_at.desc()).limit(recent))).all()
        alert_rows = (await conn.execute(
            _alerts_select().where(alerts.c.device_id == device_id)
            .order_by(alerts.c.resolved_at.is_not(None), alerts.c.first_seen.desc())
            .limit(recent))).all()
    site = Site(site_id=row.site_id, site_type=row.site_type, name=row.site_name,
                address=row.address, region=row.region, longitude=row.longitude,
                latitude=row.latitude)
    return m.KioskDetail(
        kiosk=_summary(row), site=site, revoked_at=row.revoked_at, interval_s=row.interval_s,
        clock_skew_s=row.clock_skew_s, clock_synced=row.clock_synced,
        config_version=row.config_version, catalogue_published_at=row.catalogue_published_at,
        disk_free_bytes=row.disk_free_bytes, disk_total_bytes=row.disk_total_bytes,
        door_open=row.door_open, tamper=row.tamper,
        devices=[m.DeviceStatusRow(
            name=s.name, device_class=s.device_class, lifecycle=s.lifecycle, state=s.state,
            supplies=json.loads(s.supplies), error_kind=s.error_kind,
            error_action=s.error_action, error_code=s.error_code, error_text=s.error_text,
            actor=(_ACTION_ACTOR.get(s.error_action or "", "ops") if s.error_kind else None),
            info=json.loads(s.info), updated_at=s.updated_at) for s in status_rows],
        heartbeats=[m.HeartbeatRow(
            received_at=h.received_at, sent_at=h.sent_at, seq=h.seq, kind=h.kind,
            app_state=h.app_state, screen=h.screen, health=h.health,
            journeys_completed=h.journeys_completed) for h in hb_rows],
        events=[m.EventRow(at=e.at, kind=e.kind, device_id=e.device_id,
                           detail=json.loads(e.detail)) for e in ev_rows],
        commands=[m.CommandRow(
            id=c.id, device_id=c.device_id, name=c.name, args=json.loads(c.args),
            issued_by=c.issued_by, issued_at=c.issued_at, expires_at=c.expires_at,
            status=c.status, delivered_at=c.delivered_at, finished_at=c.finished_at,
            detail=c.detail, has_data=bool(c.has)) for c in cmd_rows],
        alerts=[_alert_row(a) for a in alert_rows],
        last_heartbeat=json.loads(row.last_heartbeat) if row.last_heartbeat else None)


async def command_detail(db: Database, user: User, command_id: str) -> m.CommandDetail | None:
    async with db.engine.connect() as conn:
        r = (await conn.execute(
            sa.select(commands).select_from(
                commands.join(devices, devices.c.id == commands.c.device_id)
                .join(sites, sites.c.id == devices.c.site_id))
            .where(commands.c.id == command_id, user.region_clause(sites.c.region)))).first()
    if r is None:
        return None
    return _command_row(r, m.CommandDetail, data=json.loads(r.data) if r.data else None)


async def list_sites(db: Database, user: User) -> m.SiteList:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.select(sites).where(user.region_clause(sites.c.region))
                                   .order_by(sites.c.id))).all()
    return m.SiteList(sites=[site_model(r) for r in rows])


async def get_site(db: Database, user: User, site_id: str) -> Site | None:
    async with db.engine.connect() as conn:
        r = (await conn.execute(sa.select(sites).where(
            sites.c.id == site_id, user.region_clause(sites.c.region)))).first()
    return site_model(r) if r is not None else None


async def list_tokens(db: Database, user: User) -> m.TokenList:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(enrolment_tokens).join(sites, sites.c.id == enrolment_tokens.c.site_id)
            .where(user.region_clause(sites.c.region))
            .order_by(enrolment_tokens.c.created_at.desc()).limit(1000))).all()
    return m.TokenList(tokens=[m.TokenRow(
        token_hash_prefix=r.token_hash[:12], site_id=r.site_id, created_at=r.created_at,
        created_by=r.created_by, expires_at=r.expires_at, used_at=r.used_at,
        device_id=r.device_id) for r in rows])


async def stats(db: Database, user: User, q: m.StatsQuery) -> m.Stats:
    if q.group_by == "item":
        key, label = usage_daily.c.item_id, usage_daily.c.item_id
    elif q.group_by == "site":
        key, label = usage_daily.c.site_id, sa.func.max(sites.c.name)
    else:
        key, label = usage_daily.c.region, usage_daily.c.region
    sums = [sa.func.sum(usage_daily.c[c]).label(c) for c in
            ("completed", "abandoned", "failed", *(f"rating_{lv}" for lv in RATING_LEVELS))]
    conds: list[sa.ColumnElement[bool]] = [user.region_clause(usage_daily.c.region)]
    if q.from_day:
        conds.append(usage_daily.c.day >= q.from_day)
    if q.to_day:
        conds.append(usage_daily.c.day <= q.to_day)
    if q.region:
        conds.append(usage_daily.c.region.startswith(q.region, autoescape=True))
    if q.item_id:
        conds.append(usage_daily.c.item_id == q.item_id)
    if q.site_id:
        conds.append(usage_daily.c.site_id == q.site_id)
    source = usage_daily.outerjoin(sites, sites.c.id == usage_daily.c.site_id)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(key.label("key"), label.label("label"), *sums).select_from(source)
            .where(*conds).group_by(key).order_by(sa.desc("completed"), key).limit(2000))).all()
    out = []
    for r in rows:
        ratings = {lv: int(getattr(r, f"rating_{lv}") or 0) for lv in RATING_LEVELS}
        rated = sum(ratings.values())
        good = ratings["very_satisfied"] + ratings["satisfied"]
        out.append(m.StatsRow(
            key=r.key, label=r.label or r.key, completed=int(r.completed or 0),
            abandoned=int(r.abandoned or 0), failed=int(r.failed or 0), ratings=ratings,
            rated=rated, satisfaction=(good / rated) if rated else None))
    return m.Stats(group_by=q.group_by, from_day=q.from_day, to_day=q.to_day, rows=out)


async def kiosk_map(db: Database, user: User) -> m.FeatureCollection:
    open_alerts = _open_alerts_subquery()
    async with db.engine.connect() as conn:
        rows = (await conn.execute(
            _kiosk_select(open_alerts).where(user.region_clause(sites.c.region),
                                             devices.c.revoked_at.is_(None))
            .order_by(devices.c.id))).all()
    return m.FeatureCollection(features=[m.KioskFeature(
        id=r.id, geometry=m.PointGeometry(coordinates=[r.longitude, r.latitude]),
        properties=m.KioskFeatureProperties(
            device_id=r.id, site_id=r.site_id, site_name=r.site_name, site_type=r.site_type,
            region=r.region, state=r.state, health=r.health, open_alerts=r.open_alerts))
        for r in rows])
