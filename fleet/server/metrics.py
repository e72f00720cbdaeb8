"""Prometheus `/metrics`: the fleet's current state plus this process's own counters.

The fleet part (kiosks by state, open alerts by rule and severity...) is read from the
database when Prometheus scrapes and exposed through a custom collector, so every server
process behind the balancer reports the same fleet numbers (scrape one, or dedupe with
`max by`); the heartbeat counters are per process (sum them). Names follow Prometheus'
conventions so `promtool check metrics` passes without lint findings (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fleet.server.context import DB, EVALUATOR, INGEST, KEYS, SETTINGS
from fleet.server.schema import alerts, commands, devices, sites


@dataclass
class FleetSnapshot:
    kiosks: list[tuple[str, str, int]] = field(default_factory=list)  # state, site_type, n
    health: list[tuple[str, int]] = field(default_factory=list)
    open_alerts: list[tuple[str, str, int]] = field(default_factory=list)  # rule, severity, n
    unacked: int = 0
    revoked: int = 0
    sites: int = 0
    pending_commands: int = 0
    accepted: int = 0
    refused: int = 0
    batches: int = 0
    batch_seconds: float = 0.0
    largest_batch: int = 0
    batch_failures: int = 0
    leader: bool = False
    evaluator_passes: int = 0
    last_pass_seconds: float = 0.0
    auth_signed: int = 0
    auth_session: int = 0
    sessions_opened: int = 0
    auth_refused: dict[str, int] = field(default_factory=dict)


class FleetCollector(Collector):
    def __init__(self, snapshot: FleetSnapshot) -> None:
        self.s = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.s
        g = GaugeMetricFamily("fleet_kiosks", "Enrolled, non-revoked kiosks by state and site "
                              "type", labels=["state", "site_type"])
        for state, site_type, n in s.kiosks:
            g.add_metric([state, site_type], n)
        yield g
        g = GaugeMetricFamily("fleet_kiosks_health", "Non-revoked kiosks by worst condition",
                              labels=["health"])
        for health, n in s.health:
            g.add_metric([health], n)
        yield g
        g = GaugeMetricFamily("fleet_alerts_open", "Open alerts by rule and severity",
                              labels=["rule", "severity"])
        for rule, severity, n in s.open_alerts:
            g.add_metric([rule, severity], n)
        yield g
        yield GaugeMetricFamily("fleet_alerts_unacknowledged", "Open alerts nobody has "
                                "acknowledged", value=s.unacked)
        yield GaugeMetricFamily("fleet_kiosks_revoked", "Revoked kiosks", value=s.revoked)
        yield GaugeMetricFamily("fleet_sites", "Sites", value=s.sites)
        yield GaugeMetricFamily("fleet_commands_pending", "Commands not yet answered by their "
                                "kiosk", value=s.pending_commands)
        yield CounterMetricFamily("fleet_heartbeats_accepted", "Heartbeats stored by this "
                                  "process's group commit (with a SQLite writer process: by "
                                  "the writer, for every request process)", value=s.accepted)
        yield CounterMetricFamily("fleet_heartbeats_refused", "Heartbeats refused at the "
                                  "counter check (replayed or revoked) by the group commit",
                                  value=s.refused)
        yield CounterMetricFamily("fleet_heartbeat_batches", "Group commits of heartbeats (by "
                                  "this process, or by the writer process)", value=s.batches)
        yield CounterMetricFamily("fleet_heartbeat_batch_failures", "Heartbeat group commits "
                                  "that failed (answered 503)", value=s.batch_failures)
        yield CounterMetricFamily("fleet_heartbeat_batch_seconds", "Time spent writing "
                                  "heartbeat batches", value=s.batch_seconds)
        yield GaugeMetricFamily("fleet_heartbeat_batch_size_max", "Largest heartbeat batch "
                                "since start", value=s.largest_batch)
        yield GaugeMetricFamily("fleet_evaluator_leader", "1 if this process evaluates alerts",
                                value=1 if s.leader else 0)
        yield CounterMetricFamily("fleet_evaluator_passes", "Alert evaluation passes run by "
                                  "this process", value=s.evaluator_passes)
        yield GaugeMetricFamily("fleet_evaluator_pass_seconds", "Duration of the last alert "
                                "evaluation pass", value=s.last_pass_seconds)
        c = CounterMetricFamily("fleet_device_requests_verified", "Kiosk requests whose "
                                "signature (ECDSA) or session MAC verified in this process",
                                labels=["method"])
        c.add_metric(["signature"], s.auth_signed)
        c.add_metric(["session"], s.auth_session)
        yield c
        yield CounterMetricFamily("fleet_device_sessions_opened", "Device sessions opened by "
                                  "this process", value=s.sessions_opened)
        c = CounterMetricFamily("fleet_device_auth_refused", "Kiosk requests refused at "
                                "authentication in this process, by code", labels=["code"])
        for code, n in sorted(s.auth_refused.items()):
            c.add_metric([code], n)
        yield c


async def snapshot(app: web.Application) -> FleetSnapshot:
    db = app[DB]
    s = FleetSnapshot()
    active = devices.c.revoked_at.is_(None)
    async with db.engine.connect() as conn:
        s.kiosks = [(r[0], r[1], int(r[2])) for r in await conn.execute(
            sa.select(devices.c.state, sites.c.site_type, sa.func.count())
            .select_from(devices.join(sites, sites.c.id == devices.c.site_id)).where(active)
            .group_by(devices.c.state, sites.c.site_type)
            .order_by(devices.c.state, sites.c.site_type))]
        s.health = [(r[0], int(r[1])) for r in await conn.execute(
            sa.select(devices.c.health, sa.func.count()).where(active)
            .group_by(devices.c.health).order_by(devices.c.health))]
        s.open_alerts = [(r[0], r[1], int(r[2])) for r in await conn.execute(
            sa.select(alerts.c.rule, alerts.c.severity, sa.func.count())
            .where(alerts.c.resolved_at.is_(None))
            .group_by(alerts.c.rule, alerts.c.severity)
            .order_by(alerts.c.rule, alerts.c.severity))]
        s.unacked = int(await conn.scalar(sa.select(sa.func.count()).select_from(alerts).where(
            alerts.c.resolved_at.is_(None), alerts.c.acked_by.is_(None))) or 0)
        s.revoked = int(await conn.scalar(sa.select(sa.func.count()).select_from(devices)
                                          .where(devices.c.revoked_at.is_not(None))) or 0)
        s.sites = int(await conn.scalar(sa.select(sa.func.count()).select_from(sites)) or 0)
        s.pending_commands = int(await conn.scalar(
            sa.select(sa.func.count()).select_from(commands)
            .where(commands.c.status.in_(("pending", "delivered")))) or 0)
    st = app[INGEST].stats
    s.accepted, s.refused, s.batches = st.accepted, st.refused, st.batches
    s.batch_seconds, s.largest_batch, s.batch_failures = (st.batch_seconds, st.largest_batch,
                                                          st.failures)
    auth = app[KEYS].stats
    s.auth_signed, s.auth_session = auth.signed, auth.session
    s.sessions_opened, s.auth_refused = auth.sessions_opened, dict(auth.refused)
    ev = app[EVALUATOR]
    s.leader = app[SETTINGS].run_evaluator and ev.leadership.is_leader
    s.evaluator_passes, s.last_pass_seconds = ev.passes, ev.last_pass_seconds
    return s


async def render_metrics(app: web.Application) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(await snapshot(app)))
    return generate_latest(registry), CONTENT_TYPE_LATEST
