"""不动产登记信息查询（无房证明）: loads, lints clean, prints for a stated purpose. On the
sandbox: printed for an owner and for a citizen who owns nothing (the 无房证明)."""

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
async def test_prints_for_school_enrolment(kit):
    report = await kit.run(load_item(FOLDER), citizen(), {"purpose": "school_enrolment"})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert kit.shown[0].note == "请取走打印好的证明。"
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_purpose_is_required(kit):
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.failure.kind is FailureKind.ANSWERS
    assert report.failure.field_errors[0].message_key == "items.answer.required"


@kiosk_loop
@pytest.mark.parametrize(("citizen_id", "via"), [("c01", "code"), ("c03", "idcard")])  # owner, none
async def test_prints_on_the_sandbox(kiosk_services, citizen_id, via):
    journey = await run_journey(
        kiosk_services, "real_estate_info", citizen_id, via, answers={"purpose": "school_enrolment"}
    )
    assert journey.report.outcome is Outcome.PRINTED, journey.report.failure
    assert len(journey.documents) == 1 and journey.documents[0].startswith(b"%PDF-")
    assert journey.screen.note == "请取走打印好的证明。"
    journey.assert_left_nothing()
