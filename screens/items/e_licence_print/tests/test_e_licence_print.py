"""电子证照打印: loads, lints clean, offers and prints only what the 苏服码 authorised; on the
sandbox, prints each kind of e-certificate it issues."""

from pathlib import Path

import pytest

from kiosk.items.hooks import HookContext, MaskedIdentity
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.items.testing import TODAY, assert_left_nothing, citizen, kiosk_loop, run_journey
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import CertificateType

FOLDER = Path(__file__).resolve().parents[1]
AUTHORISED = ["id_card_licence", "household_register"]


def test_lints_clean():
    assert lint(FOLDER) == []


def test_only_authorised_certificates_are_offered():
    item = load_item(FOLDER)
    ctx = HookContext(item.manifest, MaskedIdentity.of(citizen(authorised=AUTHORISED)), TODAY, item.strings_for("zh_CN"))
    licence = item.manifest.field("licence")
    assert item.hooks.run_field_options("licence", licence.values, ctx) == AUTHORISED


@pytest.mark.asyncio
async def test_prints_the_chosen_certificate(kit):
    report = await kit.run(load_item(FOLDER), citizen(authorised=AUTHORISED), {"licence": "household_register"})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert kit.platform.fetched == [(CertificateType.HOUSEHOLD_REGISTER,)]
    assert len(kit.a4.jobs) == 1
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_an_unauthorised_certificate_is_refused_before_asking_the_platform(kit):
    report = await kit.run(load_item(FOLDER), citizen(authorised=AUTHORISED), {"licence": "real_estate_info"})
    assert report.failure.kind is FailureKind.ANSWERS
    assert kit.platform.fetched == []


def test_the_refusal_is_translated():
    item = load_item(FOLDER)
    assert "授权" in item.strings_for("zh_CN")("items.e_licence_print.not_authorised")
    assert "authorise" in item.strings_for("en")("items.e_licence_print.not_authorised")


@kiosk_loop
@pytest.mark.parametrize("licence", load_item(FOLDER).manifest.field("licence").values)
async def test_prints_each_certificate_from_the_sandbox(kiosk_services, licence):
    journey = await run_journey(kiosk_services, "e_licence_print", "c01", "code", answers={"licence": licence})
    assert journey.report.outcome is Outcome.PRINTED, journey.report.failure
    assert len(journey.documents) == 1 and journey.documents[0].startswith(b"%PDF-")
    ((label, title),) = journey.lines()
    assert label == "已打印" and title
    journey.assert_left_nothing()
