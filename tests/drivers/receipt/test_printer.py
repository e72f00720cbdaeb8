"""The receipt printer driver on its real TCP path (python-escpos Network) against the
emulator: printing, reading the printed raster back, and every way a job can go wrong."""

import asyncio
import contextlib
import datetime as dt
import re
import socket
import time

import pytest
import pytest_asyncio
import zxingcpp
from PIL import Image, ImageChops

from drivers.base import (
    DeviceFailure,
    DeviceState,
    ErrorKind,
    Lifecycle,
    LifecycleError,
    OperatorAction,
    SupplyLevel,
)
from drivers.receipt.printer import ReceiptPrinter, create, encode_job
from drivers.receipt.status import (
    ReceiptCoverOpen,
    ReceiptPaperOut,
    ReceiptPrinterHardwareError,
    ReceiptPrinterOffline,
)
from drivers.sim.escpos_printer import EscposPrinterEmulator, Fault, Paper
from drivers.sim.pty import PtyPair
from kiosk.config import ReceiptPrinterSection
from kiosk.documents import Receipt, ReceiptLine, render_receipt
from kiosk.i18n import Translator

PAYLOAD = "https://zwfw.jiangsu.gov.cn/q?c=SQ3202002025000123"
MID_JOB = 20_000  # bytes: a receipt job is ~45-70 kB, so this lands inside the image


@pytest.fixture(scope="module")
def receipt_image() -> Image.Image:
    return render_receipt(
        Receipt(
            title="办件回执 Receipt",
            reference_label="办件编号 Case No.",
            reference="SQ3202002025000123",
            kiosk_id="WX-BH-0012",
            issued_at=dt.datetime(2025, 3, 1, 10, 11, 12),
            lines=[ReceiptLine("申请人 Applicant", "张*"), ReceiptLine("状态", "已受理")],
            qr_payload=PAYLOAD,
        )
    )


@pytest_asyncio.fixture
async def emulator():
    async with EscposPrinterEmulator() as emu:
        yield emu


def section(port: int, timeout_s: float = 3.0) -> ReceiptPrinterSection:
    return ReceiptPrinterSection(
        connection="network", host="127.0.0.1", port=port, timeout_s=timeout_s
    )


@pytest_asyncio.fixture
async def printer(emulator):
    device = ReceiptPrinter(section(emulator.port))
    device.events = []
    device.subscribe(device.events.append)
    yield device
    await device.close()


def errors(device) -> list[str]:
    return [e.error.code for e in device.events if e.kind == "error"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.asyncio
async def test_prints_the_receipt_and_its_qr_reads_back(printer, emulator, receipt_image):
    await printer.start()
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.supplies["paper"] is SupplyLevel.FULL
    assert printer.status.info.vendor == "Epson"

    result = await printer.print_receipt(receipt_image)

    (job,) = emulator.jobs
    assert job.complete and job.cut
    assert bytes(job.data) == encode_job(receipt_image)  # every byte arrived, in order
    assert result.bytes_sent == len(job.data)
    printed = job.image()
    assert printed.size == receipt_image.size
    assert ImageChops.difference(printed.convert("L"), receipt_image.convert("L")).getbbox() is None
    (code,) = zxingcpp.read_barcodes(printed.convert("L"))
    assert code.text == PAYLOAD
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.last_error is None
    assert emulator.status_queries == 3 * 4  # open, before and after the job


@pytest.mark.asyncio
async def test_paper_near_end_makes_supplies_low_and_still_prints(
    printer, emulator, receipt_image
):
    await printer.start()
    emulator.condition.paper = Paper.NEAR_END
    await printer.print_receipt(receipt_image)

    assert emulator.jobs[-1].complete
    assert printer.status.supplies["paper"] is SupplyLevel.LOW
    assert printer.status.state is DeviceState.ONLINE
    thresholds = [(e.supply, e.level) for e in printer.events if e.kind == "threshold"]
    assert thresholds == [("paper", SupplyLevel.LOW)]
    await printer.refresh_status()  # still low: no second threshold event
    assert len([e for e in printer.events if e.kind == "threshold"]) == 1


@pytest.mark.asyncio
async def test_paper_out_before_a_job_refuses_it_and_prints_nothing(
    printer, emulator, receipt_image
):
    emulator.condition.paper = Paper.OUT
    await printer.start()
    assert printer.status.state is DeviceState.USER_ERROR

    with pytest.raises(ReceiptPaperOut) as caught:
        await printer.print_receipt(receipt_image)

    assert caught.value.message_key == "device.receipt.paper_out"
    assert Translator()(caught.value.message_key).startswith("凭条打印机缺纸")
    assert not caught.value.during_job
    assert emulator.jobs == [] and emulator.received == 3 * 2 * 4  # status queries only
    status = printer.status
    assert status.supplies["paper"] is SupplyLevel.OUT
    assert status.state is DeviceState.USER_ERROR
    assert status.last_error.code == "printer.paper_out"
    assert status.last_error.kind is ErrorKind.USER
    assert status.last_error.action is OperatorAction.CLEAR
    assert errors(printer) == ["printer.paper_out"]  # one event for one empty roll


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "failure", "code", "action", "state"),
    [
        ("cover_open", ReceiptCoverOpen, "printer.cover_open", OperatorAction.CLEAR,
         DeviceState.USER_ERROR),
        ("cutter_error", ReceiptPrinterHardwareError, "printer.cutter",
         OperatorAction.MAINTENANCE, DeviceState.HARDWARE_ERROR),
        ("offline", ReceiptPrinterOffline, "printer.offline", OperatorAction.RESET,
         DeviceState.OFFLINE),
    ],
)
async def test_printer_faults_refuse_the_job(
    printer, emulator, receipt_image, fault, failure, code, action, state
):
    await printer.start()
    setattr(emulator.condition, fault, True)
    with pytest.raises(failure):
        await printer.print_receipt(receipt_image)
    assert emulator.jobs == []
    assert printer.status.state is state
    assert printer.status.last_error.code == code
    assert printer.status.last_error.action is action


@pytest.mark.asyncio
async def test_paper_running_out_mid_job_is_a_typed_error_then_recovers(
    printer, emulator, receipt_image
):
    await printer.start()
    emulator.fail_after(Fault.PAPER_OUT, MID_JOB)

    with pytest.raises(ReceiptPaperOut) as caught:
        await printer.print_receipt(receipt_image)

    assert caught.value.during_job
    (job,) = emulator.jobs
    assert job.interrupted == "paper_out" and not job.complete
    assert printer.status.supplies["paper"] is SupplyLevel.OUT
    assert printer.status.state is DeviceState.USER_ERROR
    assert printer.status.last_error.action is OperatorAction.CLEAR

    emulator.reload_paper()  # staff reload the roll; the citizen prints again
    await printer.print_receipt(receipt_image)
    assert emulator.jobs[-1].complete
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.supplies["paper"] is SupplyLevel.FULL


@pytest.mark.asyncio
async def test_printer_disconnected_mid_job_is_offline_then_reconnects(
    printer, emulator, receipt_image
):
    await printer.start()
    emulator.fail_after(Fault.DISCONNECT, MID_JOB)

    with pytest.raises(ReceiptPrinterOffline) as caught:
        await printer.print_receipt(receipt_image)

    assert caught.value.code == "printer.disconnected"
    assert caught.value.message_key == "device.receipt.offline"
    assert printer.status.state is DeviceState.OFFLINE
    assert printer.status.last_error.code == "printer.disconnected"
    assert emulator.jobs[0].interrupted == "disconnect"

    await printer.print_receipt(receipt_image)  # a fresh connection per job
    assert emulator.jobs[-1].complete
    assert printer.status.state is DeviceState.ONLINE


@pytest.mark.asyncio
async def test_a_silent_printer_fails_within_timeout_s(emulator, receipt_image):
    device = ReceiptPrinter(section(emulator.port, timeout_s=1.0))
    await device.start()
    emulator.fail_after(Fault.STALL, MID_JOB)
    started = time.monotonic()
    with pytest.raises(ReceiptPrinterOffline) as caught:
        await device.print_receipt(receipt_image)
    elapsed = time.monotonic() - started
    await device.close()
    assert caught.value.code == "printer.timeout"
    assert 0.9 < elapsed < 1.9
    assert device.status.last_error.code == "printer.timeout"


@pytest.mark.asyncio
async def test_unreachable_printer_is_offline(receipt_image):
    device = ReceiptPrinter(section(free_port(), timeout_s=2.0))
    await device.start()  # the kiosk starts anyway; the printer may be switched on later
    assert device.status.lifecycle is Lifecycle.ENABLED
    assert device.status.state is DeviceState.OFFLINE
    assert device.status.last_error.code == "printer.unreachable"

    started = time.monotonic()
    with pytest.raises(ReceiptPrinterOffline) as caught:
        await device.print_receipt(receipt_image)
    assert time.monotonic() - started < 1.0  # refused at once, not after the timeout
    assert caught.value.message_key == "device.receipt.offline"
    result = await device.selftest()
    assert not result.ok and "printer.unreachable" in result.detail
    await device.close()


@pytest.mark.asyncio
async def test_printer_switched_off_and_on_again(receipt_image):
    emulator = EscposPrinterEmulator()
    await emulator.start()
    port = emulator.port
    device = ReceiptPrinter(section(port))
    try:
        await device.start()
        await emulator.stop()
        await device.refresh_status()
        assert device.status.state is DeviceState.OFFLINE

        emulator = EscposPrinterEmulator(port=port)
        await emulator.start()
        await device.refresh_status()
        assert device.status.state is DeviceState.ONLINE
        await device.print_receipt(receipt_image)
        assert emulator.jobs[0].complete
    finally:
        await device.close()
        await emulator.stop()


@pytest.mark.asyncio
async def test_junk_status_answers_are_a_typed_error(receipt_image):
    async def not_a_printer(reader, writer):
        with contextlib.suppress(ConnectionError):
            while await reader.read(4096):
                writer.write(b"HTTP")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_a_printer, "127.0.0.1", 0)
    device = ReceiptPrinter(section(server.sockets[0].getsockname()[1]))
    try:
        await device.start()
        assert device.status.state is DeviceState.HARDWARE_ERROR
        assert device.status.last_error.code == "printer.bad_status"
        with pytest.raises(ReceiptPrinterHardwareError):
            await device.print_receipt(receipt_image)
    finally:
        await device.close()
        server.close()
        await server.wait_closed()


@pytest.mark.asyncio
async def test_create_starts_the_emulator_for_sim(receipt_image):
    async with contextlib.AsyncExitStack() as stack:
        device = await create(ReceiptPrinterSection(connection="sim"), stack=stack)
        assert device.status.lifecycle is Lifecycle.CLOSED  # unopened
        assert device.section.connection == "network" and device.section.port == device.sim.port
        await device.start()
        await device.print_receipt(receipt_image)
        assert device.sim.jobs[0].complete
        selftest = await device.selftest()
        assert selftest.ok, selftest.detail
    assert device.status.lifecycle is Lifecycle.CLOSED
    assert not device.sim.running


@pytest.mark.asyncio
async def test_print_needs_an_enabled_printer(printer, receipt_image):
    with pytest.raises(LifecycleError):
        await printer.print_receipt(receipt_image)


def test_realtime_commands_never_reach_the_printer_inside_image_data():
    # A raster row whose bytes read 10 04 01 (DLE EOT 1) and 10 14 02 (DLE DC4: power off).
    row = bytes([0x10, 0x04, 0x01, 0x00, 0x10, 0x14, 0x02]) + bytes(65)
    image = Image.frombytes("1", (576, 1), bytes(255 - b for b in row))
    data = encode_job(image)
    assert not re.search(rb"\x10[\x04\x05\x14]", data)
    assert data.count(b"\x1dv0") == 1


@pytest.mark.asyncio
async def test_cancelled_job_aborts_the_connection_without_hanging(emulator, receipt_image):
    device = ReceiptPrinter(section(emulator.port, timeout_s=5.0))
    await device.start()
    emulator.fail_after(Fault.STALL, MID_JOB)
    job = asyncio.create_task(device.print_receipt(receipt_image))
    await asyncio.sleep(0.3)
    job.cancel()
    started = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert time.monotonic() - started < 1.0
    assert device.status.state is DeviceState.ONLINE  # unknown until the next poll
    await device.close()


@pytest.mark.asyncio
async def test_serial_printer_on_a_pty(receipt_image):
    with PtyPair() as line:
        emulator = EscposPrinterEmulator()
        emulator.serve_serial(line.master_fd)
        device = ReceiptPrinter(
            ReceiptPrinterSection(connection="serial", serial_port=line.slave_path, timeout_s=3)
        )
        try:
            await device.start()
            assert device.status.state is DeviceState.ONLINE
            await device.print_receipt(receipt_image)
            (job,) = emulator.jobs
            assert job.complete
            assert zxingcpp.read_barcodes(job.image().convert("L"))[0].text == PAYLOAD

            emulator.condition.paper = Paper.OUT
            with pytest.raises(ReceiptPaperOut):
                await device.print_receipt(receipt_image)
            assert len(emulator.jobs) == 1
        finally:
            await device.close()
            await emulator.stop()


@pytest.mark.asyncio
async def test_missing_serial_port_is_no_device():
    device = ReceiptPrinter(
        ReceiptPrinterSection(connection="serial", serial_port="/dev/does-not-exist")
    )
    with pytest.raises(ReceiptPrinterOffline):
        await device.open()
    assert device.status.state is DeviceState.NO_DEVICE
    assert device.status.lifecycle is Lifecycle.CLOSED


@pytest.mark.asyncio
async def test_usb_printer_that_is_not_plugged_in_reports_no_device():
    async with contextlib.AsyncExitStack() as stack:
        # Vendor/product ids that no machine here has: pyusb and libusb run for real.
        section = ReceiptPrinterSection(connection="usb", usb_vendor=0xFFFE, usb_product=0xFFFD)
        printer = await create(section, stack=stack)
        with pytest.raises(DeviceFailure) as info:
            await printer.start()
        assert info.value.code == "printer.unreachable"
        assert printer.status.state is DeviceState.NO_DEVICE
