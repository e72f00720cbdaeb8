"""The conductor without the UI: real sandbox, outbox and simulated devices; the citizen's
code is shown to the simulated scanner and cards go into the simulated readers."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from kiosk.conductor import Action, Conductor, Page, Way
from kiosk.items.testing import kiosk_devices, kiosk_loop, kiosk_services  # noqa: F401
from kiosk.platform.sandbox.seed import CITIZENS
from kiosk.session import SessionMachine, State
from kiosk.simulation import fresh_code, id_card_of


class Counts:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kw: self.calls.append((name, *args))


async def until(condition, timeout=10.0, what="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"waited {timeout}s for {what}")
        await asyncio.sleep(0.01)


@pytest_asyncio.fixture(loop_scope="module")
async def conductor(kiosk_services):  # noqa: F811
    machine = SessionMachine()
    counts = Counts()
    c = Conductor(kiosk_services, machine, telemetry=counts)
    c.counts = counts
    c.start()
    yield c
    await c.stop()
    kiosk_services.devices.devices["id_card"].simulator.remove_card()


def seed(citizen_id):
    return next(c for c in CITIZENS if c.citizen_id == citizen_id)


@kiosk_loop
async def test_code_then_print_item_whole_visit(conductor, kiosk_services):  # noqa: F811
    code = await fresh_code(kiosk_services, "c01")
    kiosk_services.devices.devices["qr"].simulator.scan(code)
    await until(lambda: conductor.page is Page.CATALOGUE, what="catalogue")
    assert conductor.machine.state is State.CATALOGUE and conductor.identity is None
    shown = {o.item.id for o in conductor.offers if o.shown}
    assert "e_licence_print" in shown  # a code may use the code-only item
    await conductor.choose("ssc_participation_cert")
    assert conductor.page is Page.GUIDE, conductor.problem
    assert conductor.identity is not None and conductor.identity.masked_name == "张*"
    conductor.start_item()
    assert conductor.page is Page.FIELD and conductor.current_field.id == "period"
    conductor.next_field()
    assert conductor.field_errors and conductor.field_errors[0].message_key == "items.answer.required"
    value = conductor.field_options()[0][0]
    conductor.set_answer("period", value)
    conductor.next_field()
    assert conductor.page is Page.CONSENT
    assert conductor.consent_certificates() == ["ssc_participation"]
    conductor.agree()
    assert conductor.page is Page.CONFIRM
    assert conductor.answer_summary()[0][0] == "证明期限"
    a4 = kiosk_services.devices.devices["a4_printer"].simulator
    before = len(a4.spooled_documents())
    conductor.confirm()
    assert conductor.page is Page.WORKING
    await until(lambda: conductor.page is Page.RESULT, 30, "result")
    assert len(a4.spooled_documents()) == before + 1
    assert "result.take_prints" in conductor.take_away()
    conductor.done()
    assert conductor.page is Page.RATING
    await conductor.rate("very_satisfied")
    assert conductor.page is Page.ATTRACT and conductor.machine.session is None
    assert conductor.identity is None and conductor.item is None and conductor.answers == {}
    names = [call[0] for call in conductor.counts.calls]
    assert names[:1] == ["journey_started"] and "rated" in names and "journey_finished" in names


@kiosk_loop
async def test_id_card_at_attract_starts_the_visit(conductor, kiosk_services):  # noqa: F811
    reader = kiosk_services.devices.devices["id_card"]
    reader.simulator.insert_card(id_card_of(seed("c03")))
    await until(lambda: conductor.page is Page.CATALOGUE, what="catalogue")
    assert conductor.way is Way.IDCARD and conductor.identity.source == "idcard"
    hidden = {o.item.id: o.hidden for o in conductor.offers if not o.shown}
    assert "e_licence_print" in hidden  # code only: shown disabled with the reason
    assert hidden["e_licence_print"][0].message_key == "items.hidden.identity_source"
    conductor.exit()
    assert conductor.page is Page.ATTRACT and conductor.identity is None


@kiosk_loop
async def test_replayed_code_says_refresh_and_keeps_the_item(conductor, kiosk_services):  # noqa: F811
    code = await fresh_code(kiosk_services, "c01")
    await kiosk_services.platform.verify_code(code, item_code="320000-ZZ-DY-0001")  # used once
    scanner = kiosk_services.devices.devices["qr"].simulator
    scanner.scan(code)
    await until(lambda: conductor.page is Page.CATALOGUE, what="catalogue")
    await conductor.choose("ssc_participation_cert")
    assert conductor.page is Page.PROBLEM
    assert conductor.problem.message_key == "platform.code_replayed"
    assert Action.IDENTIFY in conductor.problem.actions
    conductor.act(Action.IDENTIFY)
    assert conductor.page is Page.IDENTIFY
    scanner.scan(await fresh_code(kiosk_services, "c01"))
    await until(lambda: conductor.page is Page.GUIDE, what="guide after a fresh code")
    assert conductor.item.id == "ssc_participation_cert"
    conductor.exit()


@kiosk_loop
async def test_idle_timeout_wipes_everything(kiosk_services):  # noqa: F811
    now = [0.0]
    machine = SessionMachine(clock=lambda: now[0])
    conductor = Conductor(kiosk_services, machine)
    conductor.start()
    try:
        kiosk_services.devices.devices["qr"].simulator.scan(await fresh_code(kiosk_services, "c02"))
        await until(lambda: conductor.page is Page.CATALOGUE, what="catalogue")
        await conductor.choose("ssc_participation_cert")
        conductor.start_item()
        conductor.set_answer("period", conductor.field_options()[0][0])
        now[0] += 1000
        machine.tick()
        assert conductor.page is Page.ATTRACT and machine.session is None
        assert conductor.identity is None and conductor.journey is None and conductor.answers == {}
    finally:
        await conductor.stop()
