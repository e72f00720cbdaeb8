"""Simulated serial QR scanner module on a pty: the driver opens `slave_path` with pyserial
exactly as it would open /dev/ttyUSB0 or /dev/ttyACM0, and `scan(text)` makes the module
"read" a code — the code's bytes followed by the configured suffix (CR by factory default,
or CRLF), as real modules send it. `junk()` and `partial()` send the noise real modules
occasionally produce (a misread, a line cut off by a cable pull)."""

from __future__ import annotations

import os
import random
import select
import threading

from drivers.sim.pty import PtyPair

SUFFIXES = {"CR": b"\r", "CRLF": b"\r\n", "LF": b"\n"}


class SerialScannerSimulator:
    def __init__(self, suffix: str = "CR", *, seed: int = 0) -> None:
        self.suffix = SUFFIXES[suffix]
        self._pty = PtyPair()
        self.slave_path = self._pty.slave_path
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # scans from several threads must not interleave
        self.lines_sent = 0

    def scan(self, text: str | bytes, *, suffix: str | None = None) -> None:
        """The module read a code: send it and its suffix in one burst."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        self._write(data + (SUFFIXES[suffix] if suffix else self.suffix))
        self.lines_sent += 1

    def partial(self, text: str | bytes) -> None:
        """The start of a code with no terminator (the line was cut off)."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        self._write(data)

    def junk(self, length: int = 24) -> None:
        """A line of non-text bytes, as a misread or a baud-rate mismatch produces."""
        data = bytes(self._rng.randrange(0x80, 0x100) for _ in range(length))
        self._write(data + self.suffix)
        self.lines_sent += 1

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        with self._lock:
            while view:
                # The pty buffer holds a few KB; wait for the driver to drain it.
                select.select([], [self._pty.master_fd], [], 1.0)
                written = os.write(self._pty.master_fd, view)
                view = view[written:]

    def close(self) -> None:
        self._pty.close()

    def __enter__(self) -> SerialScannerSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
