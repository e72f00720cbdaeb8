"""200 visits in one running kiosk app (a process of its own, as on a kiosk: a forked test
would inherit pytest's memory and count its copy-on-write pages as growth). Run by
tests/screens/test_endurance.py; `python -m tests.screens.endurance --visits N` prints JSON.

Each visit is real end to end — the citizen's 苏服码 goes through the simulated scanner (pty)
and is verified by the sandbox platform over HTTP, the page for every step is built and drawn,
the platform is queried — but the steps are the conductor's verbs, not touches, so 200
visits fit in CI's time (touch-driven journeys are in test_journeys_ui.py). Memory is the
process's resident set after a warm-up and after the 200 visits. The search for the last
citizen walks every object reachable from the app (gc referents) except the simulated world
(the sandbox platform and the hardware simulators, which stand for things outside the kiosk).
"""

from __future__ import annotations

import asyncio
import gc
import os

from kiosk.platform.sandbox.seed import CITIZENS

DEVICES = {"qr", "id_card", "receipt_printer", "a4_printer"}
WARM_UP = 20
ITEM = "ssc_payment_records"  # a query: identify, one field, platform call


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def settle_memory() -> float:
    import ctypes

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    return rss_mb()


def reachable_strings(roots, skip_types):
    """Every str reachable from `roots` through gc referents, not entering `skip_types`,
    classes, modules or module namespaces (the code and its constants, such as the sandbox's
    seed citizens, are not data the app holds)."""
    import sys
    import types

    module_dicts = {id(m.__dict__) for m in list(sys.modules.values()) if m is not None}
    seen, stack, found = set(), list(roots), []
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.append(obj)
            continue
        if isinstance(obj, (type, types.ModuleType, types.CodeType, *skip_types)) or id(obj) in module_dicts:
            continue
        stack.extend(gc.get_referents(obj))
    return found


def run(visits: int, data_dir: str) -> dict:
    figures: dict = {}

    async def script(pilot):
        from drivers.sim.escpos_printer import EscposPrinterEmulator
        from drivers.sim.ippeve import IppEvePrinter
        from drivers.sim.sam import SamSimulator, SimCard
        from drivers.sim.serial_scanner import SerialScannerSimulator
        from kiosk.platform.sandbox.embedded import EmbeddedSandbox
        from kiosk.simulation import fresh_code
        from screens import journeys

        app = pilot.app
        conductor = app.conductor
        scanner = app.services.devices.devices["qr"].simulator
        citizens = [c for c in CITIZENS if c.citizen_id in ("c01", "c02", "c04", "c05")]

        done = []

        async def visit(citizen) -> None:
            # The citizen shows a fresh 苏服码 (the ID card's slower read is covered by the
            # journeys in test_journeys_ui.py); it is verified for the item when chosen.
            scanner.scan(await fresh_code(app.services, citizen.citizen_id))
            await pilot.wait_for(lambda: conductor.page.value == "catalogue", timeout=30,
                                 what=f"catalogue for {citizen.citizen_id} (page {conductor.page}, "
                                      f"notice {conductor.notice}, visits {len(done)})")
            await conductor.choose(ITEM)
            assert conductor.page.value == "guide", conductor.problem
            conductor.start_item()
            value = conductor.field_options()[0][0] if conductor.field_options() else None
            item_field = conductor.current_field
            conductor.set_answer(item_field.id, value if value is not None else _year())
            conductor.next_field()
            conductor.confirm()
            await pilot.wait_for(lambda: conductor.page.value in ("result", "problem"), timeout=30, what="result")
            assert conductor.page.value == "result", conductor.problem
            conductor.done()
            await conductor.rate("satisfied")
            await pilot.wait_for(lambda: app.page == "attract", timeout=30, what="attract")
            done.append(citizen.citizen_id)

        def _year():
            import datetime as dt

            return dt.date.today().year

        import time

        for i in range(WARM_UP):
            await visit(citizens[i % len(citizens)])
        before = settle_memory()
        last = None
        for i in range(visits):
            last = citizens[i % len(citizens)]
            await visit(last)
        after = settle_memory()
        figures.update(rss_before_mb=round(before, 1), rss_after_mb=round(after, 1), visits=visits)

        # Nothing the app can reach still holds the last citizen's name or ID number.
        await journeys.wait_page(pilot, "attract")
        skip = (EmbeddedSandbox, SamSimulator, SerialScannerSimulator, EscposPrinterEmulator, IppEvePrinter, SimCard)
        strings = reachable_strings([app, app.runtime, app.services, conductor], skip)
        secrets = (last.name, last.id_number, last.id_number.lower())
        figures.update(
            strings_searched=len(strings),
            hits=[s[:80] for s in strings if any(secret in s for secret in secrets)][:5],
            # Control: the walk finds a citizen's name when the app does hold one.
            control=bool(reachable_strings([{"planted": [last.name]}], skip)),
        )

    from kiosk.config import KioskConfig, PathsSection
    from kiosk.runtime import build
    from screens.run import prepare, run_async

    config = KioskConfig().model_copy(update={"paths": PathsSection(data_dir=data_dir)})
    runtime = build(config, log=False)
    prepare(runtime, headless=True)
    asyncio.run(run_async(runtime, script, services_devices=DEVICES))
    return figures


def main() -> None:
    import argparse
    import json
    import tempfile

    parser = argparse.ArgumentParser(description="visits in one kiosk app; prints JSON")
    parser.add_argument("--visits", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="endurance-") as tmp:
        print(json.dumps(run(args.visits, tmp)), flush=True)


if __name__ == "__main__":
    main()
