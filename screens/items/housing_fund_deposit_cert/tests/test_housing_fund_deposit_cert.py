"""公积金缴存证明打印: loads, lints clean, prints; a 社保卡 alone is not enough."""

from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import FailureKind, Outcome
from tests.kiosk.items.fakes import Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_prints_with_the_id_card():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(IdentitySource.ID_CARD), {})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert len(kit.a4.jobs) == 1
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_social_security_card_is_not_accepted():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(IdentitySource.SSC), {})
    assert report.failure.kind is FailureKind.IDENTITY
    assert kit.platform.fetched == []
