"""办件进度查询: loads, lints clean, answers by case number, with or without identity; on the
sandbox, follows a case it has just seen submitted."""

from pathlib import Path

import pytest

from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import advance_case, assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import CaseState

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_progress_without_identity(kit):
    kit.platform.add_case("SB202600000042", CaseState.IN_REVIEW)
    report = await kit.run(load_item(FOLDER), None, {"case_number": "sb202600000042"})
    assert report.outcome is Outcome.ANSWERED, report.failure
    screen = kit.shown[0]
    assert ("办理状态", "审核中") in [(line.label, line.value) for line in screen.lines]
    assert len(screen.table.rows) == 2
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_progress_with_a_citizen_identified(kit):
    kit.platform.add_case("SB202600000042", CaseState.COMPLETED)
    report = await kit.run(load_item(FOLDER), citizen(), {"case_number": "SB202600000042"})
    assert report.outcome is Outcome.ANSWERED, report.failure
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_an_unknown_case_number_is_not_found(kit):
    report = await kit.run(load_item(FOLDER), None, {"case_number": "SB209900000001"})
    assert report.failure.kind is FailureKind.PLATFORM
    assert report.failure.message_key == "platform.not_found"
    assert_left_nothing(kit, report)


@kiosk_loop
async def test_follows_a_case_submitted_on_the_sandbox(kiosk_services):
    submitted = await run_journey(kiosk_services, "flexible_employment_enrol", "c05", "code")
    assert submitted.report.outcome is Outcome.SUBMITTED, submitted.report.failure
    case_number = submitted.report.case_number

    # The citizen comes back later, types the number from the receipt, and asks for a 凭条.
    journey = await run_journey(
        kiosk_services, "case_progress", None, None,
        answers={"case_number": case_number}, print_receipt=True,
    )
    assert journey.report.outcome is Outcome.ANSWERED, journey.report.failure
    lines = dict(journey.lines())
    assert lines["办件编号"] == case_number
    assert lines["办理状态"] == "已接收"
    assert journey.screen.table.rows[0][1] == "已接收"  # the history starts with its receipt
    assert len(journey.receipts) == 1
    journey.assert_left_nothing()

    # The department takes it up; the next visit shows where it is and how it got there.
    await advance_case(kiosk_services, case_number, CaseState.IN_REVIEW)
    journey = await run_journey(
        kiosk_services, "case_progress", "c05", "code", answers={"case_number": case_number}
    )
    assert journey.report.outcome is Outcome.ANSWERED, journey.report.failure
    assert dict(journey.lines())["办理状态"] == "审核中"
    assert [row[1] for row in journey.screen.table.rows] == ["已接收", "审核中"]
    journey.assert_left_nothing()


@kiosk_loop
async def test_a_case_the_sandbox_never_saw_is_not_found(kiosk_services):
    journey = await run_journey(
        kiosk_services, "case_progress", None, None, answers={"case_number": "32209901010001"}
    )
    assert journey.report.failure.kind is FailureKind.PLATFORM
    assert journey.report.failure.message_key == "platform.not_found"
    assert journey.shown == ()
    journey.assert_left_nothing()
