"""社保参保证明打印: loads, lints clean, prints the fetched certificate for each identity source."""

from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import CertificateType, RatingLevel
from tests.kiosk.items.fakes import Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]
ANSWERS = {"period": "12"}


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("source", list(IdentitySource))
async def test_prints_the_certificate(source):
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(source), ANSWERS, rating=RatingLevel.SATISFIED)
    assert report.outcome is Outcome.PRINTED, report.failure
    assert kit.platform.fetched == [(CertificateType.SSC_PARTICIPATION,)]
    assert [pdf[:5] for _, pdf in kit.a4.jobs] == [b"%PDF-"]
    assert kit.platform.ratings[0].level is RatingLevel.SATISFIED
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_a_period_outside_the_options_is_refused():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(), {"period": "5"})
    assert report.failure.kind is FailureKind.ANSWERS
    assert kit.a4.jobs == []
