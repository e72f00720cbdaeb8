"""`serve --workers 2` on SQLite, as real processes: two request processes and the writer
process that owns the heartbeat commits (fleet/server/writer.py). Heartbeats sent over many
connections (so both request processes take some) are each stored once; a writer killed with
SIGKILL is restarted by the supervisor while heartbeats meanwhile get 503, never a false ack;
SIGTERM stops everything with exit 0 and removes the socket."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from fleet.server.cli import main
from tests.fleet.conftest import free_port
from tests.fleet.server.simkiosk import SimKiosk


def _pids_of_role(parent: int, role: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == parent and (b"writer" in cmdline) == (role == "writer"):
            found.append(int(entry.name))
    return found


async def _wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url + "/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "the server never answered"
            await asyncio.sleep(0.1)


@pytest.mark.timeout(90)
def test_workers_write_through_the_writer_process(tmp_path, monkeypatch, capsys):
    state = str(tmp_path / "fleet")
    monkeypatch.setenv("ADMIN_PW", "first-admin-pw")
    assert main(["init", "--state-dir", state, "--password-env", "ADMIN_PW"]) == 0
    assert main(["sites", "add", "--state-dir", state, "--id", "wx-bank-01", "--type", "bank",
                 "--name", "无锡银行", "--region", "320205", "--lon", "120.3",
                 "--lat", "31.5"]) == 0
    capsys.readouterr()
    tokens = []
    for _ in range(3):
        assert main(["tokens", "create", "--state-dir", state, "--site", "wx-bank-01"]) == 0
        tokens.append(capsys.readouterr().out.strip())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "fleet.server.cli", "serve", "--state-dir",
                             state, "--port", str(port), "--workers", "2"])
    try:
        asyncio.run(_exercise(url, proc, tokens, Path(state)))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not (Path(state) / "ingest.sock").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in _pids_of_role(proc.pid, "writer") + _pids_of_role(proc.pid, "server"):
            os.kill(pid, signal.SIGKILL)


async def _exercise(url: str, proc: subprocess.Popen[bytes], tokens: list[str],
                    state: Path) -> None:
    await _wait_healthy(url, proc)
    assert (state / "ingest.sock").exists()
    assert len(_pids_of_role(proc.pid, "writer")) == 1
    assert len(_pids_of_role(proc.pid, "server")) == 2
    # A new connection per request, so the kernel spreads them over both request processes.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        kiosks = [await SimKiosk.enrol(url, http, token) for token in tokens]
        for seq in range(1, 11):
            answers = await asyncio.gather(*(k.beat(seq) for k in kiosks))
            assert [status for status, _ in answers] == [200] * 3, answers
        db = sqlite3.connect(state / "fleet.db")
        try:
            stored = db.execute("SELECT device_id, count(*), count(DISTINCT seq) "
                                "FROM heartbeats GROUP BY device_id").fetchall()
        finally:
            db.close()
        assert sorted(n for _, n, _ in stored) == [10, 10, 10]
        assert all(n == distinct for _, n, distinct in stored)

        # The writer dies: no heartbeat is acknowledged while it is gone, and the supervisor
        # brings it back; the kiosk's next heartbeats are stored again.
        (writer_pid,) = _pids_of_role(proc.pid, "writer")
        os.kill(writer_pid, signal.SIGKILL)
        statuses = []
        deadline = time.monotonic() + 20
        seq = 11
        while True:
            status, body = await kiosks[0].beat(seq)
            statuses.append(status)
            if status == 200:
                break
            assert status == 503 and body["error"] == "unavailable", body
            assert time.monotonic() < deadline, "the writer never came back"
            await asyncio.sleep(0.1)
        assert statuses[0] == 503  # sent right after the kill: never acknowledged
        new_writers = _pids_of_role(proc.pid, "writer")
        assert len(new_writers) == 1 and new_writers != [writer_pid]
        db = sqlite3.connect(state / "fleet.db")
        try:
            seqs = [row[0] for row in db.execute(
                "SELECT seq FROM heartbeats WHERE device_id = ? ORDER BY seq",
                (kiosks[0].device_id,))]
        finally:
            db.close()
        assert seqs == list(range(1, 12))  # the refused attempts stored nothing
