"""办件进度查询: loads, lints clean, answers by case number, with or without identity."""

from pathlib import Path

import pytest

from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import Outcome
from kiosk.platform.api import CaseState
from tests.kiosk.items.fakes import Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_progress_without_identity():
    kit = Kit()
    kit.platform.add_case("SB202600000042", CaseState.IN_REVIEW)
    report = await kit.run(load_item(FOLDER), None, {"case_number": "sb202600000042"})
    assert report.outcome is Outcome.ANSWERED, report.failure
    screen = kit.shown[0]
    assert ("办理状态", "审核中") in [(line.label, line.value) for line in screen.lines]
    assert len(screen.table.rows) == 2
    assert_left_nothing(kit, report)
