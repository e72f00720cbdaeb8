"""Supervised mode: the app is restarted after a SIGKILL (and the crash reported), restarted
on request, and stopped with the agent."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from fleet.agent.supervisor import AppSupervisor

APP = [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"]


async def _until(predicate, timeout=10.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_sigkilled_app_is_reported_and_restarted():
    exits = []
    sup = AppSupervisor(APP, on_exit=exits.append, backoff_s=(0.2, 0.5))
    await sup.start()
    try:
        first = sup.pid
        os.kill(first, signal.SIGKILL)
        await _until(lambda: exits)
        assert exits[0].pid == first and exits[0].returncode == -signal.SIGKILL
        assert "killed by SIGKILL" in exits[0].describe()
        await _until(lambda: sup.running and sup.pid != first)
        assert sup.crashes == 1
        second = sup.pid
        third = await sup.restart()  # asked for: no crash counted
        assert third != second and sup.running and sup.crashes == 1
    finally:
        await sup.stop()
    assert not sup.running


@pytest.mark.asyncio
async def test_stop_kills_an_app_that_ignores_sigterm():
    stubborn = [sys.executable, "-c",
                "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                "print('ready', flush=True)\nwhile True: time.sleep(1)"]
    sup = AppSupervisor(stubborn, stop_timeout_s=0.5)
    await sup.start()
    await asyncio.sleep(0.3)
    pid = sup.pid
    await sup.stop()
    assert not sup.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
