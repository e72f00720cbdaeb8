"""A receipt printer on TCP (the "raw" port 9100 protocol) for tests, demos and integrators.

It speaks the bytes an Epson-compatible ESC/POS printer does: it keeps everything a client
sends, split into jobs (a job ends at a paper cut, `GS V`), answers the real-time status
query `DLE EOT n` at once from its `condition` (paper ok / near-end / out, cover open,
offline, errors), and decodes `GS v 0` raster images back into PIL images so a test can
read what was "printed". Faults can be armed to hit in the middle of the next job: paper
running out, the connection dropping, or the printer going silent.

It deliberately shares no code with the driver's status parser: the status bytes are built
here from the ESC/POS tables, so a mistake on one side shows up as a failing test.

    async with EscposPrinterEmulator() as printer:   # 127.0.0.1, ephemeral port
        printer.condition.paper = Paper.NEAR_END
        ... connect to (printer.host, printer.port) ...
        printer.jobs[0].image()
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
from dataclasses import dataclass, field

from PIL import Image

_log = logging.getLogger(__name__)

DLE, EOT, ENQ, ESC, GS = 0x10, 0x04, 0x05, 0x1B, 0x1D
_INVERT = bytes(255 - i for i in range(256))
# ESC ! - 3 E G J M a d t: one parameter byte each (print mode, underline, line spacing,
# emphasis, double strike, feed, font, justification, feed lines, code page).
_ESC_WITH_ONE_PARAMETER = frozenset(b"!-3EGJMadt")


class Paper(enum.StrEnum):
    OK = "ok"
    NEAR_END = "near_end"
    OUT = "out"


class Fault(enum.StrEnum):
    PAPER_OUT = "paper_out"  # the roll ends: printing stops, status says paper end
    DISCONNECT = "disconnect"  # the connection drops (cable pulled, printer power cut)
    STALL = "stall"  # the printer stops reading and answering (hung firmware)


@dataclass
class PrinterCondition:
    """What the printer's sensors report. Tests change it at any time."""

    paper: Paper = Paper.OK
    cover_open: bool = False
    offline: bool = False  # offline with no other cause (waiting for online recovery)
    cutter_error: bool = False
    unrecoverable_error: bool = False
    overheated: bool = False  # an automatically recoverable error

    @property
    def error(self) -> bool:
        return self.cutter_error or self.unrecoverable_error or self.overheated

    @property
    def can_print(self) -> bool:
        return not (
            self.paper is Paper.OUT
            or self.cover_open
            or self.offline
            or self.cutter_error
            or self.unrecoverable_error
        )

    def answer(self, n: int) -> int:
        """The byte a printer sends for DLE EOT n (Epson's tables; see drivers/receipt)."""
        value = 0x12  # bit 1 and bit 4 are fixed on in every answer
        if n == 1:
            if self.offline or not self.can_print or self.overheated:
                value |= 0x08
            if self.offline:
                value |= 0x20
        elif n == 2:
            if self.cover_open:
                value |= 0x04
            if self.paper is Paper.OUT:
                value |= 0x20
            if self.error:
                value |= 0x40
        elif n == 3:
            if self.cutter_error:
                value |= 0x08
            if self.unrecoverable_error:
                value |= 0x20
            if self.overheated:
                value |= 0x40
        elif n == 4:
            if self.paper is not Paper.OK:
                value |= 0x0C
            if self.paper is Paper.OUT:
                value |= 0x60
        return value


@dataclass
class Raster:
    """One `GS v 0` image as received: `width_bytes` × 8 dots wide, 1 bit = a black dot."""

    width_bytes: int
    height: int
    data: bytes

    def image(self) -> Image.Image:
        # ESC/POS: 1 = print (black); PIL mode "1": 1 = white.
        return Image.frombytes(
            "1", (self.width_bytes * 8, self.height), self.data.translate(_INVERT)
        )


@dataclass
class PrintJob:
    data: bytearray = field(default_factory=bytearray)  # every byte of the job as received
    rasters: list[Raster] = field(default_factory=list)  # images actually printed
    cut: bool = False
    interrupted: str | None = None  # "paper_out", "disconnect", "not_ready" ...

    @property
    def complete(self) -> bool:
        return self.cut and self.interrupted is None

    def image(self) -> Image.Image | None:
        """Every printed raster stacked top to bottom (python-escpos splits tall images)."""
        if not self.rasters:
            return None
        parts = [r.image() for r in self.rasters]
        out = Image.new("1", (max(p.width for p in parts), sum(p.height for p in parts)), 1)
        y = 0
        for part in parts:
            out.paste(part, (0, y))
            y += part.height
        return out


class _Stream:
    """Parses one connection's bytes at command boundaries. Real-time queries found between
    commands are answered; raster data is skipped by its length, never scanned."""

    def __init__(self, emulator: EscposPrinterEmulator) -> None:
        self.emulator = emulator
        self.pending = bytearray()
        self.job: PrintJob | None = None
        self.replies = bytearray()

    def _job(self) -> PrintJob:
        if self.job is None:
            self.job = PrintJob()
            if not self.emulator.condition.can_print:
                self.job.interrupted = "not_ready"
            self.emulator.jobs.append(self.job)
        return self.job

    def end_job(self, reason: str | None = None) -> None:
        if self.job is not None:
            if reason and self.job.interrupted is None:
                self.job.interrupted = reason
            if self.pending:
                self.job.data += self.pending
                self.pending.clear()
            self.job = None

    def interrupt(self, reason: str) -> None:
        if self.job is not None and self.job.interrupted is None:
            self.job.interrupted = reason

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        buf = self.pending
        pos = 0
        while pos < len(buf):
            size = self._command_size(buf, pos)
            if size is None:  # an incomplete command: wait for more bytes
                break
            command = bytes(buf[pos : pos + size])
            pos += size
            if command[0] == DLE and len(command) == 3 and command[1] == EOT:
                self.emulator.status_queries += 1
                self.replies.append(self.emulator.condition.answer(command[2]))
                continue
            if command[0] == DLE and len(command) == 3 and command[1] == ENQ:
                continue  # "recover from error": the emulator recovers when told to
            job = self._job()
            job.data += command
            if command[:3] == b"\x1dv0":
                if job.interrupted is None:
                    width_bytes = command[4] | command[5] << 8
                    height = command[6] | command[7] << 8
                    job.rasters.append(Raster(width_bytes, height, command[8:]))
            elif command[:2] == b"\x1dV":
                job.cut = True
                self.job = None
        del buf[:pos]

    @staticmethod
    def _command_size(buf: bytearray, pos: int) -> int | None:
        """Length of the command starting at `pos`, or None if it is not complete yet."""
        left = len(buf) - pos
        first = buf[pos]
        if first == DLE:
            if left < 2:
                return None
            if buf[pos + 1] in (EOT, ENQ):
                return 3 if left >= 3 else None
            return 1
        if first == ESC:
            if left < 2:
                return None
            second = buf[pos + 1]
            if second in _ESC_WITH_ONE_PARAMETER:
                return 3 if left >= 3 else None
            return 2  # ESC @, ESC 2 and anything else we do not interpret
        if first == GS:
            if left < 2:
                return None
            second = buf[pos + 1]
            if second == 0x76:  # GS v 0 m xL xH yL yH d1...dk
                if left < 8:
                    return None
                size = 8 + (buf[pos + 4] | buf[pos + 5] << 8) * (buf[pos + 6] | buf[pos + 7] << 8)
                return size if left >= size else None
            if second == 0x56:  # GS V m [n]
                if left < 3:
                    return None
                size = 4 if buf[pos + 2] in (65, 66, 97, 98, 103, 104) else 3
                return size if left >= size else None
            return 2
        return 1


class EscposPrinterEmulator:
    """The TCP printer. One client at a time is typical of port 9100, but several work."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, condition: PrinterCondition | None = None
    ) -> None:
        self._host = host
        self._port = port
        self.condition = condition or PrinterCondition()
        self.jobs: list[PrintJob] = []
        self.status_queries = 0
        self.connections = 0
        self.received = 0  # bytes, all connections
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._fault: tuple[Fault, int] | None = None
        self._serial: dict[int, _Stream] = {}

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        _log.info("ESC/POS printer emulator on %s:%d", self._host, self._port)

    async def stop(self) -> None:
        """Close the listener and every connection; returns when all handlers are done."""
        for fd in list(self._serial):
            self._stop_serial(fd)
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.gather(*self._handlers, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> EscposPrinterEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- conditions and faults -----------------------------------------------------------
    def fail_after(self, fault: Fault | str, nbytes: int) -> None:
        """Arm one fault: it hits once `nbytes` more bytes have arrived (a receipt image is
        tens of kilobytes, so a few thousand lands mid-job)."""
        self._fault = (Fault(fault), self.received + nbytes)

    def reload_paper(self) -> None:
        self.condition.paper = Paper.OK

    def printed_jobs(self) -> list[PrintJob]:
        return [job for job in self.jobs if job.complete]

    # -- the connection --------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.connections += 1
        stream = _Stream(self)
        reason: str | None = "closed"
        try:
            reason = await self._pump(reader, writer, stream)
        except (ConnectionError, asyncio.CancelledError):
            reason = "closed"
        finally:
            stream.end_job(reason)
            self._writers.discard(writer)
            writer.transport.abort()
            self._handlers.discard(task)

    def _take(self, stream: _Stream, chunk: bytes) -> Fault | None:
        """Feed received bytes to the parser, applying an armed fault where it falls.
        Returns DISCONNECT or STALL for the transport to act on; the bytes after that
        point are dropped (never received)."""
        fault = None
        if self._fault is not None and self.received + len(chunk) >= self._fault[1]:
            fault, at = self._fault
            self._fault = None
            cut_at = max(0, at - self.received)
            self.received += cut_at
            stream.feed(chunk[:cut_at])
            chunk = chunk[cut_at:]
            stream.interrupt(str(fault))
            if fault is not Fault.PAPER_OUT:
                return fault
            self.condition.paper = Paper.OUT  # the rest arrives but is not printed
        self.received += len(chunk)
        stream.feed(chunk)
        return None

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stream: _Stream
    ) -> str | None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return "closed"
            fault = self._take(stream, chunk)
            await self._flush(writer, stream)
            if fault is Fault.DISCONNECT:
                return "disconnect"
            if fault is Fault.STALL:
                await asyncio.Event().wait()  # until stop() cancels us

    # -- a serial line -------------------------------------------------------------------
    def serve_serial(self, fd: int) -> None:
        """Also be a serial printer on `fd`, the master end of a pty
        (`drivers.sim.pty.PtyPair`); the driver opens the slave path as its serial port.
        Armed faults apply too; DISCONNECT and STALL both leave the line silent, which is
        what a serial printer that lost power looks like."""
        loop = asyncio.get_running_loop()
        stream = _Stream(self)

        def readable() -> None:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            fault = self._take(stream, chunk) if chunk else Fault.DISCONNECT
            if stream.replies:
                with contextlib.suppress(OSError):
                    os.write(fd, bytes(stream.replies))
                stream.replies.clear()
            if fault is not None:
                self._stop_serial(fd)

        loop.add_reader(fd, readable)
        self._serial[fd] = stream

    def _stop_serial(self, fd: int) -> None:
        stream = self._serial.pop(fd, None)
        if stream is not None:
            asyncio.get_running_loop().remove_reader(fd)
            stream.end_job("closed")

    @staticmethod
    async def _flush(writer: asyncio.StreamWriter, stream: _Stream) -> None:
        if stream.replies:
            writer.write(bytes(stream.replies))
            stream.replies.clear()
            await writer.drain()


async def main() -> None:  # pragma: no cover - manual use: python -m drivers.sim.escpos_printer
    import argparse

    parser = argparse.ArgumentParser(description="ESC/POS receipt printer emulator (TCP)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--paper", choices=[p.value for p in Paper], default="ok")
    args = parser.parse_args()
    emulator = EscposPrinterEmulator(args.host, args.port)
    emulator.condition.paper = Paper(args.paper)
    async with emulator:
        print(f"listening on {emulator.host}:{emulator.port}; Ctrl-C stops", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
