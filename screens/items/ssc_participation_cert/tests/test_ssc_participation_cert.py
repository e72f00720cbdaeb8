"""社保参保证明打印: loads, lints clean, prints the fetched certificate for each identity
source — with fakes, and on the sandbox through the real 苏服码 scanner, ID-card reader and
社保卡 reader (this module starts the 社保卡 simulator, so it needs pcscd)."""

from pathlib import Path

import pytest

from kiosk.identity.model import IdentitySource
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import SANDBOX_DEVICES, assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import CertificateType, RatingLevel

FOLDER = Path(__file__).resolve().parents[1]
ANSWERS = {"period": "12"}


@pytest.fixture(scope="module")
def kiosk_devices():
    return SANDBOX_DEVICES | {"ssc"}


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
@pytest.mark.parametrize("source", list(IdentitySource))
async def test_prints_the_certificate(kit, source):
    report = await kit.run(load_item(FOLDER), citizen(source), ANSWERS, rating=RatingLevel.SATISFIED)
    assert report.outcome is Outcome.PRINTED, report.failure
    assert kit.platform.fetched == [(CertificateType.SSC_PARTICIPATION,)]
    assert kit.platform.certificate_params == [{"period": "12"}]  # the chosen period is asked for
    assert [pdf[:5] for _, pdf in kit.a4.jobs] == [b"%PDF-"]
    assert kit.platform.ratings[0].level is RatingLevel.SATISFIED
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_a_period_outside_the_options_is_refused(kit):
    report = await kit.run(load_item(FOLDER), citizen(), {"period": "5"})
    assert report.failure.kind is FailureKind.ANSWERS
    assert kit.a4.jobs == []


@kiosk_loop
@pytest.mark.parametrize("via", ["code", "idcard", "ssc"])
async def test_prints_on_the_sandbox_for_each_way_to_identify(kiosk_services, via):
    journey = await run_journey(kiosk_services, "ssc_participation_cert", "c03", via, answers=ANSWERS)
    report = journey.report
    assert report.outcome is Outcome.PRINTED, report.failure
    assert report.identity.startswith(f"{via} 3205")
    assert len(journey.documents) == 1 and journey.documents[0].startswith(b"%PDF-")
    assert report.rated is RatingLevel.VERY_SATISFIED
    journey.assert_left_nothing()


@kiosk_loop
async def test_the_chosen_period_shapes_the_printed_certificate(kiosk_services):
    six = await run_journey(kiosk_services, "ssc_participation_cert", "c01", "code",
                            answers={"period": "6"})
    twelve = await run_journey(kiosk_services, "ssc_participation_cert", "c01", "code",
                               answers={"period": "12"})
    assert six.report.outcome is twelve.report.outcome is Outcome.PRINTED
    assert six.documents[0] != twelve.documents[0]
