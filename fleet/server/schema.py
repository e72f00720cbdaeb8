"""The fleet server's tables (SQLAlchemy Core), the same for SQLite and PostgreSQL.

Times are Unix seconds (double precision) everywhere: one clock type across both databases,
cheap comparisons in the hot path, and no time-zone surprises. JSON documents are stored as
text (the server writes and reads them; the database never looks inside), which keeps the
SQL identical on both engines.

The `devices` row is the hot row: every heartbeat updates it once (counter check, last seen,
summary columns) in a group-committed batch. Everything the dashboard lists comes from it and
`sites` without touching the history tables. Columns written by the heartbeat path:
`last_counter`, `last_seen`, `late_after`, `offline_after`, the summary columns, `conditions`
(the alert conditions the last heartbeat showed) and `alert_dirty` (the evaluator has not yet
reconciled alerts with those conditions).

The dashboard (fleet/server/dashboard) reads these tables through fleet/server/queries.py.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Time = sa.Double  # Unix seconds

# Kiosk (device) states, as the server sees them.
STATE_NEW = "new"  # enrolled, no heartbeat yet
STATE_ONLINE = "online"
STATE_LATE = "late"  # no heartbeat for 1.5 intervals
STATE_OFFLINE = "offline"  # no heartbeat for 3 intervals, or said "going offline"
KIOSK_STATES = (STATE_NEW, STATE_ONLINE, STATE_LATE, STATE_OFFLINE)

ROLES = ("viewer", "operator", "admin")
SITE_TYPES = ("bank", "post", "telecom", "hall")

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("site_type", sa.String(16), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(300), nullable=False, server_default=""),
    sa.Column("region", sa.String(6), nullable=False),  # GB/T 2260, e.g. 320205
    sa.Column("longitude", sa.Double, nullable=False),
    sa.Column("latitude", sa.Double, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index(None, "region"),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("certificate_pem", sa.Text, nullable=False),
    sa.Column("public_key_pem", sa.Text, nullable=False),
    sa.Column("enrolled_at", Time, nullable=False),
    # Replay protection: a signed request's counter must exceed this (checked in the UPDATE).
    sa.Column("last_counter", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("revoked_at", Time),
    sa.Column("revoked_by", sa.String(64)),
    # State machine: new → online → late → offline (see fleet/server/states.py).
    sa.Column("state", sa.String(16), nullable=False, server_default=STATE_NEW),
    # Scratch columns the heartbeat UPDATE fills with the values it replaces (SET x = old
    # value is evaluated before the row changes), so the batch can read "before" and "after"
    # back by `batch_token` without a second, racy read.
    sa.Column("batch_token", sa.BigInteger),
    sa.Column("prev_state", sa.String(16)),
    sa.Column("prev_last_seq", sa.BigInteger),
    sa.Column("prev_devices_digest", sa.String(32)),
    sa.Column("state_since", Time),
    sa.Column("offline_expected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("last_seen", Time),
    sa.Column("late_after", Time),
    sa.Column("offline_after", Time),
    sa.Column("interval_s", sa.Integer, nullable=False, server_default="30"),
    # Summary of the last heartbeat, for lists and filters.
    sa.Column("last_seq", sa.BigInteger),
    sa.Column("last_sent_at", Time),
    sa.Column("clock_skew_s", sa.Double),
    sa.Column("clock_synced", sa.Boolean),
    sa.Column("app_state", sa.String(16)),
    sa.Column("screen", sa.String(16)),
    sa.Column("app_version", sa.String(64)),
    sa.Column("catalogue_version", sa.String(64)),
    sa.Column("catalogue_published_at", Time),
    sa.Column("config_version", sa.String(64)),
    sa.Column("disk_free_bytes", sa.BigInteger),
    sa.Column("disk_total_bytes", sa.BigInteger),
    sa.Column("door_open", sa.Boolean),
    sa.Column("tamper", sa.Boolean),
    # The worst condition: ok | info | warning | critical
    sa.Column("health", sa.String(16), nullable=False, server_default="ok"),
    sa.Column("last_heartbeat", sa.Text),  # the last heartbeat as received (JSON)
    sa.Column("devices_digest", sa.String(32)),  # of the device reports; skips unchanged upserts
    # Alert conditions the last heartbeat showed (JSON list; fleet/server/rules.py).
    sa.Column("conditions", sa.Text, nullable=False, server_default="[]"),
    sa.Column("conditions_digest", sa.String(32)),
    sa.Column("cond_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alert_dirty", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("pending_commands", sa.Integer, nullable=False, server_default="0"),
    sa.Index(None, "site_id"),
    sa.Index(None, "state"),
    sa.Index(
        "ix_devices_alert_dirty",
        "alert_dirty",
        sqlite_where=sa.text("alert_dirty"),
        postgresql_where=sa.text("alert_dirty"),
    ),
)

enrolment_tokens = sa.Table(
    "enrolment_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 hex; never the token
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
    sa.Column("expires_at", Time, nullable=False),
    sa.Column("used_at", Time),
    sa.Column("device_id", sa.String(64)),
)

# Heartbeat history: one compact row per heartbeat, pruned by age (Settings.heartbeat_retention_s).
heartbeats = sa.Table(
    "heartbeats",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("received_at", Time, nullable=False),
    sa.Column("sent_at", Time, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("app_state", sa.String(16), nullable=False),
    sa.Column("screen", sa.String(16), nullable=False),
    sa.Column("health", sa.String(16), nullable=False),
    sa.Column("journeys_completed", sa.BigInteger, nullable=False),
    sa.Column("summary", sa.Text),  # the OfflineSummary (JSON) when kind == "summary"
    sa.Index(None, "device_id", "received_at"),
    sa.Index(None, "received_at"),
)

# The latest report of each device (printer, reader...) of each kiosk.
device_status = sa.Table(
    "device_status",
    metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("device_class", sa.String(32), nullable=False),
    sa.Column("lifecycle", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("supplies", sa.Text, nullable=False, server_default="{}"),  # JSON name → level
    sa.Column("error_kind", sa.String(16)),
    sa.Column("error_action", sa.String(16)),
    sa.Column("error_code", sa.String(100)),
    sa.Column("error_text", sa.String(500)),
    sa.Column("error_at", Time),
    sa.Column("info", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("updated_at", Time, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("device_id", sa.String(64)),
    sa.Column("at", Time, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Index(None, "device_id", "at"),
    sa.Index(None, "at"),
)

# Alerts: one open alert per (device, rule, subject) — the partial unique index enforces it
# even if two evaluators ever raced.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("dedupe_key", sa.String(200), nullable=False),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("rule", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(64), nullable=False, server_default=""),
    sa.Column("severity", sa.String(16), nullable=False),  # info | warning | critical
    sa.Column("actor", sa.String(16), nullable=False),  # branch_staff | engineer | ops
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("first_seen", Time, nullable=False),
    sa.Column("last_seen", Time, nullable=False),
    sa.Column("resolved_at", Time),
    sa.Column("acked_by", sa.String(64)),
    sa.Column("acked_at", Time),
    sa.Index(
        "uq_alerts_open_dedupe_key",
        "dedupe_key",
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    ),
    sa.Index(None, "device_id", "resolved_at"),
    sa.Index(None, "resolved_at", "severity"),
)

commands = sa.Table(
    "commands",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("args", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("issued_by", sa.String(64), nullable=False),
    sa.Column("issued_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    # pending → delivered → done | failed | rejected | expired
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("delivered_at", Time),
    sa.Column("finished_at", Time),  # on the kiosk's clock, as reported
    sa.Column("result_received_at", Time),
    sa.Column("detail", sa.String(500), nullable=False, server_default=""),
    sa.Column("data", sa.Text),  # JSON result data (a screenshot can be a few MB)
    sa.Index(None, "device_id", "status"),
)

# Usage and ratings per item, site and (kiosk-local) day; region is copied from the site so
# per-region sums need no join.
RATING_LEVELS = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
usage_daily = sa.Table(
    "usage_daily",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # YYYY-MM-DD (server's UTC+8 day)
    sa.Column("site_id", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(64), primary_key=True),
    sa.Column("region", sa.String(6), nullable=False),
    sa.Column("completed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("abandoned", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("failed", sa.BigInteger, nullable=False, server_default="0"),
    *(sa.Column(f"rating_{level}", sa.BigInteger, nullable=False, server_default="0")
      for level in RATING_LEVELS),
    sa.Index(None, "region", "day"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),  # argon2id
    sa.Column("role", sa.String(16), nullable=False),  # viewer | operator | admin
    sa.Column("regions", sa.String(500), nullable=False, server_default=""),  # space-separated
    sa.Column("created_at", Time, nullable=False),
    sa.Column("disabled_at", Time),
)

# Bearer tokens (API) and cookie sessions (dashboard): only the sha256 of the secret is kept.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # bearer | session
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    sa.Index(None, "user_id"),
)

# Maintenance credentials ops have revoked; every heartbeat ack lists them (wire
# HeartbeatAck.revoked_credentials) so a kiosk refuses them even while offline.
revoked_credentials = sa.Table(
    "revoked_credentials",
    metadata,
    sa.Column("credential_id", sa.String(64), primary_key=True),
    sa.Column("revoked_at", Time, nullable=False),
    sa.Column("revoked_by", sa.String(64), nullable=False),
    sa.Column("note", sa.String(500), nullable=False, server_default=""),
)

# Failed ops logins per user name (fleet/server/login_throttle.py): shared by every server
# process and host, so the limit holds behind a load balancer.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),  # as typed, also for unknown names
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("last_at", Time, nullable=False),  # the last failure (counts reset after a quiet window)
    sa.Column("locked_until", Time, nullable=False, server_default="0"),
)
