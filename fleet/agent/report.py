"""Builds the wire `Heartbeat` from what the app's /health said (or did not say) and what
the agent measured itself. Each part is checked against the wire model on its own, so one
malformed device entry is left out (and logged) instead of losing the whole heartbeat.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from fleet import wire

_log = logging.getLogger(__name__)

_SHORT = 500
_INFO = 100


def _device(raw: Any) -> wire.DeviceReport | None:
    if not isinstance(raw, dict):
        return None
    data = dict(raw)
    info = data.get("info")
    if isinstance(info, dict):  # free text from devices: cut to the wire's bounds
        data["info"] = {k: v[:_INFO] for k, v in info.items() if isinstance(v, str)}
    error = data.get("last_error")
    if isinstance(error, dict):
        error = dict(error)
        if isinstance(error.get("vendor_text"), str):
            error["vendor_text"] = error["vendor_text"][:_SHORT]
        if isinstance(error.get("code"), str):
            error["code"] = error["code"][:100]
        data["last_error"] = error
    try:
        return wire.DeviceReport.model_validate(data)
    except ValidationError as exc:
        _log.warning(
            "device %r left out of the heartbeat: %s", data.get("name"), exc.errors()[0]["msg"]
        )
        return None


def _part(model: type, raw: Any, default: Any) -> Any:
    if not isinstance(raw, dict):
        return default
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        _log.warning("app %s not reported: %s", model.__name__, exc.errors()[0]["msg"])
        return default


def build_heartbeat(
    *,
    seq: int,
    kind: str,
    sent_at: float,
    interval_s: float,
    snapshot: dict[str, Any] | None,
    down_since: float | None,
    counters: dict[str, Any] | None,
    usage: list[dict[str, Any]],
    disk: dict[str, Any] | None,
    system_uptime_s: float,
    clock_synced: bool | None,
    summary: dict[str, Any] | None = None,
    last_versions: dict[str, Any] | None = None,
    app_version: str = "",
    starting: bool = False,
) -> wire.Heartbeat:
    """`snapshot` None = the app is down (down since `down_since`), or still `starting`."""
    if snapshot is None:
        if starting:
            app = wire.App(state="starting")
        else:
            app = wire.App(state="down", down_since=down_since)
        devices: list[wire.DeviceReport] = []
        versions_raw = last_versions
        cabinet = wire.Cabinet()
        events: list[wire.KioskEvent] = []
    else:
        raw_app = snapshot.get("app") if isinstance(snapshot.get("app"), dict) else {}
        app_fields = {
            k: raw_app[k]
            for k in ("state", "screen", "out_of_service_reason", "uptime_s", "outbox_pending")
            if k in raw_app
        }
        if isinstance(app_fields.get("out_of_service_reason"), str):
            app_fields["out_of_service_reason"] = app_fields["out_of_service_reason"][:_SHORT]
        app_fields.setdefault("state", "running")
        app = _part(wire.App, app_fields, wire.App(state="running"))
        raw_devices = snapshot.get("devices") if isinstance(snapshot.get("devices"), list) else []
        devices = [d for d in map(_device, raw_devices) if d is not None][:32]
        versions_raw = snapshot.get("versions")
        cabinet = _part(wire.Cabinet, snapshot.get("cabinet"), wire.Cabinet())
        raw_events = snapshot.get("events") if isinstance(snapshot.get("events"), list) else []
        events = [e for e in (_part(wire.KioskEvent, r, None) for r in raw_events[:50]) if e is not None]
    fallback_versions = wire.Versions(app=app_version or "unknown")
    versions = _part(wire.Versions, versions_raw, fallback_versions)
    return wire.Heartbeat(
        kind=kind,
        seq=seq,
        sent_at=sent_at,
        interval_s=min(3600, max(5, round(interval_s))),
        app=app,
        devices=devices,
        counters=_part(wire.Counters, counters, wire.Counters()),
        usage=[wire.ItemUsage.model_validate(u) for u in usage],
        versions=versions,
        disk=_part(wire.Disk, disk, None),
        cabinet=cabinet,
        system_uptime_s=system_uptime_s,
        clock_synced=clock_synced,
        summary=None if summary is None else wire.OfflineSummary.model_validate(summary),
        events=events,
    )
