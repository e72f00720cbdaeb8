"""The registry: the ten shipped items, lookups, broken folders left out, and which items a
citizen is offered with which identity, devices and catalogue — and why the others are not."""

from __future__ import annotations

import pytest

from drivers.base import DeviceClass
from kiosk.identity.model import IdentitySource
from kiosk.items.hooks import Strings
from kiosk.items.registry import HiddenBecause, ItemRegistry, UnknownItem
from kiosk.items.testing import citizen, write_item
from kiosk.platform.api import CatalogueEntry

ALL_DEVICES = set(DeviceClass)
SHIPPED = {
    "ssc_participation_cert", "ssc_rights_record", "housing_fund_deposit_cert", "real_estate_info",
    "household_register_cert", "e_licence_print", "ssc_payment_records", "housing_fund_balance",
    "case_progress", "flexible_employment_enrol",
}


@pytest.fixture(scope="module")
def registry() -> ItemRegistry:
    return ItemRegistry.load()


def shown(registry, identity, devices=ALL_DEVICES, catalogue=None) -> set[str]:
    return {item.id for item in registry.available(identity, devices, catalogue)}


def test_loads_the_ten_items(registry):
    assert {item.id for item in registry} == SHIPPED
    assert registry.broken == {}
    assert len(registry) == 10 and "case_progress" in registry


def test_lookup_by_id_and_code(registry):
    item = registry.get("housing_fund_balance")
    assert registry.by_code(item.item_code) is item
    with pytest.raises(UnknownItem):
        registry.get("nope")
    with pytest.raises(UnknownItem):
        registry.by_code("000000")


def test_social_security_card_holder(registry):
    assert shown(registry, citizen(IdentitySource.SSC)) == SHIPPED - {
        "housing_fund_deposit_cert", "real_estate_info", "household_register_cert", "e_licence_print",
    }


def test_id_card_holder(registry):
    hidden = SHIPPED - shown(registry, citizen(IdentitySource.ID_CARD))
    assert hidden == {"household_register_cert", "e_licence_print", "flexible_employment_enrol"}


def test_code_holder_sees_everything(registry):
    assert shown(registry, citizen(IdentitySource.SUFU_CODE)) == SHIPPED


def test_nobody_identified_yet_sees_only_case_progress(registry):
    assert shown(registry, None) == {"case_progress"}


def test_printer_down_hides_print_items_and_says_why(registry):
    offers = registry.offers(citizen(), ALL_DEVICES - {DeviceClass.A4_PRINTER})
    hidden = {offer.item.id: offer.hidden for offer in offers if not offer.shown}
    assert set(hidden) == {i.id for i in registry if i.kind == "print"}
    (reason,) = hidden["ssc_participation_cert"]
    assert reason.reason is HiddenBecause.DEVICE and reason.device is DeviceClass.A4_PRINTER
    t = Strings({}, "zh_CN")
    text = t(reason.message_key, **{k: t(v) for k, v in reason.params.items()})
    assert text == "A4打印机暂时无法使用，此事项暂停办理。"
    assert Strings({}, "en")(reason.message_key, device="The A4 printer").startswith("The A4 printer")


def test_receipt_printer_down_hides_the_submission_only(registry):
    gone = SHIPPED - shown(registry, citizen(), ALL_DEVICES - {DeviceClass.RECEIPT_PRINTER})
    assert gone == {"flexible_employment_enrol"}


def test_catalogue_decides_what_is_offered(registry):
    balance = registry.get("housing_fund_balance")
    records = registry.get("ssc_payment_records")
    catalogue = [
        CatalogueEntry(balance.id, balance.item_code, "1.0.0"),
        CatalogueEntry(records.id, records.item_code, "1.0.0", enabled=False),
    ]
    offers = {o.item.id: o for o in registry.offers(citizen(), ALL_DEVICES, catalogue)}
    assert offers["housing_fund_balance"].shown
    assert offers["ssc_payment_records"].hidden[0].reason is HiddenBecause.DISABLED
    assert offers["case_progress"].hidden[0].reason is HiddenBecause.NOT_IN_CATALOGUE


def test_every_hidden_reason_is_translated(registry):
    for reason in HiddenBecause:
        for locale in ("zh_CN", "en"):
            assert Strings({}, locale).has(f"items.hidden.{reason}")


def test_a_broken_folder_is_left_out_not_fatal(tmp_path):
    write_item(tmp_path, "good_item", code="TEST-0001")
    write_item(tmp_path, "bad_item", 'id = "bad_item"\nversion = [', code="TEST-0002")
    registry = ItemRegistry.load(tmp_path)
    assert [item.id for item in registry] == ["good_item"]
    assert "TOML syntax error" in str(registry.broken["bad_item"])


def test_a_second_item_with_the_same_code_is_left_out(tmp_path):
    write_item(tmp_path, "first_item", code="TEST-0001")
    write_item(tmp_path, "second_item", code="TEST-0001")
    registry = ItemRegistry.load(tmp_path)
    assert [item.id for item in registry] == ["first_item"]
    assert "already taken" in str(registry.broken["second_item"])
