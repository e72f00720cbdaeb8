"""What the running app does for ops: the actions behind the local health endpoint
(kiosk/health.py) that the fleet agent forwards remote commands to, and the maintenance
gate that opens the maintenance screen.

Out of service from ops waits for a citizen mid-journey to finish (the session machine's
rule); a screenshot is the window as drawn now. The gate comes from the kiosk's enrolment
(provisioning/credentials.py); a kiosk that is not enrolled has none, and the maintenance
login says so instead of opening.
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path
from typing import Any

from kiosk.conductor import Page

_log = logging.getLogger(__name__)

# Conductor pages as the fleet's wire `ScreenState` (never which citizen or what they chose).
_SCREEN_STATE = {
    Page.ATTRACT: "attract",
    Page.OUT_OF_SERVICE: "out_of_service",
    Page.MAINTENANCE: "maintenance",
    Page.MAINTENANCE_LOGIN: "maintenance",
}


class AppActions:
    """`kiosk.health.KioskActions` for the Kivy app."""

    def __init__(self, app) -> None:
        self.app = app

    def screen_state(self) -> str:
        conductor = self.app.conductor
        if conductor is None:
            return "unknown"
        return _SCREEN_STATE.get(conductor.page, "in_session")

    def events(self) -> list[dict]:
        """Maintenance sign-ins since the last snapshot (no PIN, no credential text)."""
        conductor = self.app.conductor
        gate = getattr(conductor, "gate", None) if conductor is not None else None
        drain = getattr(gate, "drain_events", None)
        return drain()[-50:] if drain is not None else []

    def set_out_of_service(self, reason: str) -> None:
        self.app.machine.take_out_of_service(reason or "remote")

    def set_in_service(self) -> None:
        self.app.machine.return_to_service()

    async def reload_catalogue(self) -> None:
        conductor = self.app.conductor
        if conductor is None:
            raise RuntimeError("services are not up")
        catalogue = await conductor.services.platform.catalogue()
        source = getattr(self.app, "health_source", None)
        if source is not None:
            source.catalogue_loaded(catalogue)
        conductor.refresh_offers()

    async def reload_config(self) -> None:
        # The config shapes devices and the platform client: a restart applies it safely.
        raise RuntimeError("config changes apply on restart: send restart_app")

    async def apply_bundle(self, kind: str, bundle: dict) -> str:
        """A signed catalogue or config bundle from the fleet (kiosk/bundles.py)."""
        version, catalogue = await asyncio.to_thread(self.app.bundles().apply, kind, bundle)
        if catalogue is not None and self.app.conductor is not None:
            self.app.conductor.catalogue = catalogue
            self.app.conductor.refresh_offers()
            source = getattr(self.app, "health_source", None)
            if source is not None:
                source.catalogue_loaded(catalogue)
        _log.info("bundle installed: %s v%d", kind, version)
        return str(version)

    async def screenshot(self) -> bytes:
        from screens.pilot import grab_window

        image = grab_window()
        buffer = io.BytesIO()
        await asyncio.to_thread(image.save, buffer, "PNG")
        return buffer.getvalue()


def maintenance_gate(state_dir: Path) -> Any:
    """The enrolled kiosk's credential check, or None (not enrolled, or no key)."""
    try:
        from provisioning.credentials import MaintenanceGate

        return MaintenanceGate.from_enrolment(state_dir, revoked_path=state_dir / "revoked_credentials.json")
    except Exception as exc:  # noqa: BLE001 - not enrolled is normal on a laptop
        _log.info("maintenance gate not available: %s", exc)
        return None
