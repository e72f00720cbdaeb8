"""The 社保卡 reader through the real stack: pyscard → pcscd → vpcd → the virtual card."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import pytest

from drivers.base import (
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    ErrorKind,
    Lifecycle,
    OperatorAction,
)
from drivers.sim.pcscd import pcsc_readers
from drivers.sim.ssc_card import CITIZENS, EF05, EF06, Fault
from drivers.ssc import (
    SscAccessDenied,
    SscCardRemoved,
    SscField,
    SscMalformedResponse,
    SscNoCard,
    SscReader,
    SscReaderMissing,
    SscServiceDown,
    create,
)
from kiosk.config import SscReaderSection
from kiosk.i18n import Translator

from .conftest import READER

pytestmark = pytest.mark.asyncio


async def until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def states(reader: SscReader) -> list[DeviceState]:
    return [e.changes["state"] for e in reader.events if "state" in e.changes]


@pytest.mark.parametrize("key", sorted(CITIZENS))
async def test_reads_the_card(make_card, reader, key, caplog):
    caplog.set_level(logging.DEBUG)
    holder = make_card(key).holder
    await reader.wait_for_card(timeout=5)
    data = await reader.read_card()

    assert data.social_security_number == holder.social_security_number
    assert data.name == holder.name
    assert data.sex == holder.sex
    assert data.nation == holder.nation
    assert data.birth_place == holder.birth_place
    assert data.birth_date == holder.birth_date
    assert data.card_number == holder.card_number
    assert data.region_code == holder.card_region
    assert data.spec_version == holder.spec_version
    assert data.generation == int(holder.spec_version[0])
    assert (data.issued_on, data.valid_until) == (holder.issued_on, holder.valid_until)
    assert data.complete
    assert reader.status.state is DeviceState.ONLINE
    assert states(reader)[-2:] == [DeviceState.BUSY, DeviceState.ONLINE]
    # Nothing personal in logs, status, or the data's own repr.
    exposed = caplog.text + json.dumps(reader.status.to_json(), ensure_ascii=False) + repr(data)
    for secret in (holder.name, holder.social_security_number, holder.card_number):
        assert secret not in exposed


async def test_card_wanting_exact_le_is_read_through_6c(make_card, reader):
    holder = make_card("li", exact_le=True).holder
    await reader.wait_for_card(timeout=5)
    data = await reader.read_card()
    assert data.name == holder.name and data.complete


async def test_protected_optional_record_gives_a_partial_result(make_card, reader):
    card = make_card("wang", faults={(EF06, 0x0C): Fault.PROTECTED, (EF05, 0x04): Fault.PROTECTED})
    await reader.wait_for_card(timeout=5)
    data = await reader.read_card()
    assert data.unreadable == {SscField.BIRTH_PLACE, SscField.ISSUER_CODE}
    assert data.birth_place is None and data.issuer_code is None
    # The fields after the protected ones were still read, not shifted or invented.
    assert data.birth_date == card.holder.birth_date
    assert data.issued_on == card.holder.issued_on
    assert reader.status.state is DeviceState.ONLINE
    with pytest.raises(SscAccessDenied) as caught:
        data.require({SscField.BIRTH_PLACE})
    assert caught.value.fields == (SscField.BIRTH_PLACE,)


async def test_protected_identity_record_is_a_clear_error(make_card, reader):
    make_card("wang", faults={(EF06, 0x08): Fault.PROTECTED})
    await reader.wait_for_card(timeout=5)
    with pytest.raises(SscAccessDenied) as caught:
        await reader.read_card()
    failure = caught.value
    assert failure.code == "ssc.access_denied"
    assert failure.fields == (SscField.SOCIAL_SECURITY_NUMBER,)
    assert failure.action is OperatorAction.CONFIGURATION
    t = Translator()
    assert t(failure.message_key).startswith("本终端无法读取该卡的这项信息")
    assert t(failure.message_key, "en").startswith("This kiosk cannot read")
    status = reader.status
    assert status.state is DeviceState.USER_ERROR
    assert status.last_error is not None and status.last_error.code == "ssc.access_denied"


@pytest.mark.parametrize("fault", [Fault.NO_STATUS_WORD, Fault.WRONG_LENGTH])
async def test_malformed_answer_is_a_typed_error_and_the_next_card_reads(make_card, reader, fault):
    card = make_card("wang", faults={(EF06, 0x09): fault})
    await reader.wait_for_card(timeout=5)
    with pytest.raises(SscMalformedResponse) as caught:
        await reader.read_card()
    assert caught.value.code == "ssc.malformed_response"
    assert reader.status.state is DeviceState.HARDWARE_ERROR
    assert reader.status.last_error.kind is ErrorKind.HARDWARE

    card.set_fault(EF06, 0x09, None)
    await reader.wait_for_card(timeout=5)
    assert reader.status.state is DeviceState.ONLINE
    assert (await reader.read_card()).name == card.holder.name


async def test_card_pulled_mid_read(make_card, reader):
    card = make_card("wang", faults={(EF06, 0x09): Fault.PULL})
    await reader.wait_for_card(timeout=5)
    with pytest.raises(SscCardRemoved) as caught:
        await reader.read_card()
    assert card.pulled.is_set()
    assert caught.value.message_key == "device.ssc.card_removed"
    assert caught.value.action is OperatorAction.NONE
    assert reader.status.state is DeviceState.USER_ERROR
    assert reader.status.last_error.code == "ssc.card_removed"

    card.set_fault(EF06, 0x09, None)
    card.insert()  # the citizen puts it back
    await reader.wait_for_card(timeout=5)
    assert (await reader.read_card()).complete
    assert reader.status.state is DeviceState.ONLINE


async def test_read_without_a_card(reader):
    with pytest.raises(SscNoCard) as caught:
        await reader.read_card()
    assert caught.value.message_key == "device.ssc.no_card"
    assert not await reader.card_present()


async def test_waiting_for_a_card_times_out_and_can_be_cancelled(reader):
    with pytest.raises(SscNoCard):
        await reader.wait_for_card(timeout=0.3)
    task = asyncio.create_task(reader.wait_for_card())
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    assert reader.status.state is DeviceState.ONLINE


async def test_slow_card_times_out_then_recovers(make_card, pcscd_running):
    card = make_card("wang", delay_s=0.8)
    reader = SscReader(reader=READER, command_timeout=0.3, watch_interval=None)
    await reader.start()
    try:
        await reader.wait_for_card(timeout=5)
        with pytest.raises(DeviceTimeout):
            await reader.read_card()
        assert reader.status.last_error.code == "timeout"
        card.delay_s = 0.0
        reader.command_timeout = 3.0
        data = await reader.read_card()  # the stuck handle is dropped first
        assert data.name == card.holder.name
        assert reader.status.state is DeviceState.ONLINE
    finally:
        await reader.close()


async def test_pcscd_restart_reader_goes_offline_and_back(make_card, reader, pcscd_running):
    card = make_card("wang")
    await reader.wait_for_card(timeout=5)
    await asyncio.to_thread(pcscd_running.stop)
    await until(lambda: reader.status.state is DeviceState.OFFLINE)
    assert reader.status.last_error.code == "ssc.pcsc_unavailable"
    await asyncio.to_thread(pcscd_running.start)
    await until(lambda: reader.status.state is DeviceState.ONLINE)
    seen = states(reader)
    # (no_device may show briefly while the new pcscd is still loading its reader)
    assert DeviceState.OFFLINE in seen and seen[-1] is DeviceState.ONLINE
    assert card.wait_connected(5)  # the card plugged itself back into the new vpcd
    await reader.wait_for_card(timeout=5)
    assert (await reader.read_card()).complete


async def test_pcscd_down_is_device_unavailable(reader, pcscd_running):
    await asyncio.to_thread(pcscd_running.stop)
    try:
        with pytest.raises(SscServiceDown) as caught:
            await reader.read_card()
        assert isinstance(caught.value, DeviceUnavailable)
        assert reader.status.state is DeviceState.OFFLINE
        assert reader.status.last_error.action is OperatorAction.MAINTENANCE

        fresh = SscReader(reader=READER, watch_interval=None)
        with pytest.raises(DeviceUnavailable) as caught:
            await fresh.open()
        assert caught.value.code == "ssc.pcsc_unavailable"
        assert fresh.status.state is DeviceState.NO_DEVICE
        assert fresh.status.lifecycle is Lifecycle.CLOSED
        assert not (await fresh.selftest()).ok
    finally:
        await asyncio.to_thread(pcscd_running.start)


async def test_missing_reader_is_no_device(pcscd_running):
    device = SscReader(reader="Acme SSC Reader 9000", watch_interval=None)
    with pytest.raises(SscReaderMissing) as caught:
        await device.open()
    assert isinstance(caught.value, DeviceUnavailable)
    assert caught.value.message_key == "device.ssc.reader_missing"
    assert device.status.state is DeviceState.NO_DEVICE


async def test_selftest(reader, make_card):
    result = await reader.selftest()
    assert result.ok and "no card" in result.detail
    make_card("li")
    result = await reader.selftest()
    assert result.ok and "a card" in result.detail and READER in result.detail


async def test_create_sim_starts_pcscd_and_card_and_cleans_up(pcscd_running):
    await asyncio.to_thread(pcscd_running.stop)  # create() must start its own
    try:
        async with contextlib.AsyncExitStack() as stack:
            device = await create(SscReaderSection(reader="sim", timeout_s=3), stack=stack)
            assert device.status.lifecycle is Lifecycle.CLOSED
            await device.start()
            stack.push_async_callback(device.close)
            assert not await device.card_present()  # the slot starts empty, like a kiosk's
            await asyncio.to_thread(device.sim_card.insert)
            await device.wait_for_card(timeout=5)
            data = await device.read_card()
            assert data.name == CITIZENS["wang"].name
        assert await asyncio.to_thread(pcsc_readers) is None  # its pcscd is gone
    finally:
        await asyncio.to_thread(pcscd_running.start)


async def test_create_real_reader_starts_nothing():
    async with contextlib.AsyncExitStack() as stack:
        device = await create(SscReaderSection(reader="ACS ACR39U"), stack=stack)
    assert device.reader_filter == "ACS ACR39U" and device.sim_card is None
    assert device.command_timeout == SscReaderSection().timeout_s
