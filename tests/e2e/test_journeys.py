"""Whole journeys without the UI, on everything real but the hardware: the sandbox platform
over HTTP, the encrypted outbox, pcscd + vpcd for the 社保卡, a pty for the SAM and the
scanner, TCP for the receipt printer and CUPS' ippeveprinter for A4."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from kiosk.config import KioskConfig
from kiosk.headless import journey
from kiosk.journey import Outcome
from kiosk.platform.api import CaseState, RatingLevel
from kiosk.platform.sandbox.seed import CITIZENS
from kiosk.services import open_services

KIOSK = Path(sys.executable).with_name("kiosk")
in_module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(tmp_path_factory):
    data = tmp_path_factory.mktemp("kiosk")
    config = KioskConfig.model_validate({"paths": {"data_dir": str(data)}})
    async with open_services(config) as services:
        yield services


@in_module_loop
async def test_print_item_via_code_prints_the_real_pdf(services):
    a4 = services.devices.devices["a4_printer"]
    before = len(a4.simulator.spooled_documents())
    report = await journey(services, "ssc_participation_cert", "c01", "code")
    assert report.outcome is Outcome.PRINTED, report.failure
    assert report.identity.startswith("code 3201") and "张*" in report.identity
    assert report.documents_printed == 1 and report.rated is RatingLevel.VERY_SATISFIED
    spooled = a4.simulator.spooled_documents()
    assert len(spooled) == before + 1
    assert spooled[-1].read_bytes().startswith(b"%PDF")


@in_module_loop
async def test_print_item_via_id_card(services):
    report = await journey(services, "real_estate_info", "c03", "idcard")
    assert report.outcome is Outcome.PRINTED, report.failure
    assert report.identity.startswith("idcard 3205")


@in_module_loop
async def test_submit_via_social_security_card_gives_a_case_and_a_receipt(services):
    receipt_printer = services.devices.devices["receipt_printer"]
    jobs_before = len(receipt_printer.simulator.printed_jobs())
    report = await journey(services, "flexible_employment_enrol", "c03", "ssc")
    assert report.outcome is Outcome.SUBMITTED, report.failure
    assert report.case_number and report.case_number.isdigit()
    assert report.identity.startswith("ssc 3205")
    jobs = receipt_printer.simulator.printed_jobs()
    assert len(jobs) == jobs_before + 1 and jobs[-1].complete
    # The outbox holds the record as sent, with the platform's case number.
    record = await services.outbox.record(report.local_ref)
    assert record.state == "sent"
    status = await services.platform.query_case(report.case_number)
    assert status.state in set(CaseState)

    # 办件进度: the same case, asked by its number.
    progress = await journey(
        services, "case_progress", "c03", "code", answers={"case_number": report.case_number}
    )
    assert progress.outcome is Outcome.ANSWERED, progress.failure


@in_module_loop
async def test_query_item_via_id_card(services):
    report = await journey(services, "ssc_payment_records", "c04", "idcard")
    assert report.outcome is Outcome.ANSWERED, report.failure
    assert report.documents_printed == 0


@in_module_loop
async def test_each_code_works_once(services):
    from kiosk.platform.api import CodeReplayed
    from kiosk.simulation import fresh_code

    code = await fresh_code(services, "c02")
    await services.platform.verify_code(code, item_code="320000-SB-DY-0001")
    with pytest.raises(CodeReplayed):
        await services.platform.verify_code(code, item_code="320000-SB-DY-0001")


@in_module_loop
async def test_nothing_personal_in_the_outbox_file(services):
    database = services.config.resolve(services.config.paths.data_dir) / "outbox.sqlite3"
    wal = Path(f"{database}-wal")
    raw = database.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    for c in CITIZENS:
        assert c.id_number.encode() not in raw
        assert c.name.encode() not in raw
        assert c.phone.encode() not in raw


def test_kiosk_journey_command_prints_its_report(tmp_path):
    result = subprocess.run(
        [KIOSK, "journey", "ssc_rights_record", "--citizen", "c01", "--via", "idcard", "--json"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "printed" and report["ok"] is True
    assert report["identity"].startswith("idcard 3201")
    assert [s["state"] for s in report["steps"]][0] == "identify"
    # The log (stderr) masks the citizen: no raw ID number, name or phone of c01.
    c01 = CITIZENS[0]
    for secret in (c01.id_number, c01.name, c01.phone):
        assert secret not in result.stderr and secret not in result.stdout
