"""The ops API's request, query and response models (the device side uses fleet/wire.py).

The OpenAPI document is generated from these and the route table (fleet/server/routes.py),
so the documented shapes are the ones the handlers validate and produce.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from fleet.wire import CommandName, Ident, RatingLevel, Site

Role = Literal["viewer", "operator", "admin"]
RegionCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]
KioskState = Literal["new", "online", "late", "offline"]
Health = Literal["ok", "info", "warning", "critical"]
SiteType = Literal["bank", "post", "telecom", "hall"]
Severity = Literal["info", "warning", "critical"]
Actor = Literal["branch_staff", "engineer", "ops"]
Day = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- auth and users ---------------------------------------------------------------------

class LoginRequest(_In):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class UserInfo(_Out):
    name: str
    role: Role
    regions: list[str]


class LoginResponse(_Out):
    token: str
    expires_at: float
    user: UserInfo


class UserCreate(_In):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")]
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)]
    role: Role
    regions: list[RegionCode] = Field(default_factory=list, max_length=50)


class UserUpdate(_In):
    role: Role | None = None
    regions: list[RegionCode] | None = Field(None, max_length=50)
    password: Annotated[str, StringConstraints(min_length=8, max_length=200)] | None = None
    disabled: bool | None = None


class UserRow(_Out):
    name: str
    role: Role
    regions: list[str]
    created_at: float
    disabled: bool


class UserList(_Out):
    users: list[UserRow]


class Ok(_Out):
    ok: Literal[True] = True


# --- sites and enrolment tokens ---------------------------------------------------------

class SiteList(_Out):
    sites: list[Site]


class TokenCreate(_In):
    ttl_s: int = Field(24 * 3600, ge=60, le=30 * 86400)


class TokenCreated(_Out):
    token: str  # shown once; only its hash is stored
    site_id: str
    expires_at: float


class TokenRow(_Out):
    token_hash_prefix: str
    site_id: str
    created_at: float
    created_by: str
    expires_at: float
    used_at: float | None
    device_id: str | None


class TokenList(_Out):
    tokens: list[TokenRow]


# --- kiosks -----------------------------------------------------------------------------

class KioskQuery(_In):
    region: Annotated[str, StringConstraints(pattern=r"^\d{2,6}$")] | None = None
    site_type: SiteType | None = None
    state: KioskState | None = None
    health: Health | None = None
    alert: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] | None = Field(
        None, description='an alert rule (e.g. "supply_out"), or "any": kiosks with such an '
                          "open alert")
    site_id: Ident | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10_000_000)


class KioskSummary(_Out):
    device_id: str
    site_id: str
    site_name: str
    site_type: SiteType
    region: str
    longitude: float
    latitude: float
    state: KioskState
    health: Health
    state_since: float | None
    last_seen: float | None
    app_state: str | None
    screen: str | None
    app_version: str | None
    catalogue_version: str | None
    open_alerts: int
    worst_alert: Severity | None
    revoked: bool


class KioskList(_Out):
    total: int
    kiosks: list[KioskSummary]


class DeviceStatusRow(_Out):
    name: str
    device_class: str
    lifecycle: str
    state: str
    supplies: dict[str, str]
    error_kind: str | None
    error_action: str | None
    error_code: str | None
    error_text: str | None
    actor: Actor | None  # who must act on the error (from its operator action)
    info: dict[str, str]
    updated_at: float


class HeartbeatRow(_Out):
    received_at: float
    sent_at: float
    seq: int
    kind: str
    app_state: str
    screen: str
    health: str
    journeys_completed: int


class EventRow(_Out):
    at: float
    kind: str
    device_id: str | None
    detail: dict[str, Any]


class CommandRow(_Out):
    id: str
    device_id: str
    name: str
    args: dict[str, Any]
    issued_by: str
    issued_at: float
    expires_at: float
    status: Literal["pending", "delivered", "done", "failed", "rejected", "expired"]
    delivered_at: float | None
    finished_at: float | None
    detail: str
    has_data: bool


class CommandDetail(CommandRow):
    data: dict[str, Any] | None


class AlertRow(_Out):
    id: int
    device_id: str
    site_id: str
    site_name: str
    region: str
    rule: str
    subject: str
    severity: Severity
    actor: Actor
    message: str
    first_seen: float
    last_seen: float
    resolved_at: float | None
    acked_by: str | None
    acked_at: float | None


class KioskDetail(_Out):
    kiosk: KioskSummary
    site: Site
    revoked_at: float | None
    interval_s: int
    clock_skew_s: float | None
    clock_synced: bool | None
    config_version: str | None
    catalogue_published_at: float | None
    disk_free_bytes: int | None
    disk_total_bytes: int | None
    door_open: bool | None
    tamper: bool | None
    devices: list[DeviceStatusRow]
    heartbeats: list[HeartbeatRow]
    events: list[EventRow]
    commands: list[CommandRow]
    alerts: list[AlertRow]
    last_heartbeat: dict[str, Any] | None


class CommandCreate(_In):
    name: CommandName
    args: dict[str, Any] = Field(default_factory=dict)  # the body limit bounds it
    ttl_s: int | None = Field(None, ge=10, le=7 * 86400)

    @model_validator(mode="after")
    def _args_fit_the_command(self) -> CommandCreate:
        """The arguments each command takes (fleet/wire.py CommandName), so a typo is refused
        here rather than by the kiosk an hour later."""
        allowed = {"out_of_service": {"reason"}, "apply_bundle": {"kind", "bundle"}}.get(
            self.name, set())
        unknown = set(self.args) - allowed
        if unknown:
            raise ValueError(f"{self.name} takes no argument {sorted(unknown)[0]!r}")
        reason = self.args.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 200:
            raise ValueError("reason must be text of at most 200 characters")
        if self.name == "apply_bundle" and (self.args.get("kind") not in ("catalogue", "config")
                                            or not isinstance(self.args.get("bundle"), dict)):
            raise ValueError('apply_bundle needs kind "catalogue"|"config" and a bundle object')
        return self


# --- alerts -----------------------------------------------------------------------------

class AlertQuery(_In):
    status: Literal["open", "resolved", "all"] = "open"
    severity: Severity | None = None
    rule: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")] | None = None
    actor: Actor | None = None
    region: Annotated[str, StringConstraints(pattern=r"^\d{2,6}$")] | None = None
    device_id: Ident | None = None
    acked: bool | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=10_000_000)


class AlertList(_Out):
    total: int
    alerts: list[AlertRow]


# --- overview, statistics, map -----------------------------------------------------------

class Overview(_Out):
    kiosks: int
    sites: int
    states: dict[KioskState, int]
    health: dict[Health, int]
    open_alerts: dict[Severity, int]
    unacknowledged_alerts: int
    revoked: int


class StatsQuery(_In):
    group_by: Literal["item", "site", "region"] = "item"
    from_day: Day | None = None
    to_day: Day | None = None
    region: Annotated[str, StringConstraints(pattern=r"^\d{2,6}$")] | None = None
    item_id: Ident | None = None
    site_id: Ident | None = None


class StatsRow(_Out):
    key: str
    label: str
    completed: int
    abandoned: int
    failed: int
    ratings: dict[RatingLevel, int]
    rated: int
    satisfaction: float | None  # share rated satisfied or very satisfied, 0..1


class Stats(_Out):
    group_by: Literal["item", "site", "region"]
    from_day: str | None
    to_day: str | None
    rows: list[StatsRow]


class PointGeometry(_Out):
    type: Literal["Point"] = "Point"
    coordinates: list[float]  # [longitude, latitude]


class KioskFeatureProperties(_Out):
    device_id: str
    site_id: str
    site_name: str
    site_type: SiteType
    region: str
    state: KioskState
    health: Health
    open_alerts: int


class KioskFeature(_Out):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: PointGeometry
    properties: KioskFeatureProperties


class FeatureCollection(_Out):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[KioskFeature]


class HealthStatus(_Out):
    status: Literal["ok"]
    database: Literal["sqlite", "postgresql"]
    evaluator: bool  # this process is the alert evaluator


class CredentialRevoke(_In):
    credential_id: Ident
    note: Annotated[str, StringConstraints(max_length=500)] = ""
