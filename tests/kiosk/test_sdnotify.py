"""sd_notify against a real AF_UNIX datagram socket standing in for systemd's."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk import sdnotify


class FakeSystemd:
    """The receiving end systemd would hold: a bound datagram socket."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address

    def messages(self, timeout: float = 0.5) -> list[dict[str, str]]:
        out = []
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return out
            out.append(dict(line.split("=", 1) for line in data.decode().split("\n")))
            self.sock.settimeout(0.05)


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSystemd]:
    directory = Path(tempfile.mkdtemp(prefix="sdn-", dir="/tmp"))  # short: sun_path is 108 bytes
    path = directory / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    try:
        yield FakeSystemd(sock, str(path))
    finally:
        sock.close()
        path.unlink(missing_ok=True)
        directory.rmdir()


def test_ready_status_stopping_reach_the_socket(systemd: FakeSystemd) -> None:
    assert sdnotify.ready("服务中 serving")
    assert sdnotify.status("attract")
    assert sdnotify.watchdog()
    assert sdnotify.stopping()
    assert systemd.messages() == [
        {"READY": "1", "STATUS": "服务中 serving"},
        {"STATUS": "attract"},
        {"WATCHDOG": "1"},
        {"STOPPING": "1"},
    ]


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"kiosk-sdnotify-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sdnotify.notify(READY=1, STATUS="x")
        sock.settimeout(1)
        assert sock.recv(100) == b"READY=1\nSTATUS=x"


def test_no_socket_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.ready() is False
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")  # not allowed by the protocol
    assert sdnotify.watchdog() is False


def test_a_vanished_socket_is_logged_not_raised(
    systemd: FakeSystemd, caplog: pytest.LogCaptureFixture
) -> None:
    Path(systemd.address).unlink()
    assert sdnotify.watchdog() is False
    assert "sd_notify" in caplog.text


def test_newlines_cannot_forge_fields(systemd: FakeSystemd) -> None:
    with pytest.raises(ValueError):
        sdnotify.status("fine\nREADY=1")
    assert systemd.messages(timeout=0.1) == []


def test_watchdog_interval_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", "")
    monkeypatch.setenv("WATCHDOG_USEC", "junk")
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert sdnotify.watchdog_interval() is None


@pytest.mark.asyncio
async def test_watchdog_loop_pings_at_half_the_interval_only_while_healthy(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # 0.2 s: pings every 0.1 s
    healthy = True
    task = asyncio.create_task(sdnotify.watchdog_loop(lambda: healthy))
    await asyncio.sleep(0.45)
    pings = await asyncio.to_thread(systemd.messages, 0.05)
    assert 4 <= len(pings) <= 6 and all(p == {"WATCHDOG": "1"} for p in pings)
    healthy = False
    await asyncio.sleep(0.12)  # let a ping already scheduled go out
    await asyncio.to_thread(systemd.messages, 0.05)
    await asyncio.sleep(0.35)
    assert await asyncio.to_thread(systemd.messages, 0.05) == []  # withheld: systemd restarts
    healthy = True
    await asyncio.sleep(0.25)
    assert len(await asyncio.to_thread(systemd.messages, 0.05)) >= 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.asyncio
async def test_watchdog_loop_counts_a_failing_probe_as_unhealthy(
    systemd: FakeSystemd, monkeypatch: pytest.MonkeyPatch
) -> None:
    def probe() -> bool:
        raise RuntimeError("probe broke")

    task = asyncio.create_task(sdnotify.watchdog_loop(probe, interval=0.1))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(systemd.messages, 0.05) == []


@pytest.mark.asyncio
async def test_watchdog_loop_returns_without_a_watchdog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    await asyncio.wait_for(sdnotify.watchdog_loop(lambda: True), 1)
