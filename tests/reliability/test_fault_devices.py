"""Faults injected into the devices, on the kiosk's real composition (`open_services`: the
sandbox platform over HTTP, the encrypted outbox, the drivers on their real protocol paths).

- The receipt printer (the TCP ESC/POS emulator) runs out of paper mid-job, then is cut off
  mid-job and stopped altogether: the submission stands and the citizen gets the case
  number with a "receipt failed" warning; the device status says paper out with the action
  `clear` (branch staff can fix it), or offline; while it is out, the next citizen is told
  before starting that this item cannot be done now (it needs the printer); once paper is back (the maintenance
  screen's "paper reloaded" re-reads the status) or the printer is back on its port, the
  next receipt prints exactly once.
- pcscd (the PC/SC daemon behind the 社保卡 reader) is restarted between two citizens' reads
  and in the middle of one: the interrupted read is a typed device failure, never a crash,
  and the next citizen reads their card.

The driver-level versions of these faults are in tests/drivers/receipt/test_printer.py and
tests/drivers/ssc/test_reader.py; these check what the citizen and ops see.
"""

from __future__ import annotations

import asyncio

import pytest

from drivers.base import DeviceFailure, DeviceState, OperatorAction, SupplyLevel
from drivers.sim.escpos_printer import Fault
from kiosk.headless import journey
from kiosk.items.testing import kiosk_config
from kiosk.journey import Outcome
from kiosk.services import open_services
from kiosk.simulation import citizen, identify_citizen
from tests.reliability.conftest import until

SUBMIT = "flexible_employment_enrol"  # a submit item whose output is a receipt
MID_JOB = 3000  # bytes: a receipt image is tens of kilobytes


async def _health_device(services, key: str) -> dict:
    """The device as the fleet sees it: the health endpoint's snapshot (kiosk/health.py)."""
    from kiosk.health import ServicesHealthSource
    from kiosk.telemetry import Telemetry
    from tests.fleet.agent.conftest import RecordingActions

    telemetry = Telemetry(services.config.resolve(services.config.paths.data_dir) / "t.sqlite3")
    try:
        snapshot = await ServicesHealthSource(services, telemetry, RecordingActions(), 0.0).snapshot()
    finally:
        telemetry.close()
    (device,) = [d for d in snapshot["devices"] if d["name"] == key]
    return device


async def _refused_up_front(services, emulator, citizen_id: str) -> None:
    records = len(await services.outbox.records())
    sent_before = emulator.received
    report = await journey(services, SUBMIT, citizen_id, "code")
    assert report.outcome is Outcome.FAILED
    assert report.failure.message_key == "items.journey.device_unavailable"
    assert str(report.failure.stage) == "catalogue"  # before any answer was given
    assert len(await services.outbox.records()) == records
    assert emulator.received == sent_before


def _receipt_warnings(report) -> list[str]:
    return [w.message_key for w in report.warnings]


@pytest.mark.asyncio
async def test_receipt_printer_out_of_paper_and_disconnected_mid_job(tmp_path):
    async with open_services(kiosk_config(tmp_path), devices={"qr", "receipt_printer"}) as services:
        printer = services.devices.devices["receipt_printer"]
        emulator = printer.simulator

        # Paper runs out in the middle of the receipt.
        emulator.fail_after(Fault.PAPER_OUT, MID_JOB)
        jobs = len(emulator.printed_jobs())
        report = await journey(services, SUBMIT, "c01", "code")
        assert report.outcome is Outcome.SUBMITTED, report.failure  # the submission stands
        assert report.case_number and report.case_number.isdigit()
        assert _receipt_warnings(report) == ["items.journey.receipt_failed"]
        assert (await services.outbox.record(report.local_ref)).state == "sent"
        assert emulator.jobs[-1].interrupted == "paper_out"
        assert len(emulator.printed_jobs()) == jobs  # no complete receipt
        status = printer.status
        assert status.supplies["paper"] is SupplyLevel.OUT
        assert status.state is DeviceState.USER_ERROR
        assert status.last_error.action is OperatorAction.CLEAR
        seen = await _health_device(services, "receipt_printer")
        assert seen["supplies"]["paper"] == "out" and seen["last_error"]["action"] == "clear", seen

        # Still out: the item needs the printer, so the next citizen is told before starting
        # (nothing stored, nothing submitted, nothing sent to the printer).
        await _refused_up_front(services, emulator, "c03")

        # Staff reload the roll and say so on the maintenance screen: the status is re-read.
        emulator.reload_paper()
        await printer.refresh_status()
        assert printer.status.state is DeviceState.ONLINE
        report = await journey(services, SUBMIT, "c04", "code")
        assert report.outcome is Outcome.SUBMITTED and report.warnings == ()
        assert len(emulator.printed_jobs()) == jobs + 1  # exactly once
        assert emulator.printed_jobs()[-1].complete

        # The cable is pulled mid-job.
        emulator.fail_after(Fault.DISCONNECT, MID_JOB)
        report = await journey(services, SUBMIT, "c05", "code")
        assert report.outcome is Outcome.SUBMITTED and report.case_number
        assert _receipt_warnings(report) == ["items.journey.receipt_failed"]
        assert printer.status.state is DeviceState.OFFLINE
        assert printer.status.last_error.code == "printer.disconnected"

        # The printer is switched off (the emulator stops listening): offline, not a crash.
        port = emulator.port
        await emulator.stop()
        await printer.refresh_status()
        assert printer.status.state is DeviceState.OFFLINE
        await _refused_up_front(services, emulator, "c06")

        # Back on the same port: the next receipt prints once.
        await emulator.start()
        assert emulator.port == port
        await printer.refresh_status()
        assert printer.status.state is DeviceState.ONLINE
        complete = len(emulator.printed_jobs())
        report = await journey(services, SUBMIT, "c07", "code")
        assert report.outcome is Outcome.SUBMITTED and report.warnings == ()
        assert len(emulator.printed_jobs()) == complete + 1


@pytest.mark.asyncio
async def test_pcscd_restarted_between_and_during_reads(tmp_path, pcscd):
    daemon = pcscd  # the session's, so the test can restart it; the services use it too
    await asyncio.to_thread(daemon.start)  # no-op when running
    try:
        async with open_services(kiosk_config(tmp_path), devices={"ssc"}) as services:
            reader = services.devices.devices["ssc"]
            card = reader.sim_card

            async def online() -> bool:
                return reader.status.state is DeviceState.ONLINE

            first = await identify_citizen(services, "c01", "ssc", item_code="x")
            assert first.name == citizen("c01").name

            # Between two citizens: the next one comes at once, before the reader's watch
            # (every 2 s) has looked — its PC/SC context from the old pcscd is dead.
            await asyncio.to_thread(daemon.restart)
            second = await identify_citizen(services, "c02", "ssc", item_code="x")
            assert second.name == citizen("c02").name

            # In the middle of a read: every APDU slowed, pcscd restarted while it runs.
            card.delay_s = 0.15
            reading = asyncio.create_task(identify_citizen(services, "c03", "ssc", item_code="x"))
            await until(lambda: _true(reader.status.state is DeviceState.BUSY or card.connected),
                        5, "the read under way")
            await asyncio.sleep(0.4)
            await asyncio.to_thread(daemon.restart)
            with pytest.raises(DeviceFailure) as caught:  # typed, with a message for the citizen
                await reading
            assert caught.value.message_key, caught.value
            card.delay_s = 0.0
            if reader.status.state is DeviceState.ONLINE:  # the read already re-established
                assert reader.status.last_error is not None
            else:
                await until(online, 15, "the reader back online after the restart mid-read")
            third = await identify_citizen(services, "c04", "ssc", item_code="x")
            assert third.name == citizen("c04").name
            assert third.id_number == citizen("c04").id_number
    finally:
        await asyncio.to_thread(daemon.start)  # running again for the tests after this one


async def _true(value: bool) -> bool:
    return value
