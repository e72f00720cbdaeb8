"""Every fuzz target, one module per family of parsers of outside bytes.

Targets for code that other engineers were writing alongside (signed bundles, signed
headers, maintenance credentials, the fleet server's request bodies) are listed in `_OPTIONAL` with the product file they need:
they join the run once that file exists, and are simply absent before (never skipped).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tests.fuzz.engine import Target

_ROOT = Path(__file__).resolve().parents[3]
_MODULES = ("idcard", "ssc", "qr", "printers", "items", "platform", "fleet")
# target module → product file it fuzzes
_OPTIONAL: dict[str, str] = {
    "signing": "provisioning/signing.py",
    "bundles": "provisioning/bundles.py",
    "credentials": "provisioning/credentials.py",
    "fleet_server": "fleet/server/routes.py",
}


def all_targets() -> list[Target]:
    names = list(_MODULES) + [m for m, needs in _OPTIONAL.items() if (_ROOT / needs).is_file()]
    targets: list[Target] = []
    for name in names:
        targets += importlib.import_module(f"tests.fuzz.targets.{name}").TARGETS
    return targets


def by_name(name: str) -> Target:
    for target in all_targets():
        if target.name == name:
            return target
    raise KeyError(name)
