"""灵活就业人员参保登记: loads, lints clean, submits with the commitment and prints the
receipt; queued offline; refuses back pay, the retired, and a missing consent. On the
sandbox: a real case number on screen and on the receipt, and the retired refused."""

from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import YOUNG_ID_NUMBER, assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import CaseState

FOLDER = Path(__file__).resolve().parents[1]
ANSWERS = {"start_month": "2026-04", "contribution_base": "60", "medical": True, "phone": "138 1234 5678"}


def young(source=IdentitySource.SSC):
    return citizen(source, number=YOUNG_ID_NUMBER)


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_submits_and_prints_the_case_number(kit):
    report = await kit.run(load_item(FOLDER), young(), ANSWERS, commitment_accepted=True)
    assert report.outcome is Outcome.SUBMITTED, report.failure
    (application,) = kit.platform.submissions.values()
    assert application.commitment_accepted
    assert dict(application.fields) == {
        "start_month": "2026-04",
        "insurance": ["pension", "medical"],
        "contribution_base_percent": 60,
        "contribution_base_rule": "provincial_average_wage",
        "phone": "13812345678",
    }
    receipt = kit.receipt.printed[0]
    assert ("办件编号", report.case_number) in [(line.label, line.value) for line in receipt.lines]
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_offline_it_is_queued_with_a_local_reference(kit):
    kit.queue.offline = True
    report = await kit.run(load_item(FOLDER), young(IdentitySource.SUFU_CODE), ANSWERS, commitment_accepted=True)
    assert report.outcome is Outcome.QUEUED
    assert report.local_ref in kit.queue.records and kit.platform.submissions == {}
    assert report.local_ref in [line.value for line in kit.receipt.printed[0].lines]


@pytest.mark.asyncio
async def test_without_consent_nothing_is_stored(kit):
    report = await kit.run(load_item(FOLDER), young(), ANSWERS)
    assert report.failure.kind is FailureKind.CONSENT
    assert kit.queue.records == {}


@pytest.mark.asyncio
async def test_a_past_month_and_a_retired_citizen_are_refused(kit):
    report = await kit.run(load_item(FOLDER), young(), {**ANSWERS, "start_month": "2026-02"}, commitment_accepted=True)
    assert [e.message_key for e in report.failure.field_errors] == ["items.answer.too_early"]
    report = await kit.run(load_item(FOLDER), citizen(IdentitySource.SSC), ANSWERS, commitment_accepted=True)
    assert [e.message_key for e in report.failure.field_errors] == ["items.flexible_employment_enrol.retired"]
    assert kit.queue.records == {}


@pytest.mark.asyncio
async def test_id_card_is_not_an_accepted_source(kit):
    report = await kit.run(load_item(FOLDER), young(IdentitySource.ID_CARD), ANSWERS, commitment_accepted=True)
    assert report.failure.kind is FailureKind.IDENTITY


@kiosk_loop
async def test_submits_on_the_sandbox_and_prints_the_case_number(kiosk_services):
    journey = await run_journey(kiosk_services, "flexible_employment_enrol", "c05", "code")
    report = journey.report
    assert report.outcome is Outcome.SUBMITTED, report.failure
    assert report.case_number and report.case_number.isdigit()
    assert ("办件编号", report.case_number) in journey.lines()
    assert len(journey.receipts) == 1  # the receipt, with the number and its QR code
    record = await kiosk_services.outbox.record(report.local_ref)
    assert record.state == "sent" and record.case_number == report.case_number
    case = await kiosk_services.platform.query_case(report.case_number)
    assert case.state is CaseState.RECEIVED
    journey.assert_left_nothing()


@kiosk_loop
async def test_a_retired_citizen_is_refused_before_anything_is_stored(kiosk_services):
    before = await kiosk_services.outbox.records()
    journey = await run_journey(kiosk_services, "flexible_employment_enrol", "c02", "code")  # born 1952
    assert journey.report.failure.kind is FailureKind.ANSWERS
    errors = [e.message_key for e in journey.report.failure.field_errors]
    assert errors == ["items.flexible_employment_enrol.retired"]
    assert await kiosk_services.outbox.records() == before
    assert journey.receipts == ()
    journey.assert_left_nothing()
