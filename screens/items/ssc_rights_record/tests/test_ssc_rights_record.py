"""个人权益记录打印: loads, lints clean, prints a settled year's record, refuses this year;
on the sandbox, prints last year's record for a citizen identified by ID card."""

import datetime as dt
from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import TODAY, assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_prints_last_years_record(kit):
    report = await kit.run(load_item(FOLDER), citizen(IdentitySource.SSC), {"year": TODAY.year - 1})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert report.documents_printed == 1
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_the_current_year_is_not_settled_yet(kit):
    report = await kit.run(load_item(FOLDER), citizen(), {"year": str(TODAY.year)})
    assert [e.message_key for e in report.failure.field_errors] == ["items.answer.too_late"]


@kiosk_loop
async def test_prints_last_years_record_on_the_sandbox(kiosk_services):
    year = dt.date.today().year - 1
    journey = await run_journey(kiosk_services, "ssc_rights_record", "c01", "idcard", answers={"year": year})
    assert journey.report.outcome is Outcome.PRINTED, journey.report.failure
    assert len(journey.documents) == 1 and journey.documents[0].startswith(b"%PDF-")
    assert journey.lines()[0][0] == "已打印"
    journey.assert_left_nothing()


@kiosk_loop
async def test_this_year_is_refused_before_the_sandbox_is_asked(kiosk_services):
    year = dt.date.today().year
    journey = await run_journey(kiosk_services, "ssc_rights_record", "c01", "idcard", answers={"year": year})
    assert journey.report.failure.kind is FailureKind.ANSWERS
    assert journey.documents == ()
    journey.assert_left_nothing()
