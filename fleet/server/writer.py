"""The SQLite writer process: the heartbeat group commit for `serve --workers N` on SQLite.

Started by the `serve` supervisor before the request processes (fleet/server/cli.py), it
listens on a Unix socket (0600) and feeds every heartbeat item it receives into one
`ingest.Batcher`: one transaction per batch for all request processes together, in a process
whose event loop does nothing else, so a batch is never slowed by request handling. When a
batch commits, each sender gets its items' results in one frame (writer_link.py describes the
frames). SIGTERM: stop listening, write what is queued, answer it, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from fleet.server.db import open_database
from fleet.server.ingest import Batcher, IngestUnavailable
from fleet.server.migrate import migrate
from fleet.server.settings import ServerSettings
from fleet.server.writer_link import (
    UNAVAILABLE,
    pack,
    read_message,
    remove_stale_socket,
    stats_list,
)

logger = logging.getLogger("fleet.server.writer")


class _Peer:
    """One request process's link: results are gathered and sent once per loop turn."""

    def __init__(self, batcher: Batcher, writer: asyncio.StreamWriter) -> None:
        self._batcher = batcher
        self._writer = writer
        self._results: list[list[Any]] = []
        self._scheduled = False

    def accept(self, items: list[Any]) -> None:
        for entry in items:
            item_id, item = entry
            try:
                future = self._batcher.enqueue(item)
            except IngestUnavailable:
                self._answer(item_id, UNAVAILABLE)
                continue
            future.add_done_callback(lambda f, i=item_id: self._answer(
                i, UNAVAILABLE if f.cancelled() or f.exception() else f.result()))

    def _answer(self, item_id: int, result: Any) -> None:
        self._results.append([item_id, result])
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        results, self._results = self._results, []
        if results and not self._writer.is_closing():
            self._writer.write(pack({"t": "done", "r": results,
                                     "s": stats_list(self._batcher.stats)}))


async def serve_writer(settings: ServerSettings, socket_path: str,
                       stop: asyncio.Event | None = None, *,
                       clock: Callable[[], float] = time.time,
                       freeze_gc: bool = False) -> None:
    """Run until `stop` is set (or SIGTERM when `stop` is None). `freeze_gc`: the process
    is the writer's own (not a test's)."""
    db = open_database(settings.database_url)
    await migrate(db)
    batcher = Batcher(db, settings, clock, inline=True)
    await batcher.start()
    peers: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def on_link(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peers[task] = writer
        peer = _Peer(batcher, writer)
        try:
            while True:
                message = await read_message(reader)
                kind = message.get("t")
                if kind == "hb":
                    peer.accept(message.get("items") or [])
                elif kind == "forget_site" and isinstance(message.get("site"), str):
                    batcher.forget_site(message["site"])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the request process closed its end
        except (ValueError, TypeError) as exc:
            logger.error("bad frame from a server process, link closed: %s", exc)
        finally:
            peers.pop(task, None)
            writer.close()

    remove_stale_socket(socket_path)
    old_umask = os.umask(0o177)  # the socket is created 0600: only this user may write
    try:
        server = await asyncio.start_unix_server(on_link, socket_path,
                                                 limit=64 * 1024 * 1024)
    finally:
        os.umask(old_umask)
    if stop is None:
        stop = asyncio.Event()
        # SIGTERM only: a Ctrl-C reaches the whole process group, and the writer must outlive
        # the request processes to answer what they still send (the supervisor stops it).
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if freeze_gc:
        gc.collect()
        gc.freeze()  # see fleet.server.cli.freeze_startup_objects
    logger.info("heartbeat writer listening on %s", socket_path)
    try:
        await stop.wait()
    finally:
        server.close()
        await batcher.stop()  # writes what is queued and answers it
        for _ in range(3):  # the futures' callbacks, then the peers' sends
            await asyncio.sleep(0)
        for writer in list(peers.values()):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.drain(), 2)
        for task in list(peers):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*peers, return_exceptions=True)
        await db.dispose()
        remove_stale_socket(socket_path)
        logger.info("heartbeat writer stopped (%d stored, %d refused, %d batches)",
                    batcher.stats.accepted, batcher.stats.refused, batcher.stats.batches)


def run_writer(settings: ServerSettings, socket_path: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                        "%(message)s")
    asyncio.run(serve_writer(settings, socket_path, freeze_gc=True))
    return 0
