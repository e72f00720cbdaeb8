"""The A4 printer driver against a real IPP peer (CUPS' ippeveprinter), plus the pure
printer-state-reasons mapping."""

import asyncio
import contextlib
import io
import time

import pytest
import pytest_asyncio
from PIL import Image, ImageDraw

from drivers.a4 import (
    A4Printer,
    PaperJam,
    PaperOut,
    PrinterMisconfigured,
    PrinterOffline,
    PrintJobFailed,
    PrintTimeout,
    create,
)
from drivers.a4 import ipp
from drivers.a4.printer import PrinterFault, TonerOut, interpret, split_reason
from drivers.base import DeviceState, ErrorKind, Lifecycle, OperatorAction, SupplyLevel
from drivers.sim.ippeve import IppEvePrinter, free_port
from kiosk import i18n
from kiosk.config import A4PrinterSection

module_loop = pytest.mark.asyncio(loop_scope="module")


def _pdf() -> bytes:
    """A small, valid one-page A4 PDF (Pillow writes a real PDF with an image XObject)."""
    page = Image.new("L", (210, 297), 255)
    ImageDraw.Draw(page).rectangle((20, 20, 190, 60), outline=0, width=3)
    out = io.BytesIO()
    page.save(out, "PDF", resolution=25.4)
    return out.getvalue()


PDF = _pdf()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim():
    async with IppEvePrinter() as printer:
        yield printer


@pytest_asyncio.fixture(loop_scope="module")
async def peer(sim):
    """The shared peer, healthy and idle at the start of every test."""
    await sim.wait_idle(timeout=15)
    sim.clear_faults()
    sim.set_job_seconds(0.2)
    await sim.load_paper()
    await sim.set_toner(100)
    yield sim
    sim.clear_jam()  # a failing jam test must not leave the print command waiting


@pytest_asyncio.fixture(loop_scope="module")
async def printer(peer):
    device = A4Printer("a4", uri=peer.uri, timeout_s=10, status_interval_s=None,
                       poll_interval_s=0.1)
    device.events = []
    device.subscribe(device.events.append)
    await device.start()
    yield device
    await device.close()


async def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# -- against the peer -----------------------------------------------------------------------
@module_loop
async def test_prints_a_pdf_that_arrives_byte_identical(printer, peer):
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.supplies == {"paper": SupplyLevel.FULL, "toner": SupplyLevel.FULL}
    assert printer.status.info.model == "Example Printer"
    peer.set_job_seconds(0.5)  # long enough for a status poll to see the printer busy

    result = await printer.print_pdf(PDF, "CASE-2024-0001")

    assert peer.document(result.job_id) == PDF
    spooled = [p.name for p in peer.spooled_documents() if p.name.startswith(f"{result.job_id}-")]
    assert spooled == [f"{result.job_id}-case-2024-0001.pdf"]
    assert result.busy_retries == 0
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.last_error is None
    states = [e.changes["state"] for e in printer.events if "state" in e.changes]
    assert DeviceState.BUSY in states  # printer-state processing while the job ran


@module_loop
async def test_selftest_reports_a_healthy_printer(printer):
    result = await printer.selftest()
    assert result.ok, result.detail
    assert "Example Printer" in result.detail


@module_loop
async def test_paper_out_waits_then_fails_typed_and_cancels_the_job(printer, peer):
    await peer.paper_out()
    printer.command_timeout = 1.5
    started = time.monotonic()

    with pytest.raises(PaperOut) as caught:
        await printer.print_pdf(PDF, "CASE-2")

    assert 1.4 < time.monotonic() - started < 4
    assert caught.value.message_key == "device.a4.paper_out"
    status = printer.status
    assert status.supplies["paper"] is SupplyLevel.OUT
    assert status.state is DeviceState.USER_ERROR
    assert status.last_error.code == "printer.paper_out"
    assert status.last_error.action is OperatorAction.CLEAR
    assert any(e.kind == "threshold" and e.supply == "paper" and e.level is SupplyLevel.OUT
               for e in printer.events)
    # The job was canceled at the printer: it must not print when staff refill the tray.
    await peer.load_paper()
    await peer.wait_idle()
    assert await peer.job_state(printer.last_job_id) is ipp.JobState.CANCELED
    await printer.refresh()
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.supplies["paper"] is SupplyLevel.FULL


@module_loop
async def test_a_job_waiting_for_paper_completes_after_refill(printer, peer):
    await peer.paper_out()
    job = asyncio.create_task(printer.print_pdf(PDF, "CASE-3"))
    await _until(lambda: printer.status.supplies.get("paper") is SupplyLevel.OUT)
    assert printer.status.state is DeviceState.USER_ERROR
    assert not job.done()

    await peer.load_paper()
    result = await job

    assert peer.document(result.job_id) == PDF
    assert printer.status.supplies["paper"] is SupplyLevel.FULL
    assert printer.status.state is DeviceState.ONLINE


@module_loop
async def test_paper_low_and_toner_low_are_warnings_with_threshold_events(printer, peer):
    await peer.load_paper(5)
    await peer.set_toner(5)
    await printer.refresh()

    assert printer.status.supplies == {"paper": SupplyLevel.LOW, "toner": SupplyLevel.LOW}
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.last_error is None
    thresholds = {(e.supply, e.level) for e in printer.events if e.kind == "threshold"}
    assert thresholds == {("paper", SupplyLevel.LOW), ("toner", SupplyLevel.LOW)}

    await peer.set_toner(0)
    await printer.refresh()
    assert printer.status.supplies["toner"] is SupplyLevel.OUT
    assert printer.status.state is DeviceState.USER_ERROR
    assert printer.status.last_error.code == "printer.toner_out"
    assert printer.status.last_error.action is OperatorAction.CLEAR

    errors_before = sum(e.kind == "error" for e in printer.events)
    await printer.refresh()  # a standing problem is one error, not one per poll
    assert sum(e.kind == "error" for e in printer.events) == errors_before

    await peer.set_toner(100)
    await peer.load_paper()
    await printer.refresh()
    assert printer.status.state is DeviceState.ONLINE
    assert printer.status.supplies == {"paper": SupplyLevel.FULL, "toner": SupplyLevel.FULL}


@module_loop
async def test_a_paper_jam_fails_the_job_for_staff_to_clear(printer, peer):
    peer.jam_next_job()

    with pytest.raises(PaperJam) as caught:
        await printer.print_pdf(PDF, "CASE-4")

    assert caught.value.message_key == "device.a4.jam"
    status = printer.status
    assert status.supplies["paper"] is SupplyLevel.JAMMED
    assert status.state is DeviceState.USER_ERROR
    assert status.last_error.code == "printer.jam"
    assert status.last_error.kind is ErrorKind.USER
    assert status.last_error.action is OperatorAction.CLEAR
    assert any(e.kind == "error" and e.error.code == "printer.jam" for e in printer.events)

    peer.clear_jam()
    await peer.wait_idle()
    assert await peer.job_state(printer.last_job_id) is ipp.JobState.CANCELED
    await printer.refresh()
    assert status.supplies["paper"] is SupplyLevel.JAMMED  # the old snapshot is immutable
    assert printer.status.supplies["paper"] is SupplyLevel.FULL
    assert printer.status.state is DeviceState.ONLINE


@module_loop
async def test_an_aborted_job_is_a_typed_failure_and_the_printer_stays_online(printer, peer):
    peer.abort_next_job()

    with pytest.raises(PrintJobFailed) as caught:
        await printer.print_pdf(PDF, "CASE-5")

    assert caught.value.code == "printer.job_aborted"
    assert caught.value.message_key == "device.a4.job_failed"
    assert printer.status.last_error.code == "printer.job_aborted"
    assert printer.status.state is DeviceState.ONLINE
    # The next job prints again.
    result = await printer.print_pdf(PDF, "CASE-5b")
    assert peer.document(result.job_id) == PDF


@module_loop
async def test_a_second_client_is_told_busy_and_retries(peer):
    peer.set_job_seconds(0.8)
    kiosks = [A4Printer(f"a4-{i}", uri=peer.uri, timeout_s=15, status_interval_s=None,
                        poll_interval_s=0.1) for i in range(2)]
    async with contextlib.AsyncExitStack() as stack:
        for kiosk in kiosks:
            await kiosk.start()
            stack.push_async_callback(kiosk.close)
        results = await asyncio.gather(
            kiosks[0].print_pdf(PDF, "CASE-6a"), kiosks[1].print_pdf(PDF, "CASE-6b")
        )
    assert sum(r.busy_retries for r in results) >= 1
    assert len({r.job_id for r in results}) == 2
    for result in results:
        assert peer.document(result.job_id) == PDF


@module_loop
async def test_cancelling_the_caller_cancels_the_job_at_the_printer(printer, peer):
    peer.set_job_seconds(1.0)
    job = asyncio.create_task(printer.print_pdf(PDF, "CASE-7"))
    await _until(lambda: printer.current_job_id is not None)
    job_id = printer.current_job_id

    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    assert printer.current_job_id is None
    await peer.wait_idle()
    assert await peer.job_state(job_id) is ipp.JobState.CANCELED


@module_loop
async def test_timeout_bounds_the_whole_job_and_cancels_it(printer, peer):
    peer.set_job_seconds(1.5)
    printer.command_timeout = 0.6
    started = time.monotonic()

    with pytest.raises(PrintTimeout) as caught:
        await printer.print_pdf(PDF, "CASE-8")

    assert time.monotonic() - started < 3
    assert caught.value.code == "printer.timeout"
    await peer.wait_idle()
    assert await peer.job_state(printer.last_job_id) is ipp.JobState.CANCELED


@module_loop
async def test_job_names_must_be_case_references(printer, peer):
    before = len(peer.spooled_documents())
    for name in ["张三的材料", "320102199003071234", "13812345678", "CASE 1", "", "x" * 65]:
        with pytest.raises(ValueError, match="case reference"):
            await printer.print_pdf(PDF, name)
    with pytest.raises(ValueError, match="PDF"):
        await printer.print_pdf(b"not a pdf", "CASE-9")
    assert len(peer.spooled_documents()) == before


@module_loop
async def test_an_unreachable_printer_is_offline_with_a_typed_error():
    printer = A4Printer("a4", uri=f"ipp://localhost:{free_port()}/ipp/print", timeout_s=5,
                        status_interval_s=None)
    await printer.start()  # a switched-off network printer must not stop the kiosk
    try:
        assert printer.status.lifecycle is Lifecycle.ENABLED
        assert printer.status.state is DeviceState.OFFLINE
        assert printer.status.last_error.code == "printer.offline"
        started = time.monotonic()
        with pytest.raises(PrinterOffline) as caught:
            await printer.print_pdf(PDF, "CASE-10")
        assert time.monotonic() - started < 2
        assert caught.value.message_key == "device.a4.offline"
        assert printer.status.state is DeviceState.OFFLINE
        assert not (await printer.selftest()).ok
    finally:
        await printer.close()


@module_loop
async def test_a_wrong_printer_path_is_a_configuration_error(peer):
    printer = A4Printer("a4", uri=peer.uri.replace("/ipp/print", "/ipp/nothing"),
                        status_interval_s=None)
    with pytest.raises(PrinterMisconfigured) as caught:
        await printer.open()
    assert caught.value.action is OperatorAction.CONFIGURATION
    assert printer.status.state is DeviceState.NO_DEVICE
    await printer.close()


@module_loop
async def test_a_bad_uri_scheme_is_a_configuration_error():
    printer = A4Printer("a4", uri="lpd://printer/queue", status_interval_s=None)
    with pytest.raises(PrinterMisconfigured):
        await printer.open()
    assert printer.status.state is DeviceState.NO_DEVICE


@module_loop
async def test_create_with_sim_starts_and_stops_its_own_peer():
    async with contextlib.AsyncExitStack() as stack:
        printer = await create(A4PrinterSection(uri="sim", timeout_s=10), stack=stack)
        assert printer.status.lifecycle is Lifecycle.CLOSED
        assert printer.uri.startswith("ipp://localhost:")
        stack.push_async_callback(printer.close)
        await printer.start()
        result = await printer.print_pdf(PDF, "CASE-11")
        assert result.job_id >= 1
        uri = printer.uri
    # The peer is gone with the stack: a fresh client finds nobody there.
    after = A4Printer("a4", uri=uri, status_interval_s=None)
    await after.start()
    assert after.status.state is DeviceState.OFFLINE
    await after.close()


@module_loop
async def test_the_status_watch_notices_paper_out_between_jobs(peer):
    printer = A4Printer("a4", uri=peer.uri, status_interval_s=0.1)
    await printer.start()
    try:
        await peer.paper_out()
        await _until(lambda: printer.status.supplies.get("paper") is SupplyLevel.OUT)
        assert printer.status.last_error.code == "printer.paper_out"
        await peer.load_paper()
        await _until(lambda: printer.status.state is DeviceState.ONLINE)
    finally:
        await printer.close()


@module_loop
async def test_the_device_registry_builds_and_closes_the_simulated_printer():
    from drivers.registry import DeviceSet
    from kiosk.config import DevicesSection

    async with DeviceSet(DevicesSection(), only={"a4_printer"}) as devices:
        printer = devices.devices["a4_printer"]
        assert printer.status.lifecycle is Lifecycle.ENABLED
        assert printer.status.state is DeviceState.ONLINE
        [result] = await devices.selftest()
        assert result.ok, result.detail
    assert printer.status.lifecycle is Lifecycle.CLOSED


# -- the mapping, without a peer ------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, keyword, severity",
    [
        ("media-empty-report", "media-empty", "report"),
        ("toner-low-warning", "toner-low", "warning"),
        ("media-jam-error", "media-jam", "error"),
        ("offline", "offline", ""),
        ("-error", "-error", ""),
    ],
)
def test_split_reason_strips_the_severity_suffix(raw, keyword, severity):
    assert split_reason(raw) == (keyword, severity)


@pytest.mark.parametrize(
    "reasons, state, paper, toner, failure, action",
    [
        (["none"], DeviceState.ONLINE, "full", "full", None, None),
        (["media-low-report"], DeviceState.ONLINE, "low", "full", None, None),
        (["media-empty-warning"], DeviceState.USER_ERROR, "out", "full", PaperOut,
         OperatorAction.CLEAR),
        (["media-needed"], DeviceState.USER_ERROR, "out", "full", PaperOut, OperatorAction.CLEAR),
        (["media-jam-error", "media-empty-error"], DeviceState.USER_ERROR, "jammed", "full",
         PaperJam, OperatorAction.CLEAR),
        (["toner-low-report"], DeviceState.ONLINE, "full", "low", None, None),
        (["marker-supply-empty-error"], DeviceState.USER_ERROR, "full", "out", TonerOut,
         OperatorAction.CLEAR),
        (["offline-report"], DeviceState.OFFLINE, "full", "full", PrinterOffline,
         OperatorAction.MAINTENANCE),
        (["cover-open-error"], DeviceState.HARDWARE_ERROR, "full", "full", PrinterFault,
         OperatorAction.MAINTENANCE),
        (["fuser-over-temp"], DeviceState.HARDWARE_ERROR, "full", "full", PrinterFault,
         OperatorAction.MAINTENANCE),  # RFC 8011: no suffix means error
        (["fuser-over-temp-warning", "cups-waiting-for-job-completed"], DeviceState.ONLINE,
         "full", "full", None, None),
        (["media-empty-error", "offline-report"], DeviceState.OFFLINE, "out", "full",
         PrinterOffline, OperatorAction.MAINTENANCE),
    ],
)
def test_state_reasons_map_to_status_supplies_and_action(reasons, state, paper, toner, failure,
                                                         action):
    condition = interpret(ipp.PrinterState.IDLE, reasons)
    assert condition.state is state
    assert condition.supplies == {"paper": SupplyLevel(paper), "toner": SupplyLevel(toner)}
    if failure is None:
        assert condition.failure is None
    else:
        assert type(condition.failure) is failure
        assert condition.failure.action is action


def test_printer_state_alone_decides_busy_stopped_and_not_accepting():
    assert interpret(ipp.PrinterState.PROCESSING, ["none"]).state is DeviceState.BUSY
    stopped = interpret(ipp.PrinterState.STOPPED, [])
    assert stopped.state is DeviceState.HARDWARE_ERROR and stopped.code == "printer.stopped"
    rejecting = interpret(ipp.PrinterState.IDLE, [], accepting=False)
    assert rejecting.state is DeviceState.OFFLINE and rejecting.code == "printer.not_accepting"


def test_every_failure_has_a_translation_in_both_languages():
    keys = {cls("x").message_key for cls in (PaperOut, PaperJam, TonerOut, PrinterFault,
                                             PrintJobFailed, PrinterOffline)}
    keys.add(PrintTimeout("x").message_key)
    for locale in i18n.LOCALES:
        assert keys <= set(i18n.catalogue(locale)), locale
