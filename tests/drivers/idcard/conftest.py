"""Fixtures: a SAM simulator on a real pty, and a started reader talking to it via pyserial."""

from __future__ import annotations

import pytest
import pytest_asyncio

from drivers.idcard import IdCardReader
from drivers.sim.sam import SamSimulator

# Generous against a loaded 2-core machine: a healthy pty exchange takes ~1 ms.
TIMEOUT_S = 1.0


@pytest.fixture
def sim():
    with SamSimulator() as simulator:
        yield simulator


@pytest_asyncio.fixture
async def reader(sim):
    device = IdCardReader(port=sim.slave_path, timeout_s=TIMEOUT_S, poll_interval_s=0.02)
    device.events = []
    device.subscribe(device.events.append)
    await device.start()
    yield device
    await device.close()
