"""Faults on the way to the platform and on the kiosk's own disk, on the real composition
(`open_services`): the sandbox platform over HTTP, the encrypted outbox and its sender, the
simulated scanner, ID-card reader and printers.

- The platform unreachable (a TCP relay in front of the sandbox is closed: connections
  refused, open ones cut): a submission is queued in the outbox and the citizen gets "queued"
  with a local reference (`Q-…`, also on the receipt); a print item and a query item fail
  with the plain "network" message and print nothing; a 苏服码 cannot be verified. When the
  platform is back (its first answer lost on the way, so the sender must resend the same
  idempotency key) the outbox drains to exactly one case.
- The outbox's disk full (a real 256 KiB tmpfs, filled): the submission fails with the
  "not saved, nothing was submitted" message, nothing is printed, no case exists, the
  outbox says SQLITE_FULL; with space again the next citizen's submission goes through.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from kiosk.config import KioskConfig
from kiosk.headless import journey
from kiosk.i18n import Translator
from kiosk.items.examples import example_answers
from kiosk.journey import FailureKind, Outcome
from kiosk.outbox.store import OutboxUnavailable
from kiosk.platform.api import PlatformError
from kiosk.platform.sandbox.embedded import embedded_sandbox
from kiosk.services import LOCAL_REF_PREFIX, open_services
from kiosk.simulation import citizen, identify_citizen
from tests.fleet.agent.test_agent_e2e import Relay
from tests.reliability.conftest import until

SUBMIT = "flexible_employment_enrol"
DEVICES = {"qr", "id_card", "receipt_printer", "a4_printer"}


def _config(data: Path, url: str) -> KioskConfig:
    return KioskConfig.model_validate({
        "paths": {"data_dir": str(data)},
        "platform": {"url": url, "timeout_s": 2.0},
    })


async def _submit_as(services, identity, citizen_id: str):
    """The submit item for an identity obtained earlier (the platform went away after the
    citizen identified), as `kiosk.headless.journey` runs it."""
    item = services.items.get(SUBMIT)
    seed = citizen(citizen_id)
    answers = example_answers(item.manifest, dt.date.today(), phone=seed.phone,
                              id_number=seed.id_number)
    shown = []
    report = await services.engine().run(item, identity, answers, commitment_accepted=True,
                                         on_result=shown.append)
    return report, shown


def _cases(sandbox_dir: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(f"file:{sandbox_dir / 'sandbox.sqlite3'}?mode=ro",
                                            uri=True)) as db:
        return db.execute("SELECT case_number, item_id FROM cases WHERE item_id = ?",
                          (SUBMIT,)).fetchall()


@pytest.mark.asyncio
async def test_platform_unreachable_queues_what_can_wait_and_drains_once(tmp_path):
    t = Translator("zh_CN")
    async with embedded_sandbox(tmp_path / "sandbox") as sandbox:
        relay = Relay(int(sandbox.url.rsplit(":", 1)[1]))
        await relay.up()
        try:
            async with open_services(_config(tmp_path / "kiosk", relay.url), devices=DEVICES) as services:
                # Retry quickly: the test waits seconds, not the production minutes.
                services.sender.base_delay, services.sender.max_delay = 0.2, 1.0
                printer = services.devices.devices["receipt_printer"].simulator
                a4 = services.devices.devices["a4_printer"].simulator
                item_code = services.items.get(SUBMIT).item_code
                identity = await identify_citizen(services, "c01", "code", item_code=item_code)

                await relay.down()  # the platform is gone
                receipts, documents = len(printer.printed_jobs()), len(a4.spooled_documents())
                report, shown = await _submit_as(services, identity, "c01")
                assert report.outcome is Outcome.QUEUED, report.failure
                assert report.case_number is None
                assert report.local_ref.startswith(LOCAL_REF_PREFIX)
                (screen,) = shown
                assert report.local_ref in [line.value for line in screen.lines]
                assert len(printer.printed_jobs()) == receipts + 1  # the receipt, with the Q- ref
                assert (await services.outbox.pending_count()) == 1

                for item_id in ("ssc_participation_cert", "ssc_payment_records"):  # print, query
                    report = await journey(services, item_id, "c03", "idcard")
                    assert report.outcome is Outcome.FAILED
                    assert report.failure.kind is FailureKind.PLATFORM
                    assert report.failure.message_key == "platform.unavailable"
                    assert report.failure.retryable
                    text = t(report.failure.message_key, "zh_CN")
                    assert "网络" in text and "稍后" in text, text  # plain words: network, later
                assert len(a4.spooled_documents()) == documents  # nothing printed
                with pytest.raises(PlatformError) as caught:  # a 苏服码 cannot be checked
                    await services.platform.verify_code("SFM1" + "A" * 40, item_code=item_code)
                assert caught.value.retryable
                assert _cases(tmp_path / "sandbox") == []

                # Back, but the first answer is lost: the platform has the case, the kiosk
                # does not know and sends again with the same key.
                relay.swallow = 1
                await relay.up()

                async def drained() -> bool:
                    return await services.outbox.pending_count() == 0

                await until(drained, 30, "the outbox to drain")
                (record,) = await services.outbox.records()
                assert record.state == "sent" and record.case_number
                assert relay.swallow == 0, "the lost answer never happened"
                assert _cases(tmp_path / "sandbox") == [(record.case_number, SUBMIT)]  # exactly one
        finally:
            await relay.down()


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True)
    return done.returncode == 0


def _fill(path: Path) -> Path:
    """Write until the file system says ENOSPC."""
    filler = path / "filler"
    chunk = b"\0" * 4096
    with filler.open("wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
    return filler


@pytest.mark.asyncio
async def test_outbox_disk_full_never_says_submitted(tmp_path):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "256k"):
        pytest.skip("cannot mount a tmpfs here (needs root): the outbox's own cap "
                    "(max_bytes, tests/kiosk/outbox/test_store.py) covers SQLITE_FULL instead")
    try:
        async with embedded_sandbox(tmp_path / "sandbox") as sandbox:
            config = _config(disk / "kiosk", sandbox.url)
            async with open_services(config, devices={"qr", "receipt_printer"}) as services:
                printer = services.devices.devices["receipt_printer"].simulator
                first = await journey(services, SUBMIT, "c01", "code")
                assert first.outcome is Outcome.SUBMITTED, first.failure

                filler = _fill(disk)
                assert os.statvfs(disk).f_bavail == 0
                received = printer.received
                report = await journey(services, SUBMIT, "c03", "code")
                assert report.outcome is Outcome.FAILED
                assert report.failure.kind is FailureKind.NOT_SAVED
                assert report.failure.message_key == "items.journey.not_saved"
                assert report.case_number is None and report.local_ref is None
                zh = Translator("zh_CN")(report.failure.message_key, "zh_CN")
                assert "未能保存" in zh and "没有提交" in zh, zh  # "not saved, nothing submitted"
                assert printer.received == received  # no receipt
                assert [c for c, _ in _cases(tmp_path / "sandbox")] == [first.case_number]
                with pytest.raises(OutboxUnavailable) as caught:  # what ops see in the log
                    from tests.kiosk.outbox import make_application

                    await services.outbox.put(make_application())
                assert caught.value.code == "SQLITE_FULL", caught.value.code

                filler.unlink()  # space again
                report = await journey(services, SUBMIT, "c04", "code")
                assert report.outcome is Outcome.SUBMITTED, report.failure
                assert len(_cases(tmp_path / "sandbox")) == 2
                assert (await services.outbox.pending_count()) == 0
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
