"""户籍证明打印: loads, lints clean, prints with the 苏服码's authorisation, not without it;
on the sandbox, prints the citizen's real certificate."""

from pathlib import Path

import pytest

from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_prints_with_the_code(kit):
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_an_authorisation_without_this_certificate_is_refused_by_the_platform(kit):
    report = await kit.run(load_item(FOLDER), citizen(authorised=["id_card_licence"]), {})
    assert report.failure.kind is FailureKind.PLATFORM
    assert report.failure.message_key == "platform.not_authorized"
    assert kit.a4.jobs == []
    assert_left_nothing(kit, report)


@kiosk_loop
async def test_prints_on_the_sandbox(kiosk_services):
    journey = await run_journey(kiosk_services, "household_register_cert", "c01", "code")
    assert journey.report.outcome is Outcome.PRINTED, journey.report.failure
    assert journey.report.documents_printed == 1
    assert len(journey.documents) == 1 and journey.documents[0].startswith(b"%PDF-")
    assert journey.lines() == [("已打印", "户籍证明")]
    assert journey.screen.note == "请取走打印好的证明。"
    journey.assert_left_nothing()


@kiosk_loop
async def test_the_id_card_is_not_enough_on_the_sandbox(kiosk_services):
    journey = await run_journey(kiosk_services, "household_register_cert", "c01", "idcard")
    assert journey.report.failure.kind is FailureKind.IDENTITY
    assert journey.documents == ()
    journey.assert_left_nothing()
