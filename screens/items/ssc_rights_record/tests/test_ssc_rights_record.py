"""个人权益记录打印: loads, lints clean, prints a settled year's record, refuses this year."""

from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import Outcome
from tests.kiosk.items.fakes import TODAY, Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_prints_last_years_record():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(IdentitySource.SSC), {"year": TODAY.year - 1})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert report.documents_printed == 1
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_the_current_year_is_not_settled_yet():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(), {"year": str(TODAY.year)})
    assert [e.message_key for e in report.failure.field_errors] == ["items.answer.too_late"]
