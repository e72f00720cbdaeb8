"""公积金账户余额查询: loads, lints clean, shows the balance in yuan and the status in words."""

from pathlib import Path

import pytest

from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import PlatformUnavailable, QueryResult
from tests.kiosk.items.fakes import NOW, Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]
SUMMARY = {
    "balance": 23456.7,
    "monthly_deposit": 1680,
    "deposit_base": 7000,
    "status": "normal",
    "last_deposit_month": "2026-02",
}


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_shows_the_balance():
    kit = Kit()
    kit.platform.query_results["320000-GJJ-CX-0001"] = QueryResult("320000-GJJ-CX-0001", NOW, SUMMARY)
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.outcome is Outcome.ANSWERED, report.failure
    lines = [(line.label, line.value) for line in kit.shown[0].lines]
    assert lines[0] == ("账户余额（元）", "23,456.70")
    assert ("账户状态", "正常") in lines
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_platform_down_is_a_typed_failure():
    kit = Kit()
    kit.platform.fail["query"] = PlatformUnavailable()
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.failure.kind is FailureKind.PLATFORM
    assert report.failure.message_key == "platform.unavailable" and report.failure.retryable
    assert_left_nothing(kit, report)
