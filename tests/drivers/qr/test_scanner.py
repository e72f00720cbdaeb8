import asyncio
import contextlib
import json
import logging
import time

import pytest

from drivers.base import DeviceState, DeviceUnavailable, Lifecycle
from drivers.qr import (
    BadCharset,
    CameraQrScanner,
    CodeTooLong,
    ScannerMissing,
    ScanResult,
    SerialQrScanner,
    create,
)
from drivers.sim.camera import LiveFrameSource
from drivers.sim.serial_scanner import SerialScannerSimulator
from kiosk.config import QrScannerSection

CODE = "SFM1" + "K3J9Q2ZT8W" * 4
OTHER = "SFM1" + "A1B2C3D4E5" * 4


@contextlib.asynccontextmanager
async def serial_scanner(suffix="CR", **kwargs):
    with SerialScannerSimulator(suffix) as sim:
        scanner = SerialQrScanner("qr", sim.slave_path, partial_timeout_s=0.2, **kwargs)
        await scanner.start()
        try:
            yield scanner, sim
        finally:
            await scanner.close()


async def no_more_scans(scanner, within=0.3):
    with pytest.raises(TimeoutError):
        await scanner.read(timeout=within)


@pytest.mark.asyncio
async def test_create_sim_serial_scans_through_a_real_pty(caplog):
    caplog.set_level(logging.DEBUG)
    async with contextlib.AsyncExitStack() as stack:
        scanner = await create(QrScannerSection(), stack=stack)
        assert isinstance(scanner, SerialQrScanner) and scanner.port.startswith("/dev/pts/")
        await scanner.start()
        assert scanner.status.lifecycle is Lifecycle.ENABLED
        assert scanner.status.state is DeviceState.ONLINE
        scanner.simulator.scan(CODE)
        result = await scanner.read(timeout=2)
        assert isinstance(result, ScanResult)
        assert (result.text, result.source) == (CODE, "serial")
        assert 0 <= result.latency_ms < 1000 and abs(result.at - time.time()) < 5
        assert CODE not in repr(result)
        assert (await scanner.selftest()).ok
        status = json.dumps(scanner.status.to_json())
    assert scanner.status.lifecycle is Lifecycle.CLOSED  # the stack closed it
    assert CODE not in caplog.text and CODE not in status
    assert f"len={len(CODE)}" in caplog.text


@pytest.mark.asyncio
async def test_crlf_suffix_junk_and_partial_lines():
    async with serial_scanner("CRLF") as (scanner, sim):
        sim.junk()
        with pytest.raises(BadCharset):
            await scanner.read(timeout=2)
        sim.partial(CODE[:10])
        await asyncio.sleep(0.5)  # longer than partial_timeout_s: a fragment, dropped
        sim.scan(CODE)
        sim.scan(OTHER)
        assert (await scanner.read(timeout=2)).text == CODE
        assert (await scanner.read(timeout=2)).text == OTHER
        await no_more_scans(scanner)  # the LF halves of CRLF are not empty scans


@pytest.mark.asyncio
async def test_the_same_code_fires_once_within_the_window(clock):
    async with serial_scanner(repeat_suppress_s=3.0, clock=clock) as (scanner, sim):
        for _ in range(3):
            sim.scan(CODE)
        assert (await scanner.read(timeout=2)).text == CODE
        await no_more_scans(scanner)
        assert scanner.scans_suppressed == 2
        sim.scan(OTHER)
        assert (await scanner.read(timeout=2)).text == OTHER
        clock.advance(2.0)
        sim.scan(CODE)  # within 3 s of the last sighting: still the same citizen
        await no_more_scans(scanner)
        clock.advance(3.5)
        sim.scan(CODE)
        assert (await scanner.read(timeout=2)).text == CODE
        scanner.forget_repeats()  # the session ended: the next citizen's scan fires
        sim.scan(CODE)
        assert (await scanner.read(timeout=2)).text == CODE


@pytest.mark.asyncio
async def test_overlong_and_non_ascii_codes_are_refused_with_typed_errors(caplog):
    caplog.set_level(logging.DEBUG)
    refused = []
    async with serial_scanner(max_length=64) as (scanner, sim):
        scanner.on_reject(refused.append)
        sim.scan("SFM1" + "X" * 100)  # over the limit, kept in the buffer
        with pytest.raises(CodeTooLong) as too_long:
            await scanner.read(timeout=2)
        assert too_long.value.length == 104
        sim.scan("SFM1" + "Y" * 5000)  # far over: counted, not buffered
        with pytest.raises(CodeTooLong) as far_too_long:
            await scanner.read(timeout=3)
        assert far_too_long.value.length == 5004
        sim.scan("SFM1苏服码")
        with pytest.raises(BadCharset) as bad:
            await scanner.read(timeout=2)
        assert bad.value.message_key == "device.qr.bad_charset"
        sim.scan(CODE)
        assert (await scanner.read(timeout=2)).text == CODE
        assert scanner.status.state is DeviceState.ONLINE  # a bad code is not a device fault
    assert [type(e) for e in refused] == [CodeTooLong, CodeTooLong, BadCharset]
    assert "XXXXXXXX" not in caplog.text and "YYYYYYYY" not in caplog.text


@pytest.mark.asyncio
async def test_async_iteration_skips_refused_codes_and_ends_on_disable():
    async with serial_scanner() as (scanner, sim):
        seen = []
        scanner.on_scan(seen.append)
        sim.scan("SFM1苏服码")
        sim.scan(CODE)
        sim.scan(OTHER)
        got = []
        async for result in scanner:
            got.append(result.text)
            if len(got) == 2:
                await scanner.disable()
        assert got == [CODE, OTHER] and [r.text for r in seen] == got
        with pytest.raises(DeviceUnavailable):
            await scanner.read(timeout=1)


@pytest.mark.asyncio
async def test_cancel_stops_promptly():
    async with serial_scanner() as (scanner, sim):
        consumer = asyncio.create_task(scanner.read())
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert time.perf_counter() - started < 0.1
        # Disabling cancels the scan loop while its blocking serial read is in flight.
        started = time.perf_counter()
        await scanner.close()
        assert time.perf_counter() - started < 0.5
        assert scanner.status.lifecycle is Lifecycle.CLOSED


@pytest.mark.asyncio
async def test_unplugged_module_is_reported_and_reopened():
    sim = SerialScannerSimulator()
    scanner = SerialQrScanner("qr", sim.slave_path, reopen_interval_s=0.1)
    await scanner.start()
    try:
        sim.close()  # the pty disappears: reads fail, reopening fails
        for _ in range(50):
            if scanner.status.state is DeviceState.NO_DEVICE:
                break
            await asyncio.sleep(0.05)
        assert scanner.status.state is DeviceState.NO_DEVICE
        assert scanner.status.last_error.code == "qr.scanner_missing"
    finally:
        started = time.perf_counter()
        await scanner.close()
        assert time.perf_counter() - started < 0.5


@pytest.mark.asyncio
async def test_missing_port_fails_to_open_with_a_typed_error():
    scanner = SerialQrScanner("qr", "/dev/no-such-scanner")
    with pytest.raises(ScannerMissing) as caught:
        await scanner.start()
    assert caught.value.message_key == "device.qr.scanner_missing"
    assert scanner.status.state is DeviceState.NO_DEVICE
    assert scanner.status.last_error.code == "qr.scanner_missing"


@pytest.mark.asyncio
async def test_create_sim_camera_decodes_frames_off_the_loop_and_suppresses_repeats(caplog):
    caplog.set_level(logging.DEBUG)
    section = QrScannerSection(source="camera", repeat_suppress_s=5.0)
    async with contextlib.AsyncExitStack() as stack:
        scanner = await create(section, stack=stack)
        assert isinstance(scanner, CameraQrScanner)
        await scanner.start()
        frames: LiveFrameSource = scanner.simulator
        await no_more_scans(scanner, within=0.3)  # empty scan window
        frames.show(CODE)
        result = await scanner.read(timeout=3)
        assert (result.text, result.source) == (CODE, "camera")
        assert 0 < result.latency_ms < 1000
        # The phone stays in view: many frames, one scan; decoding them never stalls the loop.
        gaps = []

        async def ticker():
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                gaps.append(time.perf_counter() - before)

        ticking = asyncio.create_task(ticker())
        decoded_before = scanner.frames_decoded
        await no_more_scans(scanner, within=0.5)
        ticking.cancel()
        assert scanner.frames_decoded - decoded_before >= 3
        assert scanner.scans_suppressed >= 2
        assert max(gaps) < 0.06
        frames.show(OTHER, difficulty="medium")
        assert (await scanner.read(timeout=3)).text == OTHER
        selftest = await scanner.selftest()
        assert selftest.ok and "640x480" in selftest.detail
    assert CODE not in caplog.text and OTHER not in caplog.text


@pytest.mark.asyncio
async def test_camera_refuses_an_overlong_code_once():
    frames = LiveFrameSource(fps=30)
    scanner = CameraQrScanner("qr-camera", frames, max_length=32)
    refused = []
    scanner.on_reject(refused.append)
    await scanner.start()
    try:
        frames.show(CODE)
        with pytest.raises(CodeTooLong):
            await scanner.read(timeout=3)
        await no_more_scans(scanner, within=0.4)
        assert len(refused) == 1
        started = time.perf_counter()
    finally:
        await scanner.close()
    assert time.perf_counter() - started < 0.5


@pytest.mark.asyncio
async def test_a_real_camera_is_refused_as_a_configuration_error():
    async with contextlib.AsyncExitStack() as stack:
        with pytest.raises(ScannerMissing) as caught:
            await create(QrScannerSection(source="camera", camera="/dev/video0"), stack=stack)
    assert caught.value.code == "qr.camera_unsupported"
    assert str(caught.value.action) == "configuration"
