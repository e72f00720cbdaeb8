"""户籍证明打印: loads, lints clean, prints with the 苏服码's authorisation, not without it."""

from pathlib import Path

import pytest

from kiosk.items.lint import lint
from kiosk.items.loader import load_item
from kiosk.journey import FailureKind, Outcome
from tests.kiosk.items.fakes import Kit, assert_left_nothing, citizen

FOLDER = Path(__file__).resolve().parents[1]


def test_lints_clean():
    assert lint(FOLDER) == []


@pytest.mark.asyncio
async def test_prints_with_the_code():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(), {})
    assert report.outcome is Outcome.PRINTED, report.failure
    assert_left_nothing(kit, report)


@pytest.mark.asyncio
async def test_an_authorisation_without_this_certificate_is_refused_by_the_platform():
    kit = Kit()
    report = await kit.run(load_item(FOLDER), citizen(authorised=["id_card_licence"]), {})
    assert report.failure.kind is FailureKind.PLATFORM
    assert report.failure.message_key == "platform.not_authorized"
    assert kit.a4.jobs == []
    assert_left_nothing(kit, report)
