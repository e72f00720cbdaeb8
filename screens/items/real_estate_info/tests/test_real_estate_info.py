"""不动产登记信息查询（无房证明）: loads, lints clean, prints for a stated purpose."""

from pathlib import Path

import pytest

from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import FailureKind, Outcome
from tests.kiosk.items.fakes import Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_prints_for_school_enrolment():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(), {"purpose": "school_enrolment"})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert kit.shown[0].note == "请取走打印好的证明。"
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_purpose_is_required():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.failure.kind is FailureKind.ANSWERS
    assert report.failure.field_errors[0].message_key == "items.answer.required"
