"""The headless demo tour: plays the kiosk like visitors would and keeps a PNG of every
screen it visits, in both modes and both languages, then whole journeys through the touch UI
on the simulated hardware (normal and 长辈模式), each screen kept.

The tour taps real widgets through the Pilot. To show the idle countdown without waiting a
minute, the runtime's clock is an `OffsetClock` the tour moves forward.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.session import State

if TYPE_CHECKING:  # importing the pilot imports Kivy, which must wait for screens.boot
    from screens.pilot import Pilot


class OffsetClock:
    """Monotonic time plus an offset the demo can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def expect(pilot: Pilot, state: State) -> None:
    actual = pilot.app.machine.state
    if actual is not state:
        raise AssertionError(f"demo expected state {state}, kiosk is in {actual}")


def make_tour(out_dir: Path, clock: OffsetClock, shots: list[Path], fleet=None,
              dashboard: list[Path] | None = None):
    """`fleet`: a running `fleet.demo.FleetDemo`; the tour ends once its agent has reported
    this kiosk (running, with its devices) to the fleet server, and the dashboard's pages are
    captured into `dashboard` while the app still runs."""

    async def tour(pilot: Pilot) -> None:
        app = pilot.app

        async def shot(name: str) -> None:
            shots.append(await pilot.screenshot(out_dir / f"{len(shots) + 1:02d}-{name}.png"))

        await shot("attract-zh")
        await pilot.tap(pilot.widget("attract", "elderly"))
        await shot("attract-zh-elderly")
        await pilot.tap(pilot.widget("attract", "elderly"))
        await pilot.tap(pilot.widget("attract", "language"))
        await shot("attract-en")
        await pilot.tap(pilot.widget("attract", "language"))

        await pilot.tap(pilot.widget("attract", "start"))
        expect(pilot, State.IDENTIFY)
        await shot("identify-zh")
        # Nobody touches the kiosk: the countdown appears after the idle time...
        clock.advance(app.machine.timing.idle_s + 1)
        await pilot.frames(20)
        await shot("identify-countdown-zh")
        await pilot.tap(app.banner.ids.keep_going)
        expect(pilot, State.IDENTIFY)
        await pilot.tap(pilot.widget("identify", "elderly"))
        clock.advance(app.machine.timing.idle_s + 1)
        await pilot.frames(20)
        await shot("identify-countdown-elderly")
        # ...and when it runs out, the session is wiped and the kiosk returns to attract.
        clock.advance(app.machine.timing.warning_s + 1)
        await pilot.frames(20)
        expect(pilot, State.ATTRACT)
        await shot("attract-after-timeout")

        app.machine.take_out_of_service("printer")
        await pilot.settle()
        expect(pilot, State.OUT_OF_SERVICE)
        await shot("out-of-service-zh")
        await pilot.tap(pilot.widget("out_of_service", "elderly"))
        await shot("out-of-service-zh-elderly")
        app.machine.return_to_service()
        await pilot.settle()
        expect(pilot, State.ATTRACT)

        # Whole journeys by touch through the simulators, every page kept.
        from screens import journeys

        for number, (item_id, citizen_id, via, elderly, options) in enumerate(UI_JOURNEYS, start=1):
            mode = "elderly" if elderly else "normal"

            async def page_shot(page: str, number=number, item_id=item_id, mode=mode) -> None:
                await shot(f"j{number}-{item_id}-{mode}-{page}")

            if elderly:
                await pilot.tap(pilot.widget("attract", "elderly"))
            walk = await journeys.visit(pilot, item_id, citizen_id, via, shot=page_shot, **options)
            median = sorted(walk.transitions)[len(walk.transitions) // 2]
            print(f"  UI journey {item_id} via {via} ({mode}): {len(walk.pages)} screens, "
                  f"median touch→screen {median:.0f} ms", flush=True)

        if fleet is not None:
            import asyncio

            # Blocking HTTP polls in a thread: this loop serves the agent's health socket.
            await asyncio.to_thread(fleet.wait_for_heartbeats, 2, 60)
            if dashboard is not None:
                dashboard.extend(await asyncio.to_thread(fleet.screenshots, out_dir / "fleet"))

    return tour


# (item, citizen, way to identify, 长辈模式, options): print / submit / query, every way.
UI_JOURNEYS = (
    ("ssc_participation_cert", "c01", "code", False, {}),
    ("ssc_participation_cert", "c02", "code", True, {}),
    ("flexible_employment_enrol", "c03", "ssc", False, {"rating": "satisfied", "reasons": ("easy",)}),
    ("flexible_employment_enrol", "c05", "ssc", True, {}),
    ("ssc_payment_records", "c04", "idcard", False, {"receipt": True}),
    ("ssc_payment_records", "c04", "idcard", True, {"rating": None}),
)
