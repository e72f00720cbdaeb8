"""The fleet wire schema: what a kiosk's agent and the fleet server say to each other.

This module is the only thing the fleet server shares with the kiosk side (DESIGN §2), so it
imports nothing from kiosk/, drivers/ or screens/: the enums below repeat the device status
model's values as plain strings (drivers/base.py is the source; a test keeps them in step).

Nothing here carries personal data: no names, ID numbers, phone numbers or 苏服码 strings.
Usage and ratings are counts per item; the heartbeat's free-text fields (vendor text, command
details) come from devices and the runtime, which never put citizen data in them.

Versioning: `WIRE_VERSION` goes up on an incompatible change; the server accepts the versions
it lists and answers 400 `wire_version` otherwise. Adding an optional field is compatible.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import math

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

WIRE_VERSION = 1
HEARTBEAT_INTERVAL_S = 30
MAX_HEARTBEAT_BYTES = 256 * 1024
MAX_COMMAND_RESULT_BYTES = 4 * 1024 * 1024  # a screenshot (PNG, base64) fits

Ident = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
ShortText = Annotated[str, StringConstraints(max_length=500)]

DeviceClass = Literal["id_card_reader", "ssc_reader", "qr_scanner", "receipt_printer", "a4_printer"]
DeviceState = Literal[
    "online", "offline", "power_off", "no_device", "hardware_error", "user_error", "busy",
    "fraud_attempt",
]
Lifecycle = Literal["closed", "open", "claimed", "enabled"]
SupplyLevel = Literal["unknown", "full", "low", "out", "jammed"]
ErrorKind = Literal["hardware", "software", "user", "fraud"]
OperatorAction = Literal["none", "reset", "clear", "maintenance", "configuration", "suspend"]
RatingLevel = Literal["very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"]
AppState = Literal["running", "starting", "down"]
# What the kiosk screen is doing; never which citizen or which answers.
ScreenState = Literal["attract", "in_session", "out_of_service", "maintenance", "unknown"]
CommandName = Literal[
    "out_of_service",  # args: {"reason": str}  (shown to citizens and branch staff)
    "in_service",
    "reload_catalogue",
    "reload_config",
    "restart_app",
    "screenshot",  # result data: {"png_base64": str, "width": int, "height": int}
    "selftest",  # result data: {"devices": [SelfTest...]} as `kiosk devices selftest` prints
    "apply_bundle",  # args: {"kind": "catalogue"|"config", "bundle": <signed bundle JSON>}
]


def _finite(value: Any, depth: int = 0) -> Any:
    """Free-form JSON (command args, result data) holds no NaN or ±Infinity: stored, they
    come back as null and the record no longer parses."""
    if depth > 32:
        raise ValueError("nested too deeply")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    if isinstance(value, dict):
        for item in value.values():
            _finite(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _finite(item, depth + 1)
    return value


FreeJson = Annotated[dict[str, Any], AfterValidator(_finite)]


class _Model(BaseModel):
    # Unknown fields are refused: a typo on either side fails loudly instead of being dropped.
    # No NaN or ±Infinity anywhere: JSON has no such numbers and storage would turn them null.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DeviceError(_Model):
    kind: ErrorKind
    action: OperatorAction
    code: Annotated[str, StringConstraints(max_length=100)]
    vendor_text: ShortText = ""
    at: float  # Unix time on the kiosk's clock


class DeviceReport(_Model):
    """One device, as `DeviceStatus.to_json()` gives it."""

    name: Ident
    device_class: DeviceClass
    lifecycle: Lifecycle
    state: DeviceState
    supplies: dict[Ident, SupplyLevel] = Field(default_factory=dict, max_length=16)
    last_error: DeviceError | None = None
    info: dict[Ident, Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=dict, max_length=16
    )


class Counters(_Model):
    """Totals since the kiosk was installed (they never go down; the server takes deltas)."""

    journeys_started: int = Field(0, ge=0)
    journeys_completed: int = Field(0, ge=0)
    journeys_abandoned: int = Field(0, ge=0)
    journeys_failed: int = Field(0, ge=0)
    receipts_printed: int = Field(0, ge=0)
    a4_pages_printed: int = Field(0, ge=0)
    submissions_queued: int = Field(0, ge=0)


class ItemUsage(_Model):
    """One item's usage since the previous heartbeat (a delta; the server sums them)."""

    item_id: Ident
    completed: int = Field(0, ge=0)
    abandoned: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    ratings: dict[RatingLevel, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)


class Versions(_Model):
    app: Annotated[str, StringConstraints(max_length=64)]
    catalogue: Annotated[str, StringConstraints(max_length=64)] = ""
    catalogue_published_at: datetime | None = None
    config: Annotated[str, StringConstraints(max_length=64)] = ""  # hash or bundle version


class Disk(_Model):
    path: Annotated[str, StringConstraints(max_length=200)]
    total_bytes: int = Field(ge=0)
    free_bytes: int = Field(ge=0)


class Cabinet(_Model):
    """Door and tamper switches, where the kiosk has them (None: no sensor)."""

    door_open: bool | None = None
    tamper: bool | None = None


class App(_Model):
    state: AppState
    screen: ScreenState = "unknown"
    out_of_service_reason: ShortText = ""
    uptime_s: float = Field(0, ge=0)
    outbox_pending: int = Field(0, ge=0)
    down_since: float | None = None  # Unix time the agent first saw the app down


class OfflineSummary(_Model):
    """Sent once when the agent reaches the server again after buffering."""

    since: float  # Unix time of the first heartbeat that could not be sent
    heartbeats_buffered: int = Field(ge=0)
    heartbeats_dropped: int = Field(0, ge=0)  # past the buffer's bound
    app_down_s: float = Field(0, ge=0)
    worst_device_states: dict[Ident, DeviceState] = Field(default_factory=dict, max_length=32)


class KioskEvent(_Model):
    """Something on the kiosk ops must see, reported once: a maintenance sign-in (refused
    ones with their reason). Never a PIN or a credential's text."""

    event: Literal["maintenance_login"]
    at: float
    ok: bool
    reason: Annotated[str, StringConstraints(max_length=32)] | None = None
    cred_id: Ident | None = None


class Heartbeat(_Model):
    wire_version: Literal[1] = WIRE_VERSION
    kind: Literal["heartbeat", "summary", "going_offline"] = "heartbeat"
    seq: int = Field(ge=0)  # the agent's heartbeat number; the server ignores repeats
    sent_at: float  # Unix time on the kiosk's clock (the server measures skew from it)
    interval_s: int = Field(HEARTBEAT_INTERVAL_S, ge=5, le=3600)
    app: App
    devices: list[DeviceReport] = Field(default_factory=list, max_length=32)
    counters: Counters = Counters()
    usage: list[ItemUsage] = Field(default_factory=list, max_length=200)
    versions: Versions
    disk: Disk | None = None
    cabinet: Cabinet = Cabinet()
    system_uptime_s: float = Field(0, ge=0)
    clock_synced: bool | None = None  # NTP says synchronised (None: unknown)
    summary: OfflineSummary | None = None  # kind == "summary" only
    events: list[KioskEvent] = Field(default_factory=list, max_length=50)


class Command(_Model):
    id: Ident
    name: CommandName
    args: FreeJson = Field(default_factory=dict)
    issued_at: float
    expires_at: float


class HeartbeatAck(_Model):
    server_time: float
    interval_s: int
    commands: list[Command] = Field(default_factory=list)
    # Revoked maintenance credentials (ids), so a kiosk refuses them offline (hardening issue).
    revoked_credentials: list[Ident] = Field(default_factory=list)


class CommandResult(_Model):
    command_id: Ident
    status: Literal["done", "failed", "rejected", "expired"]
    detail: ShortText = ""
    data: FreeJson = Field(default_factory=dict)
    finished_at: float


class Site(_Model):
    site_id: Ident
    site_type: Literal["bank", "post", "telecom", "hall"]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    address: Annotated[str, StringConstraints(max_length=300)] = ""
    region: Annotated[str, StringConstraints(pattern=r"^\d{6}$")]  # GB/T 2260 code, e.g. 320200
    longitude: float = Field(ge=-180, le=180)
    latitude: float = Field(ge=-90, le=90)


class EnrolRequest(_Model):
    token: Annotated[str, StringConstraints(min_length=16, max_length=200)]
    csr_pem: Annotated[str, StringConstraints(max_length=8000)]
    app_version: Annotated[str, StringConstraints(max_length=64)] = ""


class EnrolResponse(_Model):
    device_id: Ident
    certificate_pem: str
    ca_certificate_pem: str
    site: Site
    heartbeat_interval_s: int
    bundle_signing_key_pem: str = ""  # public key that signs catalogue/config bundles
    credential_key_pem: str = ""  # public key that signs ops maintenance credentials


# Device sessions (provisioning/sessions.py): an X25519 public key, 32 bytes, base64url
# without padding; a ticket is opaque to the kiosk.
KexPublic = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")]
SessionTicket = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{40,250}$")]


class DeviceSessionRequest(_Model):
    """`POST /api/v1/device/session` (a signed request): the kiosk's ephemeral key."""

    wire_version: Literal[1] = WIRE_VERSION
    kex_public: KexPublic


class DeviceSessionResponse(_Model):
    """The session: a ticket for the `Kiosk-Session` header, the server's ephemeral key
    (both sides derive the session key from the two), and when it ends (server clock)."""

    session: SessionTicket
    kex_public: KexPublic
    expires_at: int = Field(ge=0)


class ApiError(_Model):
    """Every 4xx/5xx body: a stable code for programs, a sentence for people."""

    error: Annotated[str, StringConstraints(max_length=64)]
    detail: ShortText = ""
