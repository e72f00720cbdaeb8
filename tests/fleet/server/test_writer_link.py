"""The writer link's frames and its behaviour without a writer (fleet/server/writer_link.py);
the whole path runs in every `[sqlite-writer]` server test and in test_writer_process.py."""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.server.ingest import IngestUnavailable
from fleet.server.settings import ServerSettings
from fleet.server.writer_link import (
    MAX_FRAME_BYTES,
    RemoteIngest,
    pack,
    read_message,
    remove_stale_socket,
    socket_path_for,
)
from fleet.wire import Heartbeat
from tests.fleet.server.simkiosk import heartbeat

def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


@pytest.mark.asyncio
async def test_frames_round_trip_and_junk_is_refused():
    message = {"t": "hb", "items": [[1, {"text": "无锡 \"quoted\"", "n": 2**62, "f": 1.5}]]}
    assert await read_message(_reader(pack(message))) == message
    with pytest.raises(ValueError):
        await read_message(_reader(struct.pack(">I", MAX_FRAME_BYTES + 1)))
    with pytest.raises(ValueError):
        await read_message(_reader(struct.pack(">I", 2) + b"[]"))
    with pytest.raises(ValueError):
        await read_message(_reader(struct.pack(">I", 3) + b"{x}"))
    with pytest.raises(asyncio.IncompleteReadError):
        await read_message(_reader(struct.pack(">I", 10) + b"{}"))


def test_a_long_state_dir_gets_a_private_socket_directory(tmp_path):
    short = socket_path_for(tmp_path)
    assert short == str(tmp_path.resolve() / "ingest.sock")
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    path = socket_path_for(deep)
    assert len(path.encode()) <= 100 and "fleet-ingest-" in path
    remove_stale_socket(path, final=True)
    assert not Path(path).parent.exists()


@pytest.mark.asyncio
async def test_without_a_writer_heartbeats_are_unavailable_not_acknowledged(tmp_path):
    settings = ServerSettings(state_dir=tmp_path)
    ingest = RemoteIngest(str(tmp_path / "ingest.sock"), settings, time.time,
                          connect_timeout_s=0.2)
    await ingest.start()  # gives up after the timeout; heartbeats then answer 503
    hb = Heartbeat.model_validate(heartbeat(1))
    started = time.monotonic()
    with pytest.raises(IngestUnavailable):
        await ingest.submit("kiosk-1", 1, hb, hb.model_dump_json(), time.time())
    with pytest.raises(IngestUnavailable):  # no reconnect storm: refused at once
        await ingest.submit("kiosk-1", 2, hb, hb.model_dump_json(), time.time())
    assert time.monotonic() - started < 1
    await ingest.stop()


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=60).map(lambda b: struct.pack(">I", len(b)) + b),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=8)
      .map(lambda v: pack({"t": "hb", "items": v}) if isinstance(v, list) else
           struct.pack(">I", len(repr(v))) + repr(v).encode()),
))
def test_junk_frames_raise_only_the_errors_the_link_handles(data):
    async def read() -> object:
        return await read_message(_reader(data))

    try:
        message = asyncio.run(read())
    except (ValueError, asyncio.IncompleteReadError):
        return  # the link closes with a logged error; nothing else escapes
    assert isinstance(message, dict)
