"""Fixtures for the 社保卡 reader on the real path: pyscard → pcscd → vpcd → virtual card.

One pcscd for the whole session (only one process can own vpcd's port); a test that stops
or restarts it leaves it running again through `pcscd_running`. Each test gets a fresh
virtual card and waits until pcscd has seen it come and go, so no test inherits the
previous test's card.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from drivers.sim.pcscd import Pcscd, wait_for_card_state
from drivers.sim.ssc_card import VirtualSscCard
from drivers.ssc.reader import SscReader

READER = "Virtual PCD 00 00"


@pytest.fixture
def pcscd_running(pcscd: Pcscd) -> Iterator[Pcscd]:
    pcscd.start()  # no-op when running; restarts it after a test that stopped it and failed
    yield pcscd
    pcscd.start()


def insert(card: VirtualSscCard) -> VirtualSscCard:
    card.start()
    assert card.wait_connected(5), "virtual card could not connect to vpcd"
    assert wait_for_card_state(True, reader=READER), "pcscd did not see the virtual card"
    return card


@pytest.fixture
def make_card(pcscd_running: Pcscd) -> Iterator[type[VirtualSscCard]]:
    """Factory: `make_card("li", exact_le=True)` starts (inserts) a card for this test."""
    cards: list[VirtualSscCard] = []

    def factory(*args: object, **kwargs: object) -> VirtualSscCard:
        card = VirtualSscCard(*args, **kwargs)  # type: ignore[arg-type]
        cards.append(card)
        return insert(card)

    yield factory  # type: ignore[misc]
    for card in cards:
        card.stop()
    if pcscd_running.running:
        assert wait_for_card_state(False, reader=READER), "pcscd still sees a card"


@pytest.fixture
def virtual_card(make_card) -> VirtualSscCard:  # type: ignore[no-untyped-def]
    return make_card("wang")


@pytest_asyncio.fixture
async def reader(pcscd_running: Pcscd) -> AsyncIterator[SscReader]:
    device = SscReader(reader=READER, command_timeout=3.0, watch_interval=0.1)
    device.events = []  # type: ignore[attr-defined]
    device.subscribe(device.events.append)  # type: ignore[attr-defined]
    await device.start()
    yield device
    await device.close()
