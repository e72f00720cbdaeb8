"""Scripted citizens for the running app: identify through the simulators, then tap through
an item's screens as a person would. Used by the headless demo, the UI tests and bench/ui.py.

Every step is a touch at a widget's position (`Pilot.tap`); the script waits for the screen
the tap should lead to and records how long that took, from the touch to the first frame of
the new screen (`Walk.transitions`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk.items.examples import example_answers
from kiosk.items.manifest import (
    CaseNumberField,
    ChoiceField,
    DateField,
    IdNumberField,
    MonthField,
    NumberField,
    PhoneField,
    YearField,
    YesNoField,
)
from kiosk.simulation import fresh_code, id_card_of, ssc_card_of
from kiosk.simulation import citizen as seed_citizen
from screens.pilot import Pilot

Shot = Callable[[str], Awaitable[Any]]


@dataclass
class Walk:
    pages: list[str] = field(default_factory=list)
    transitions: list[float] = field(default_factory=list)  # ms, touch → next screen's frame


def _page(pilot: Pilot) -> str:
    return pilot.app.page


async def wait_page(pilot: Pilot, page: str, timeout: float = 30.0) -> None:
    await pilot.wait_for(lambda: _page(pilot) == page and pilot.app.screen_manager.current == page,
                         timeout=timeout, what=f"page {page} (now {_page(pilot)})")


async def tap_to(pilot: Pilot, widget, page: str | tuple[str, ...] | None, walk: Walk | None = None,
                 timeout: float = 30.0) -> None:
    """Tap, then (if `page`: one page or any of several) wait for it; the change of page is
    timed to its first frame."""
    app = pilot.app
    await reveal(pilot, widget)
    before = app.page_drawn_at
    started = time.monotonic()
    await pilot.tap(widget)
    if page is None:
        return
    pages = (page,) if isinstance(page, str) else page
    await pilot.wait_for(
        lambda: _page(pilot) in pages and app.page_drawn_at != before and app.page_drawn_at >= started,
        timeout=timeout, what=f"page {page} drawn after a tap (now {_page(pilot)})",
    )
    if walk is not None:
        walk.transitions.append((app.page_drawn_at - started) * 1000)
        walk.pages.append(_page(pilot))


def target(pilot: Pilot, page: str, name: str):
    return pilot.app.screen(page).targets[name]


def _scroller(widget):
    from screens.pages import PagedScroll

    parent = widget.parent
    for _ in range(100):  # the window is its own parent: bound the walk
        if parent is None or isinstance(parent, PagedScroll):
            return parent
        parent = parent.parent
    return None


async def reveal(pilot: Pilot, widget, limit: int = 30) -> None:
    """Page the screen with ▲ / ▼ (taps, as a citizen would) until `widget` is in view."""
    scroll = _scroller(widget)
    if scroll is None:
        return
    view = scroll.ids.view
    for _ in range(limit):
        vx, vy = view.to_window(view.x, view.y)
        wx, wy = widget.to_window(widget.x, widget.y)
        if wy >= vy - 1 and wy + widget.height <= vy + view.height + 1:
            return
        await pilot.tap(scroll.ids.down if wy < vy else scroll.ids.up)
    raise AssertionError(f"{widget!r} never came into view")


async def present(pilot: Pilot, citizen_id: str, via: str) -> None:
    """The citizen shows their 苏服码 or inserts a card (simulated hardware)."""
    services = pilot.app.services
    devices = services.devices.devices
    if via == "code":
        code = await fresh_code(services, citizen_id)
        devices["qr"].simulator.scan(code)
    elif via == "idcard":
        devices["id_card"].simulator.insert_card(id_card_of(seed_citizen(citizen_id)))
    elif via == "ssc":
        card = devices["ssc"].sim_card
        card.set_holder(ssc_card_of(seed_citizen(citizen_id)))
        await asyncio.to_thread(card.insert)
    else:
        raise ValueError(f"via must be code, idcard or ssc, not {via!r}")


async def take_cards(pilot: Pilot) -> None:
    """The citizen takes their card back (the result screen reminds them)."""
    devices = pilot.app.services.devices.devices
    if "id_card" in devices:
        devices["id_card"].simulator.remove_card()
    if "ssc" in devices:
        await asyncio.to_thread(devices["ssc"].sim_card.remove)


async def tap(pilot: Pilot, widget) -> None:
    await reveal(pilot, widget)
    await pilot.tap(widget)


async def answer_field(pilot: Pilot, item_field: Any, value: Any, walk: Walk | None) -> None:
    """Set one field by tapping its input the way its type asks."""
    page = "field"
    if isinstance(item_field, ChoiceField):
        await tap(pilot, target(pilot, page, f"option:{value}"))
    elif isinstance(item_field, YesNoField):
        await tap(pilot, target(pilot, page, f"option:{'yes' if value in (True, 'yes') else 'no'}"))
    elif isinstance(item_field, (PhoneField, IdNumberField, CaseNumberField, NumberField)):
        for char in str(value):
            await tap(pilot, target(pilot, page, f"key:{char.upper()}"))
    elif isinstance(item_field, (DateField, MonthField, YearField)):
        screen = pilot.app.screen(page)
        picker = screen.input
        wanted = value if isinstance(value, dt.date) else None
        if isinstance(value, int):
            parts = {"year": value}
        else:
            text = value.isoformat() if wanted else str(value)
            bits = [int(b) for b in text.split("-")]
            parts = dict(zip(("year", "month", "day"), bits, strict=False))
        for part in ("year", "month", "day"):
            stepper = getattr(picker, part, None)
            if stepper is None or part not in parts:
                continue
            while stepper.value != parts[part]:
                sign = "+" if stepper.value < parts[part] else "-"
                await tap(pilot, target(pilot, page, f"{part}:{sign}"))
    else:
        raise TypeError(f"no way to answer {type(item_field).__name__}")


async def walk_item(
    pilot: Pilot,
    item_id: str,
    *,
    answers: Mapping[str, Any] | None = None,
    rating: str | None = "very_satisfied",
    reasons: tuple[str, ...] = (),
    receipt: bool = False,
    shot: Shot | None = None,
    walk: Walk | None = None,
) -> Walk:
    """From the catalogue to the end of the visit (back at attract)."""
    walk = walk or Walk()
    app = pilot.app
    conductor = app.conductor
    await wait_page(pilot, "catalogue")
    if shot:
        await shot("catalogue")
    await tap_to(pilot, target(pilot, "catalogue", f"item:{item_id}"), "guide", walk)
    if shot:
        await shot("guide")
    item = conductor.item
    values = dict(answers) if answers is not None else example_answers(item.manifest, dt.date.today())
    fields = list(item.manifest.fields)
    for index, item_field in enumerate(fields):
        if index == 0:
            await tap_to(pilot, target(pilot, "guide", "start"), "field", walk)
        if shot:
            await shot(f"field-{item_field.type}")
        if item_field.id in values:
            await answer_field(pilot, item_field, values[item_field.id], walk)
        after = "field" if index + 1 < len(fields) else None
        if after is None:
            await tap(pilot, target(pilot, "field", "next"))
            await pilot.wait_for(lambda: _page(pilot) != "field" or conductor.field_errors, what="leaving the fields")
            if conductor.field_errors:
                raise AssertionError(f"field errors: {conductor.field_errors}")
            walk.pages.append(_page(pilot))
        else:
            index_before = conductor.field_index
            await tap(pilot, target(pilot, "field", "next"))
            await pilot.wait_for(lambda i=index_before: conductor.field_index != i or conductor.field_errors,
                                 what="the next field")
            if conductor.field_errors:
                raise AssertionError(f"field errors: {conductor.field_errors}")
    if not fields:
        await tap_to(pilot, target(pilot, "guide", "start"), None, walk)
        await pilot.wait_for(lambda: _page(pilot) != "guide", what="leaving the guide")
    for page in ("consent", "commitment"):
        if _page(pilot) == page:
            if shot:
                await shot(page)
            nxt = "commitment" if page == "consent" and item.manifest.commitment else "confirm"
            await tap_to(pilot, target(pilot, page, "agree"), nxt, walk)
    await wait_page(pilot, "confirm")
    if shot:
        await shot("confirm")
    # A fast answer may replace "working" before its first frame: either counts.
    await tap_to(pilot, target(pilot, "confirm", "confirm"), ("working", "result", "problem"), walk)
    if shot and _page(pilot) == "working":
        await shot("working")
    await pilot.wait_for(lambda: _page(pilot) in ("result", "problem"), timeout=60, what="the result")
    if _page(pilot) == "problem":
        raise AssertionError(f"problem: {conductor.problem}")
    await pilot.settle()
    if shot:
        await shot("result")
    if receipt:
        await tap(pilot, target(pilot, "result", "receipt"))
        await pilot.wait_for(lambda: conductor.receipt_state in ("printed", "failed"), timeout=30, what="the receipt")
        if shot:
            await shot("result-receipt")
    await take_cards(pilot)
    await tap_to(pilot, target(pilot, "result", "done"), "rating", walk)
    if rating is None:
        await tap_to(pilot, target(pilot, "rating", "skip"), "attract", walk)
        return walk
    await tap(pilot, target(pilot, "rating", f"rate:{rating}"))
    for reason in reasons:
        await tap(pilot, target(pilot, "rating", f"reason:{reason}"))
    if shot:
        await shot("rating")
    await tap_to(pilot, target(pilot, "rating", "submit"), "attract", walk)
    return walk


async def visit(
    pilot: Pilot,
    item_id: str,
    citizen_id: str | None,
    via: str | None,
    **options: Any,
) -> Walk:
    """A whole visit from attract: 开始办理, identify (or browse without), the item."""
    walk = options.pop("walk", None) or Walk()
    shot = options.get("shot")
    await wait_page(pilot, "attract")
    await tap_to(pilot, pilot.widget("attract", "start"), "identify", walk)
    if shot:
        await shot("identify")
    if via is None:
        await tap_to(pilot, pilot.widget("identify", "browse"), "catalogue", walk)
    else:
        await present(pilot, citizen_id, via)
        await wait_page(pilot, "catalogue")
    return await walk_item(pilot, item_id, walk=walk, **options)
