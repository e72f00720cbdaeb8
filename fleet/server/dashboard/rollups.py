"""Read-only roll-ups the dashboard needs and fleet/server/queries.py does not offer.

Both are grouped counts in SQL over the same Core tables, scoped by the user's regions, so
they cost the same with ten kiosks or ten thousand:
- open alerts per rule (how many kiosks are degraded, and why: paper low, device faults...);
- kiosks per region and state, for the region table on the map page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from fleet.server.db import Database
from fleet.server.schema import KIOSK_STATES, alerts, devices, sites
from fleet.server.users import User


@dataclass(frozen=True)
class RuleCount:
    rule: str
    severity: str  # the worst severity among the rule's open alerts
    kiosks: int  # distinct kiosks with such an open alert
    unacknowledged: int


@dataclass
class RegionRow:
    region: str
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KIOSK_STATES, 0))
    degraded: int = 0  # kiosks whose health is warning or critical

    @property
    def total(self) -> int:
        return sum(self.states.values())


_RANK = {1: "info", 2: "warning", 3: "critical"}


async def open_alerts_by_rule(db: Database, user: User) -> list[RuleCount]:
    rank = sa.case((alerts.c.severity == "critical", 3), (alerts.c.severity == "warning", 2),
                   else_=1)
    q = (sa.select(alerts.c.rule, sa.func.max(rank), sa.func.count(sa.distinct(alerts.c.device_id)),
                   sa.func.sum(sa.case((alerts.c.acked_by.is_(None), 1), else_=0)))
         .select_from(alerts.join(devices, devices.c.id == alerts.c.device_id)
                      .join(sites, sites.c.id == devices.c.site_id))
         .where(alerts.c.resolved_at.is_(None), user.region_clause(sites.c.region))
         .group_by(alerts.c.rule))
    async with db.engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    out = [RuleCount(r[0], _RANK.get(int(r[1] or 1), "info"), int(r[2]), int(r[3] or 0))
           for r in rows]
    severity_rank = {v: k for k, v in _RANK.items()}
    return sorted(out, key=lambda c: (-severity_rank[c.severity], -c.kiosks, c.rule))


async def kiosks_by_region(db: Database, user: User) -> list[RegionRow]:
    degraded = sa.case((devices.c.health.in_(("warning", "critical")), 1), else_=0)
    q = (sa.select(sites.c.region, devices.c.state, sa.func.count(), sa.func.sum(degraded))
         .select_from(devices.join(sites, sites.c.id == devices.c.site_id))
         .where(user.region_clause(sites.c.region), devices.c.revoked_at.is_(None))
         .group_by(sites.c.region, devices.c.state).order_by(sites.c.region))
    async with db.engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    regions: dict[str, RegionRow] = {}
    for region, state, n, bad in rows:
        row = regions.setdefault(region, RegionRow(region))
        row.states[state] = row.states.get(state, 0) + int(n)
        row.degraded += int(bad or 0)
    return list(regions.values())
