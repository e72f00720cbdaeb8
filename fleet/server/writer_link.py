"""The link between server processes and the SQLite writer process (fleet/server/writer.py).

SQLite has one writer at a time. With several server processes on one SQLite file, each
process writing its own heartbeat batches would queue them on the database lock, and each
batch would also fight its own process's request handling for the GIL (a 3 ms batch took
10-13 ms that way). So with `serve --workers N` on SQLite one writer process owns the
heartbeat group commit, and the N request processes send it the verified heartbeats.

Frames on a Unix stream socket (0600, in the state directory): a 4-byte big-endian length,
then a JSON object.
- server -> writer `{"t": "hb", "items": [[id, item], ...]}`: heartbeat items
  (fleet/server/ingest.py `heartbeat_item`), `id` chosen by the sender;
- server -> writer `{"t": "forget_site", "site": id}`: a site's region changed;
- writer -> server `{"t": "done", "r": [[id, result], ...], "s": stats}` once the items'
  batch is committed: `result` is the kiosk's commands (a list; accepted), null (refused:
  replay or revoked) or "unavailable" (the batch failed: answer 503); `s` the writer's
  cumulative IngestStats, so /metrics of any process shows the writer's counters.

`RemoteIngest` is the request processes' side, with the same interface as
ingest.HeartbeatIngest: `submit` resolves when the heartbeat is stored (or refused), so an
acknowledgement still means "durably stored". Items submitted in the same event-loop turn
travel in one frame. If the writer is unreachable, `submit` raises IngestUnavailable (503;
agents keep the heartbeat and retry) and the next submit tries to reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydantic_core

from fleet.server.ingest import (
    IngestOutcome,
    IngestStats,
    IngestUnavailable,
    heartbeat_item,
    outcome_of,
)
from fleet.server.settings import ServerSettings
from fleet.wire import Heartbeat

logger = logging.getLogger("fleet.server.writer_link")

MAX_FRAME_BYTES = 256 * 1024 * 1024  # a batch of 512 heartbeats of 64 KiB is 32 MiB
UNAVAILABLE = "unavailable"
_HEADER = struct.Struct(">I")
_SOCKET_NAME = "ingest.sock"
_MAX_SOCKET_PATH = 100  # sockaddr_un holds 108 bytes with the terminating NUL


def pack(message: dict[str, Any]) -> bytes:
    payload = pydantic_core.to_json(message)
    return _HEADER.pack(len(payload)) + payload


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    """The next frame's object; IncompleteReadError at EOF, ValueError on junk."""
    (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
    if size > MAX_FRAME_BYTES:
        raise ValueError(f"frame of {size} bytes is over the limit")
    message = pydantic_core.from_json(await reader.readexactly(size))
    if not isinstance(message, dict):
        raise ValueError("a frame must hold a JSON object")
    return message


def socket_path_for(state_dir: Path) -> str:
    """`<state_dir>/ingest.sock`, or a private temporary directory's when that path is too
    long for a Unix socket address."""
    path = str(Path(state_dir).resolve() / _SOCKET_NAME)
    if len(path.encode()) <= _MAX_SOCKET_PATH:
        return path
    return str(Path(tempfile.mkdtemp(prefix="fleet-ingest-")) / _SOCKET_NAME)  # 0700


def stats_list(stats: IngestStats) -> list[float]:
    return [stats.accepted, stats.refused, stats.batches, stats.batch_seconds,
            stats.largest_batch, stats.failures]


class RemoteIngest:
    """A request process's heartbeat path when a writer process owns the writes."""

    def __init__(self, socket_path: str, settings: ServerSettings,
                 clock: Callable[[], float], *, connect_timeout_s: float = 15.0) -> None:
        self._path = socket_path
        self._rules = settings.rules
        self._clock = clock
        self._connect_timeout_s = connect_timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        self._retry_at = 0.0
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._outbox: list[list[Any]] = []
        self._send_scheduled = False
        self._next_id = 0
        self._closing = False
        self.stats = IngestStats()

    async def start(self) -> None:
        """Connect, waiting up to `connect_timeout_s` for the writer to listen (the
        supervisor starts it first); a later submit reconnects if this fails."""
        deadline = time.monotonic() + self._connect_timeout_s
        while True:
            try:
                await self._connect()
                return
            except OSError as exc:
                if time.monotonic() >= deadline:
                    logger.error("writer process not reachable at %s: %s", self._path, exc)
                    return
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self._closing = True
        await self._drop(IngestUnavailable("server shutting down"))

    def forget_site(self, site_id: str) -> None:
        if self._writer is not None:
            self._writer.write(pack({"t": "forget_site", "site": site_id}))

    async def submit(self, device_id: str, counter: int, hb: Heartbeat, raw: str,
                     received_at: float) -> IngestOutcome:
        if self._closing:
            raise IngestUnavailable("server shutting down")
        item = heartbeat_item(device_id, counter, hb, raw, received_at, self._rules)
        if self._writer is None:
            await self._reconnect()
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        self._outbox.append([self._next_id, item])
        if not self._send_scheduled:
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._send)
        result = await future
        if result == UNAVAILABLE:
            raise IngestUnavailable("the heartbeat batch could not be written")
        return outcome_of(result)

    async def _reconnect(self) -> None:
        async with self._connecting:
            if self._writer is not None:
                return
            if time.monotonic() < self._retry_at:
                raise IngestUnavailable("writer process unavailable")
            try:
                await self._connect()
            except OSError as exc:
                self._retry_at = time.monotonic() + 0.5
                raise IngestUnavailable(f"writer process unavailable: {exc}") from None

    async def _connect(self) -> None:
        reader, writer = await asyncio.open_unix_connection(self._path,
                                                            limit=MAX_FRAME_BYTES)
        self._reader, self._writer = reader, writer
        self._read_task = asyncio.create_task(self._read_loop(reader),
                                              name="fleet-writer-link")

    def _send(self) -> None:
        self._send_scheduled = False
        items, self._outbox = self._outbox, []
        if not items:
            return
        if self._writer is None or self._writer.is_closing():
            self._fail([item_id for item_id, _ in items], "writer process unavailable")
            return
        self._writer.write(pack({"t": "hb", "items": items}))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        error = "writer process closed the link"
        try:
            while True:
                message = await read_message(reader)
                if message.get("t") != "done":
                    continue
                for item_id, result in message.get("r", ()):
                    future = self._pending.pop(item_id, None)
                    if future is not None and not future.done():
                        future.set_result(result)
                stats = message.get("s")
                if isinstance(stats, list) and len(stats) == 6:
                    s = self.stats
                    (s.accepted, s.refused, s.batches, s.batch_seconds, s.largest_batch,
                     s.failures) = stats
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            error = f"writer process link lost: {exc.__class__.__name__}"
        except (ValueError, TypeError) as exc:
            error = f"writer process sent a bad frame: {exc}"
        except asyncio.CancelledError:
            raise
        if not self._closing:
            logger.error("%s; heartbeats answer 503 until it is back", error)
        await self._drop(IngestUnavailable(error), cancel_reader=False)

    def _fail(self, ids: list[int], why: str) -> None:
        for item_id in ids:
            future = self._pending.pop(item_id, None)
            if future is not None and not future.done():
                future.set_exception(IngestUnavailable(why))

    async def _drop(self, exc: IngestUnavailable, *, cancel_reader: bool = True) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        task, self._read_task = self._read_task, None
        if cancel_reader and task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)


def remove_stale_socket(path: str, *, final: bool = False) -> None:
    """Remove the socket file; `final`: also the private temporary directory it may be in."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    parent = Path(path).parent
    if final and parent.name.startswith("fleet-ingest-"):
        with contextlib.suppress(OSError):
            parent.rmdir()
