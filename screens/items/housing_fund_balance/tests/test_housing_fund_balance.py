"""公积金账户余额查询: loads, lints clean, shows the balance in yuan and the status in words.
On the sandbox: a depositor's balance as the platform computes it, and a citizen without an
account told so."""

import datetime as dt
from pathlib import Path

import pytest

from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import NOW, assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import PlatformUnavailable, QueryResult
from kiosk.platform.sandbox.queries import housing_fund_balance
from kiosk.simulation import citizen as sandbox_citizen

FOLDER = Path(__file__).resolve().parents[1]
SUMMARY = {  # the platform's shape (docs/platform.md)
    "balance": "23456.70",
    "monthly_deposit": "1680.00",
    "base": "7000.00",
    "status": "正常缴存",
    "as_of_month": "2026-02",
}


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_shows_the_balance(kit):
    kit.platform.query_results["320000-GJJ-CX-0001"] = QueryResult("320000-GJJ-CX-0001", NOW, SUMMARY)
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.outcome is Outcome.ANSWERED, report.failure
    lines = [(line.label, line.value) for line in kit.shown[0].lines]
    assert lines == [
        ("账户余额（元）", "23,456.70"),
        ("月缴存额（元）", "1,680.00"),
        ("缴存基数（元）", "7,000.00"),
        ("账户状态", "正常"),
        ("最近缴存月份", "2026-02"),
    ]
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_status_in_english(kit):
    kit.platform.query_results["320000-GJJ-CX-0001"] = QueryResult("320000-GJJ-CX-0001", NOW, SUMMARY)
    await kit.run(load_item(FOLDER), citizen(), {}, locale="en")
    assert dict((line.label, line.value) for line in kit.shown[0].lines).get("Account status") == "Active"


@pytest.mark.asyncio
async def test_platform_down_is_a_typed_failure(kit):
    kit.platform.fail["query"] = PlatformUnavailable()
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.failure.kind is FailureKind.PLATFORM
    assert report.failure.message_key == "platform.unavailable" and report.failure.retryable
    assert_left_nothing(kit, report)


@kiosk_loop
async def test_shows_the_sandbox_balance_and_prints_it_on_request(kiosk_services):
    journey = await run_journey(kiosk_services, "housing_fund_balance", "c01", "idcard", print_receipt=True)
    assert journey.report.outcome is Outcome.ANSWERED, journey.report.failure
    summary, _ = housing_fund_balance(sandbox_citizen("c01").data, dt.date.today())
    lines = dict(journey.lines())
    assert lines["账户余额（元）"] == f"{float(summary['balance']):,.2f}"
    assert lines["月缴存额（元）"] == f"{float(summary['monthly_deposit']):,.2f}"
    assert lines["缴存基数（元）"] == f"{float(summary['base']):,.2f}"
    assert lines["最近缴存月份"] == summary["as_of_month"]
    assert lines["账户状态"] == "正常"
    assert len(journey.receipts) == 1
    journey.assert_left_nothing()


@kiosk_loop
async def test_a_citizen_without_an_account_is_told_so(kiosk_services):
    journey = await run_journey(kiosk_services, "housing_fund_balance", "c02", "code")  # retired, no fund
    assert journey.report.failure.kind is FailureKind.PLATFORM
    assert journey.report.failure.message_key == "platform.not_found"
    journey.assert_left_nothing()
