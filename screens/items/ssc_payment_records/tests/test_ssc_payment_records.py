"""社保缴费记录查询: loads, lints clean, shows a year's months and prints them on request."""

from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import Outcome
from kiosk.platform.api import QueryResult
from tests.kiosk.items.fakes import NOW, TODAY, Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]
ROWS = [
    {"month": f"2025-{m:02d}", "insurance": "pension", "base": 6000.0, "personal": 480.0, "status": "paid"}
    for m in range(1, 4)
] + [{"month": "2025-04", "insurance": "pension", "base": 6000.0, "personal": 480.0, "status": "unpaid"}]


def _kit() -> Kit:
    kit = Kit()
    kit.platform.query_results["320000-SB-CX-0001"] = QueryResult("320000-SB-CX-0001", NOW, {}, ROWS)
    return kit


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_shows_the_year_with_a_receipt():
    kit = _kit()
    report = await kit.run(
        load_item(FOLDER), citizen(IdentitySource.SSC), {"year": TODAY.year - 1}, print_receipt=True
    )
    assert report.outcome is Outcome.ANSWERED, report.failure
    assert kit.platform.queries == [("320000-SB-CX-0001", {"year": TODAY.year - 1})]
    screen = kit.shown[0]
    assert screen.table.columns[0] == "费款所属期"
    assert screen.table.rows[0] == ("2025-01", "养老保险", "6,000.00", "480.00", "已到账")
    assert ("个人缴费合计（元）", "1,440.00") in [(line.label, line.value) for line in screen.lines]
    assert kit.receipt.printed[0].title == "社保缴费记录查询"
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_in_english():
    kit = _kit()
    await kit.run(load_item(FOLDER), citizen(), {"year": TODAY.year - 1}, locale="en")
    assert kit.shown[0].table.rows[3][-1] == "Not yet credited"
