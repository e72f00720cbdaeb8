"""Signed catalogue and config bundles arriving through the fleet command channel.

The fleet server sends `apply_bundle {kind, bundle}`; the agent forwards it to the app's
health socket; here the bundle is verified and installed by `provisioning.bundles.BundleStore`
(signature by the fleet's bundle key from the kiosk's enrolment, payload digest, version
strictly above the installed one, atomic write keeping the last good bundle). Only then is it
used: a catalogue at once (which items this kiosk offers), a config at the next start (the
config shapes devices and the platform client; `restart_app` applies it).

A catalogue bundle's payload is JSON: {"version": int, "issued_at": unix seconds,
"entries": [{"item_id", "item_code", "version", "enabled"}]} — the platform's catalogue,
re-signed by the fleet for this channel.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.platform.api import CatalogueEntry


class BundleRefused(Exception):
    """The bundle was not installed; `code` says why (provisioning.bundles codes, or
    `not_enrolled` / `bad_catalogue`)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code


@dataclass(frozen=True)
class BundleCatalogue:
    """A catalogue from a bundle, shaped like `SignedCatalogue` where the kiosk reads it."""

    version: int
    issued_at: float
    entries: tuple[CatalogueEntry, ...]


def parse_catalogue(payload: bytes) -> BundleCatalogue:
    try:
        data = json.loads(payload)
        entries = tuple(
            CatalogueEntry(
                item_id=str(e["item_id"]), item_code=str(e["item_code"]),
                version=str(e.get("version", "")), enabled=bool(e.get("enabled", True)),
            )
            for e in data["entries"]
        )
        issued_at = float(data["issued_at"])
        if not math.isfinite(issued_at):
            raise ValueError("issued_at is not a finite time")
        return BundleCatalogue(int(data["version"]), issued_at, entries)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise BundleRefused("bad_catalogue", f"catalogue payload: {type(exc).__name__}") from None


def catalogue_payload(version: int, issued_at: float, entries: list[dict[str, Any]]) -> bytes:
    """The payload ops sign into a catalogue bundle (`kiosk provision bundle-sign`)."""
    return json.dumps(
        {"version": version, "issued_at": issued_at, "entries": entries},
        ensure_ascii=False, sort_keys=True,
    ).encode()


class KioskBundles:
    """The app's bundle store: `<data_dir>/bundles`, trusting the enrolment's bundle key."""

    def __init__(self, directory: Path, state_dir: Path, trusted_keys: list | None = None) -> None:
        self.directory = Path(directory)
        self.state_dir = Path(state_dir)
        self._trusted = trusted_keys

    def _store(self):
        from provisioning.bundles import BundleStore

        keys = self._trusted
        if keys is None:
            from provisioning.device import EnrolmentRecord

            try:
                key = EnrolmentRecord.load(self.state_dir).bundle_signing_key()
            except Exception as exc:  # noqa: BLE001 - not enrolled: nothing to trust
                raise BundleRefused("not_enrolled", f"no enrolment to trust bundles from ({exc})") from None
            if key is None:
                raise BundleRefused("not_enrolled", "the enrolment carries no bundle signing key")
            keys = [key]
        return BundleStore(self.directory, keys)

    def apply(self, kind: str, bundle: dict[str, Any]) -> tuple[int, BundleCatalogue | None]:
        """Verify and install; the catalogue to use now (for a catalogue bundle)."""
        from provisioning.bundles import BundleError

        if bundle.get("kind") != kind:
            raise BundleRefused("wrong_kind", f"command says {kind}, bundle says {bundle.get('kind')!r}")
        store = self._store()
        if kind == "catalogue":
            # Check the payload before installing: a signed but unusable catalogue must not
            # replace the last good one.
            from provisioning.bundles import verify_bundle

            try:
                checked, _fields = verify_bundle(bundle, store.trusted_keys, kind=kind)
            except BundleError as exc:
                raise BundleRefused(exc.code, exc.detail) from None
            parse_catalogue(checked.payload)
        try:
            installed = store.apply(bundle)
        except BundleError as exc:
            raise BundleRefused(exc.code, exc.detail) from None
        catalogue = parse_catalogue(installed.payload) if kind == "catalogue" else None
        return installed.version, catalogue

    def installed_catalogue(self) -> BundleCatalogue | None:
        """The catalogue installed by an earlier bundle (used at start-up), if any."""
        try:
            installed = self._store().installed("catalogue")
        except BundleRefused:
            return None
        return parse_catalogue(installed.payload) if installed is not None else None
