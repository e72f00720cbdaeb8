"""QR scanning: a serial scanner module or a camera, both producing `ScanResult`s.

`create(section, stack=...)` builds the scanner the `[devices.qr]` config section asks for,
starts the simulator when the port / camera is "sim", and registers the shutdown of both on
`stack`; the caller starts the device (`await scanner.start()`), as with the other drivers.
docs/devices/qr.md explains the decoding pipeline, the payload limits and what a real camera
source needs.
"""

from __future__ import annotations

import contextlib

from drivers.base import ErrorKind, OperatorAction
from drivers.qr.payload import BadCharset, Charset, CodeTooLong, EmptyCode, PayloadError
from drivers.qr.scanner import (
    CameraQrScanner,
    Frame,
    FrameSource,
    QrScanner,
    ScannerMissing,
    ScanResult,
    SerialQrScanner,
)
from kiosk.config import QrScannerSection

__all__ = [
    "BadCharset", "CameraQrScanner", "Charset", "CodeTooLong", "EmptyCode", "Frame",
    "FrameSource", "PayloadError", "QrScanner", "ScanResult", "ScannerMissing",
    "SerialQrScanner", "create",
]


async def create(
    section: QrScannerSection,
    *,
    stack: contextlib.AsyncExitStack,
    name: str = "qr",
) -> QrScanner:
    """The scanner, not yet opened; `scanner.simulator` is the simulator if one was started
    (a `SerialScannerSimulator` or a `LiveFrameSource`), else None. A camera other than
    "sim" raises `ScannerMissing` (code `qr.camera_unsupported`): this build has no real
    frame source."""
    common = {
        "max_length": section.max_length,
        "repeat_suppress_s": section.repeat_suppress_s,
    }
    simulator: object | None = None
    scanner: QrScanner
    if section.source == "serial":
        port = section.port
        if port == "sim":
            from drivers.sim.serial_scanner import SerialScannerSimulator

            simulator = sim = SerialScannerSimulator()
            stack.callback(sim.close)  # registered first: closes after the driver
            port = sim.slave_path
        scanner = SerialQrScanner(name, port, baudrate=section.baudrate, **common)
    else:
        if section.camera != "sim":
            raise ScannerMissing(
                f"camera {section.camera!r}: this build has no V4L2 frame source "
                "(needs OpenCV; see docs/devices/qr.md); use camera = \"sim\" or a "
                "serial scanner module",
                code="qr.camera_unsupported",
                kind=ErrorKind.SOFTWARE,
                action=OperatorAction.CONFIGURATION,
            )
        from drivers.sim.camera import LiveFrameSource

        simulator = LiveFrameSource()
        scanner = CameraQrScanner(name, simulator, **common)
    scanner.simulator = simulator
    stack.push_async_callback(scanner.close)  # harmless if never started
    return scanner
