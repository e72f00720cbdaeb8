"""社保缴费记录查询: loads, lints clean, shows a year's months and prints them on request.
On the sandbox: a full year of the citizen's contributions, one row a month, and a receipt."""

import datetime as dt
from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import NOW, TODAY, Kit, assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import Outcome
from kiosk.platform.api import QueryResult

FOLDER = Path(__file__).resolve().parents[1]
# The platform's shape: one row a month, personal and employer parts per insurance.
def _row(month, status):
    return {"month": month, "base": "6000.00", "pension_personal": "480.00",
            "pension_employer": "960.00", "medical_personal": "120.00",
            "medical_employer": "480.00", "status": status}


ROWS = [_row(f"2025-{m:02d}", "已到账") for m in range(1, 4)] + [_row("2025-04", "未到账")]


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
    assert screen.table.rows[0] == ("2025-01", "6,000.00", "600.00", "1,440.00", "已到账")
    # Only credited months count towards what the citizen paid.
    assert ("个人缴费合计（元）", "1,800.00") in [(line.label, line.value) for line in screen.lines]
    assert kit.receipt.printed[0].title == "社保缴费记录查询"
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_in_english():
    kit = _kit()
    await kit.run(load_item(FOLDER), citizen(), {"year": TODAY.year - 1}, locale="en")
    assert kit.shown[0].table.rows[3][-1] == "Not yet credited"


@kiosk_loop
async def test_shows_last_year_from_the_sandbox_with_a_receipt(kiosk_services):
    year = dt.date.today().year - 1
    journey = await run_journey(
        kiosk_services, "ssc_payment_records", "c04", "idcard", answers={"year": year}, print_receipt=True
    )
    assert journey.report.outcome is Outcome.ANSWERED, journey.report.failure
    table = journey.screen.table
    assert table.columns[0] == "费款所属期"
    assert [row[0] for row in table.rows] == [f"{year}-{m:02d}" for m in range(1, 13)]
    assert dict(journey.lines())["缴费月数"] == "12"
    # Every money column filled from the platform's rows (no "None", no 0.00 totals).
    for _month, base, personal, employer, status in table.rows:
        assert float(base.replace(",", "")) > 0 and float(personal.replace(",", "")) > 0
        assert float(employer.replace(",", "")) == 0  # c04 is flexibly employed: no employer
        assert status == "已到账"
    paid = sum(float(row[2].replace(",", "")) for row in table.rows)
    assert dict(journey.lines())["个人缴费合计（元）"] == f"{paid:,.2f}"
    assert len(journey.receipts) == 1
    journey.assert_left_nothing()
