"""The items this kiosk knows: every folder under screens/items/, looked up by id or by
government item code, and filtered for one citizen at one moment.

The platform's catalogue decides which items a kiosk offers (同源发布); the registry adds
what only the kiosk knows: how the citizen identified themselves and which devices are up.
An item it does not offer carries the reasons, so the catalogue screen can say why
("A4打印机暂时无法使用") instead of silently dropping it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drivers.base import DeviceClass
from kiosk.identity.model import Identity, IdentitySource
from kiosk.items.loader import Item, ItemError, load_item
from kiosk.items.manifest import MANIFEST_FILE, LintProblem
from kiosk.platform.api import CatalogueEntry

_log = logging.getLogger(__name__)
ITEMS_ROOT = Path(__file__).resolve().parents[2] / "screens" / "items"


class HiddenBecause(enum.StrEnum):
    NOT_IN_CATALOGUE = "not_in_catalogue"
    DISABLED = "disabled"
    IDENTITY_REQUIRED = "identity_required"
    IDENTITY_SOURCE = "identity_source"
    ASSURANCE = "assurance"
    DEVICE = "device"


@dataclass(frozen=True)
class HiddenReason:
    reason: HiddenBecause
    device: DeviceClass | None = None

    @property
    def message_key(self) -> str:
        return f"items.hidden.{self.reason}"

    @property
    def params(self) -> dict[str, Any]:
        """Placeholders for the message; `device` is itself a key to translate first."""
        return {"device": f"items.device.{self.device}"} if self.device else {}


@dataclass(frozen=True)
class Offer:
    item: Item
    hidden: tuple[HiddenReason, ...] = ()

    @property
    def shown(self) -> bool:
        return not self.hidden


class UnknownItem(KeyError):
    """No item with that id or code on this kiosk."""


@dataclass
class ItemRegistry:
    items: dict[str, Item] = field(default_factory=dict)
    broken: dict[str, ItemError] = field(default_factory=dict)  # folder name → why left out

    @classmethod
    def load(cls, root: Path | str = ITEMS_ROOT) -> ItemRegistry:
        """Load every item folder under root. A broken folder is left out, logged with its
        first problem and kept in `broken`; it never stops the others."""
        registry = cls()
        root = Path(root)
        folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / MANIFEST_FILE).is_file())
        for folder in folders:
            try:
                registry.add(load_item(folder))
            except ItemError as exc:
                registry.broken[folder.name] = exc
                _log.error("item %s left out: %s", folder.name, exc.problems[0] if exc.problems else exc)
        return registry

    def add(self, item: Item) -> None:
        if item.id in self.items:
            raise ItemError(item.path, [_duplicate(item, "id", item.id)])
        for other in self.items.values():
            if other.item_code == item.item_code:
                raise ItemError(item.path, [_duplicate(item, "item_code", item.item_code, other.id)])
        self.items[item.id] = item

    # -- lookup ----------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Item]:
        return iter(sorted(self.items.values(), key=lambda i: (i.manifest.category, i.id)))

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.items

    def get(self, item_id: str) -> Item:
        try:
            return self.items[item_id]
        except KeyError:
            raise UnknownItem(item_id) from None

    def by_code(self, item_code: str) -> Item:
        for item in self.items.values():
            if item.item_code == item_code:
                return item
        raise UnknownItem(item_code)

    # -- what to offer -----------------------------------------------------------------------
    def offers(
        self,
        identity: Identity | None,
        devices_up: Collection[DeviceClass],
        catalogue: Iterable[CatalogueEntry] | None = None,
    ) -> list[Offer]:
        """Every item with the reasons it is hidden now (empty when shown). Without a
        catalogue (not fetched yet, or a development kiosk) every loaded item is a candidate."""
        entries: Mapping[str, CatalogueEntry] | None = None
        if catalogue is not None:
            entries = {entry.item_id: entry for entry in catalogue}
        return [Offer(item, tuple(self._hidden(item, identity, devices_up, entries))) for item in self]

    def available(
        self,
        identity: Identity | None,
        devices_up: Collection[DeviceClass],
        catalogue: Iterable[CatalogueEntry] | None = None,
    ) -> list[Item]:
        return [offer.item for offer in self.offers(identity, devices_up, catalogue) if offer.shown]

    @staticmethod
    def _hidden(
        item: Item,
        identity: Identity | None,
        devices_up: Collection[DeviceClass],
        entries: Mapping[str, CatalogueEntry] | None,
    ) -> Iterator[HiddenReason]:
        manifest = item.manifest
        if entries is not None:
            entry = entries.get(item.id)
            if entry is None or entry.item_code != item.item_code:
                yield HiddenReason(HiddenBecause.NOT_IN_CATALOGUE)
            elif not entry.enabled:
                yield HiddenReason(HiddenBecause.DISABLED)
        if identity is None:
            if manifest.identity.required:
                yield HiddenReason(HiddenBecause.IDENTITY_REQUIRED)
        elif IdentitySource(identity.source) not in manifest.identity.sources:
            yield HiddenReason(HiddenBecause.IDENTITY_SOURCE)
        elif identity.assurance < manifest.identity.assurance:
            yield HiddenReason(HiddenBecause.ASSURANCE)
        for device in manifest.devices:
            if device not in devices_up:
                yield HiddenReason(HiddenBecause.DEVICE, device)


def _duplicate(item: Item, key: str, value: str, other: str | None = None) -> LintProblem:
    clash = f" (also used by {other})" if other else ""
    return LintProblem(
        str(item.path / MANIFEST_FILE), 1, f"{key} '{value}' is already taken{clash}",
        f"give this item its own {key}",
    )
