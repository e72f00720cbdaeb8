"""公积金缴存证明打印: loads, lints clean, prints; a 社保卡 alone is not enough. On the
sandbox: printed for a depositor identified by ID card."""

from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_prints_with_the_id_card(kit):
    report = await kit.run(load_item(FOLDER), citizen(IdentitySource.ID_CARD), {})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert len(kit.a4.jobs) == 1
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_social_security_card_is_not_accepted(kit):
    report = await kit.run(load_item(FOLDER), citizen(IdentitySource.SSC), {})
    assert report.failure.kind is FailureKind.IDENTITY
    assert kit.platform.fetched == []


@kiosk_loop
@pytest.mark.parametrize("via", ["idcard", "code"])
async def test_prints_on_the_sandbox(kiosk_services, via):
    journey = await run_journey(kiosk_services, "housing_fund_deposit_cert", "c03", via)
    assert journey.report.outcome is Outcome.PRINTED, journey.report.failure
    assert len(journey.documents) == 1 and journey.documents[0].startswith(b"%PDF-")
    assert journey.lines()[0][0] == "已打印"
    journey.assert_left_nothing()
