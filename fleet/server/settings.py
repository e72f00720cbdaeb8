"""The fleet server's settings: one frozen dataclass, defaults that work on a laptop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleet.server.rules import DEFAULT_MAX_CATALOGUE_AGE_S, DEFAULT_MAX_CLOCK_SKEW_S, RuleSettings
from fleet.wire import HEARTBEAT_INTERVAL_S


@dataclass(frozen=True)
class ServerSettings:
    state_dir: Path
    db_url: str = ""  # default: sqlite+aiosqlite:///<state_dir>/fleet.db
    heartbeat_interval_s: int = HEARTBEAT_INTERVAL_S  # told to kiosks at enrolment and in acks
    max_clock_skew_s: float = DEFAULT_MAX_CLOCK_SKEW_S  # alert threshold
    max_catalogue_age_s: float = DEFAULT_MAX_CATALOGUE_AGE_S
    max_signature_skew_s: float = 300.0  # signed requests older/newer than this are refused
    evaluate_every_s: float = 1.0  # alert evaluator period (offline alert latency)
    heartbeat_retention_s: float = 6 * 3600.0  # history rows kept (the latest is on the kiosk)
    event_retention_s: float = 90 * 86400.0
    resolved_alert_retention_s: float = 90 * 86400.0
    session_ttl_s: float = 12 * 3600.0  # bearer tokens and dashboard sessions
    device_session_ttl_s: float = 3600.0  # a kiosk's session ticket (provisioning/sessions.py)
    command_ttl_s: float = 3600.0  # default; an issued command expires undelivered after this
    max_batch: int = 512  # heartbeats per group commit
    batch_window_s: float = 0.0  # extra wait before a flush; 0: flush as soon as the last ends
    run_evaluator: bool = True  # False: this process never evaluates alerts (tests drive it)
    bundle_signing_key_pem: str = ""  # given to kiosks at enrolment (catalogue/config bundles)
    # Set in the request processes of `serve --workers N` on SQLite: heartbeats go to the
    # writer process listening here (fleet/server/writer.py) instead of this process's own.
    ingest_socket: str = ""

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite+aiosqlite:///{self.state_dir}/fleet.db"

    @property
    def ca_dir(self) -> Path:
        return self.state_dir / "ca"

    @property
    def rules(self) -> RuleSettings:
        return RuleSettings(max_clock_skew_s=self.max_clock_skew_s,
                            max_catalogue_age_s=self.max_catalogue_age_s)
