"""电子证照打印: loads, lints clean, offers and prints only what the 苏服码 authorised."""

from pathlib import Path

import pytest

from kiosk.items.hooks import HookContext, MaskedIdentity
from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import FailureKind, Outcome
from kiosk.platform.api import CertificateType
from tests.kiosk.items.fakes import TODAY, Kit, assert_left_nothing, citizen

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
async def test_prints_the_chosen_certificate():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(authorised=AUTHORISED), {"licence": "household_register"})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert kit.platform.fetched == [(CertificateType.HOUSEHOLD_REGISTER,)]
    assert len(kit.a4.jobs) == 1
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_an_unauthorised_certificate_is_refused_before_asking_the_platform():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(authorised=AUTHORISED), {"licence": "real_estate_info"})
    assert report.failure.kind is FailureKind.ANSWERS
    assert kit.platform.fetched == []


def test_the_refusal_is_translated():
    item = load_item(FOLDER)
    assert "授权" in item.strings_for("zh_CN")("items.e_licence_print.not_authorised")
    assert "authorise" in item.strings_for("en")("items.e_licence_print.not_authorised")
