"""The driver through the real path: pyserial on the slave end of a pty, the SAM simulator
on the master end speaking GA/T 467 frames."""

import asyncio
import contextlib
import json
import logging
import time

import pytest

from drivers.base import DeviceState, DeviceTimeout, Lifecycle, LifecycleError, OperatorAction
from drivers.idcard import (
    CardRemoved,
    FrameError,
    IdCardFailure,
    IdCardReader,
    InvalidCard,
    NoCard,
    PortError,
    ReadFailed,
    SamFault,
    SamTimeout,
    UnsupportedCard,
    create,
)
from drivers.idcard import card as card_codec
from drivers.idcard import frames
from drivers.sim import sam
from drivers.sim.sam import DEFAULT_SAM_ID, LI_XIUYING, WANG_FANG, ZHANG_WEI, Fault
from kiosk import i18n
from kiosk.config import IdCardReaderSection

from .conftest import TIMEOUT_S

# A failure must surface within its timeout plus this much (scheduling on a loaded machine,
# plus the one-second "is the card still there?" probe after a failed read).
SLACK_S = 1.5


def personal_values(sim_card):
    decoded = card_codec.decode(sim_card.text)
    return (decoded.name, decoded.id_number, decoded.address, decoded.id_number[:14])


def assert_nothing_personal(text, sim_card):
    for value in personal_values(sim_card):
        assert value not in text


# -- normal use ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_start_reads_the_sam_id_and_goes_online(reader, sim):
    status = reader.status
    assert status.lifecycle is Lifecycle.ENABLED and status.state is DeviceState.ONLINE
    assert status.info.serial == DEFAULT_SAM_ID and "GA/T 467" in status.info.model
    assert (0x12, 0xFF) in sim.commands


@pytest.mark.asyncio
@pytest.mark.parametrize("sim_card", [ZHANG_WEI, WANG_FANG, LI_XIUYING], ids=lambda c: c.label)
async def test_reads_each_test_citizen_without_logging_them(reader, sim, sim_card, caplog):
    caplog.set_level(logging.DEBUG)
    sim.insert_card(sim_card)
    decoded = await reader.read_card()
    assert decoded == card_codec.decode(sim_card.text, sim_card.photo)
    assert decoded.photo_wlt == sim_card.photo
    assert sim.commands[-3:] == [(0x20, 0x01), (0x20, 0x02), (0x30, 0x01)]
    assert "card read ok (card type: resident)" in caplog.text
    assert_nothing_personal(caplog.text, sim_card)
    assert_nothing_personal(json.dumps(reader.status.to_json(), ensure_ascii=False), sim_card)
    assert reader.status.state is DeviceState.ONLINE and reader.status.last_error is None


@pytest.mark.asyncio
async def test_no_card_is_typed_but_no_failure(reader):
    reader.events.clear()
    with pytest.raises(NoCard) as info:
        await reader.read_card()
    assert info.value.message_key == "device.idcard.no_card"
    assert reader.status.state is DeviceState.ONLINE and reader.status.last_error is None
    assert reader.events == []


@pytest.mark.asyncio
async def test_wait_for_card_polls_until_a_card_arrives(reader, sim):
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, sim.insert_card, WANG_FANG)
    decoded = await asyncio.wait_for(reader.wait_for_card(), 5)
    assert decoded.name == "王芳"
    assert sim.commands.count((0x20, 0x01)) >= 2  # it really polled


@pytest.mark.asyncio
async def test_cancelling_the_wait_ends_it_at_once_and_the_reader_still_works(reader, sim):
    task = asyncio.create_task(reader.wait_for_card())
    await asyncio.sleep(0.15)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    sim.insert_card(ZHANG_WEI)
    assert (await reader.read_card()).name == "张伟"


@pytest.mark.asyncio
async def test_cards_yields_each_presentation_once(reader, sim):
    seen = []

    async def collect():
        async for decoded in reader.cards():
            seen.append(decoded.name)
            if len(seen) == 2:
                return

    task = asyncio.create_task(collect())
    sim.insert_card(ZHANG_WEI)
    for _ in range(100):
        await asyncio.sleep(0.02)
        if seen:
            break
    await asyncio.sleep(0.2)  # card left on the reader: not read again
    assert seen == ["张伟"]
    sim.remove_card()
    await asyncio.sleep(0.1)
    sim.insert_card(WANG_FANG)
    await asyncio.wait_for(task, 5)
    assert seen == ["张伟", "王芳"]


@pytest.mark.asyncio
async def test_reset_and_selftest(reader, sim):
    await reader.reset()
    assert (0x10, 0xFF) in sim.commands
    result = await reader.selftest()
    assert result.ok and DEFAULT_SAM_ID in result.detail


# -- faults: each ends in a typed error, a message, a status; nothing hangs ------------------

FAULTS = [
    # (id, set-up, error class, code, state, action)
    ("read_failure", lambda s: s.set_fault(Fault.READ_FAILURE), ReadFailed, "sam.read_failed",
     DeviceState.USER_ERROR, OperatorAction.NONE),
    ("pulled_truncated", lambda s: s.set_fault(Fault.PULL_MID_READ, cut_at=300), CardRemoved,
     "sam.card_removed", DeviceState.USER_ERROR, OperatorAction.NONE),
    ("pulled_silent", lambda s: s.set_fault(Fault.PULL_MID_READ, cut_at=0), CardRemoved,
     "sam.card_removed", DeviceState.USER_ERROR, OperatorAction.NONE),
    ("bad_checksum", lambda s: s.set_fault(Fault.BAD_CHECKSUM), FrameError, "sam.bad_checksum",
     DeviceState.HARDWARE_ERROR, OperatorAction.RESET),
    ("junk_only", lambda s: s.set_fault(Fault.JUNK_ONLY), FrameError, "sam.garbled",
     DeviceState.HARDWARE_ERROR, OperatorAction.RESET),
    ("silent", lambda s: s.set_fault(Fault.SILENT), SamTimeout, "sam.no_answer",
     DeviceState.OFFLINE, OperatorAction.RESET),
    ("slow", lambda s: s.set_fault(Fault.SLOW, delay_s=TIMEOUT_S + 0.8), SamTimeout,
     "sam.no_answer", DeviceState.OFFLINE, OperatorAction.RESET),
    ("sam_fault", lambda s: s.set_fault(Fault.SAM_FAULT), SamFault, "sam.fault",
     DeviceState.HARDWARE_ERROR, OperatorAction.MAINTENANCE),
    ("foreigner", lambda s: s.insert_card(sam.foreigner_card()), UnsupportedCard,
     "sam.unsupported_card", DeviceState.USER_ERROR, OperatorAction.NONE),
    ("permit", lambda s: s.insert_card(sam.residence_permit_card()), UnsupportedCard,
     "sam.unsupported_card", DeviceState.USER_ERROR, OperatorAction.NONE),
    ("bad_check_digit", lambda s: s.insert_card(sam.SimCard(
        "bad", ZHANG_WEI.text[:156] + "9".encode("utf-16-le") + ZHANG_WEI.text[158:],
        ZHANG_WEI.photo)), InvalidCard, "sam.invalid_card", DeviceState.USER_ERROR,
     OperatorAction.NONE),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("setup", "error_class", "code", "state", "action"),
    [f[1:] for f in FAULTS],
    ids=[f[0] for f in FAULTS],
)
async def test_fault_ends_in_a_typed_error_and_status(
    reader, sim, setup, error_class, code, state, action, caplog
):
    sim.insert_card(ZHANG_WEI)
    setup(sim)
    started = time.monotonic()
    with pytest.raises(IdCardFailure) as info:
        await reader.read_card()
    elapsed = time.monotonic() - started
    error = info.value
    assert type(error) is error_class and error.code == code
    assert elapsed < TIMEOUT_S + SLACK_S, f"took {elapsed:.2f}s"
    for locale in i18n.LOCALES:
        assert error.message_key in i18n.catalogue(locale)
    status = reader.status
    assert status.state is state
    assert status.last_error is not None
    assert (status.last_error.code, status.last_error.action) == (code, action)
    assert_nothing_personal(str(error) + caplog.text, ZHANG_WEI)
    assert_nothing_personal(json.dumps(status.to_json(), ensure_ascii=False), ZHANG_WEI)


RAW_ANSWERS = {
    "random_junk": bytes(range(7, 250, 3)),
    "impossible_length": frames.PREAMBLE + b"\xff\xff\x00\x00\x90",
    "cut_after_length": frames.PREAMBLE + b"\x00\x08\x00\x00",
    "empty_frame": frames.PREAMBLE + b"\x00\x00",
    "ok_instead_of_found": frames.build_answer(0x90),
    "unknown_status": frames.build_answer(0x33),
    "two_frames_glued": frames.build_answer(0x9F, bytes(4)) + frames.build_answer(0x80),
    "preamble_only": frames.PREAMBLE,
}


@pytest.mark.asyncio
@pytest.mark.parametrize("raw", list(RAW_ANSWERS.values()), ids=list(RAW_ANSWERS))
async def test_broken_answers_on_the_wire_end_in_typed_errors(reader, sim, raw):
    sim.insert_card(ZHANG_WEI)
    sim.set_fault(Fault.RAW, raw=raw)
    started = time.monotonic()
    try:
        await reader.read_card()
    except NoCard:
        pass  # a well-formed "no card" is an answer, not a failure
    except IdCardFailure as error:
        assert error.message_key in i18n.catalogue("zh_CN")
        assert reader.status.last_error.code == error.code
        assert reader.status.state is not DeviceState.ONLINE
    else:
        pytest.fail("a broken module produced a card")
    assert time.monotonic() - started < TIMEOUT_S + SLACK_S


@pytest.mark.asyncio
async def test_junk_before_answers_is_skipped(reader, sim):
    sim.insert_card(WANG_FANG)
    sim.set_fault(Fault.JUNK)
    assert (await reader.read_card()).name == "王芳"


@pytest.mark.asyncio
async def test_reader_recovers_after_a_slow_answer(reader, sim):
    sim.insert_card(ZHANG_WEI)
    sim.set_fault(Fault.SLOW, delay_s=TIMEOUT_S + 0.3, once=True)
    with pytest.raises(SamTimeout):
        await reader.read_card()
    assert reader.status.state is DeviceState.OFFLINE
    await asyncio.sleep(0.5)  # the late answer lands and must be taken as stale
    assert (await reader.read_card()).name == "张伟"
    assert reader.status.state is DeviceState.ONLINE


@pytest.mark.asyncio
async def test_frame_error_is_cleared_by_reset(reader, sim):
    sim.insert_card(ZHANG_WEI)
    sim.set_fault(Fault.BAD_CHECKSUM, once=True)
    with pytest.raises(FrameError):
        await reader.read_card()
    assert reader.status.state is DeviceState.HARDWARE_ERROR
    await reader.reset()
    assert reader.status.state is DeviceState.ONLINE


@pytest.mark.asyncio
async def test_cancel_aborts_a_hung_read(sim):
    reader = IdCardReader(port=sim.slave_path, timeout_s=10.0)
    await reader.start()
    try:
        sim.set_fault(Fault.SILENT)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await reader.read_card()
        assert time.monotonic() - started < 1.0
        sim.clear_fault()
        sim.insert_card(ZHANG_WEI)
        # The aborted I/O thread let go of the port at once: no 10 s wait here.
        decoded = await asyncio.wait_for(reader.read_card(), 2.0)
        assert decoded.name == "张伟"
    finally:
        await reader.close()


@pytest.mark.asyncio
async def test_close_during_a_hung_read_ends_it(sim):
    reader = IdCardReader(port=sim.slave_path, timeout_s=10.0)
    await reader.start()
    sim.set_fault(Fault.SILENT)
    task = asyncio.create_task(reader.read_card())
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await reader.close()
    with pytest.raises((IdCardFailure, DeviceTimeout)):
        await asyncio.wait_for(task, 2.0)
    assert time.monotonic() - started < 2.0
    assert reader.status.lifecycle is Lifecycle.CLOSED


@pytest.mark.asyncio
async def test_a_silent_module_fails_to_open(sim):
    sim.set_fault(Fault.SILENT)
    reader = IdCardReader(port=sim.slave_path, timeout_s=0.5)
    with pytest.raises(SamTimeout):
        await reader.start()
    assert reader.status.state is DeviceState.NO_DEVICE
    assert reader.status.lifecycle is Lifecycle.CLOSED
    sim.clear_fault()
    await reader.start()  # and opens once it answers again
    assert reader.status.state is DeviceState.ONLINE
    await reader.close()


@pytest.mark.asyncio
async def test_missing_port_is_a_typed_failure():
    reader = IdCardReader(port="/dev/does-not-exist-sam", timeout_s=0.5)
    with pytest.raises(PortError) as info:
        await reader.start()
    assert info.value.code == "sam.port_unavailable"
    assert reader.status.state is DeviceState.NO_DEVICE
    assert reader.status.last_error.action is OperatorAction.MAINTENANCE
    result = await reader.selftest()
    assert not result.ok


@pytest.mark.asyncio
async def test_commands_need_an_enabled_reader(sim):
    reader = IdCardReader(port=sim.slave_path, timeout_s=0.5)
    await reader.open()
    try:
        assert await reader.sam_id() == DEFAULT_SAM_ID
        with pytest.raises(LifecycleError):
            await reader.read_card()
    finally:
        await reader.close()


@pytest.mark.asyncio
async def test_create_starts_and_stops_the_simulator():
    async with contextlib.AsyncExitStack() as stack:
        reader = await create(
            IdCardReaderSection(port="sim", timeout_s=1.0, poll_interval_s=0.05),
            stack=stack,
            name="id_card",
        )
        assert reader.status.lifecycle is Lifecycle.CLOSED and reader.simulator is not None
        stack.push_async_callback(reader.close)
        simulator = reader.simulator
        await reader.start()
        simulator.insert_card(LI_XIUYING)
        decoded = await reader.wait_for_card()
        assert decoded.long_term and decoded.nation == "回族"
    assert simulator._thread is None  # stopped by the stack
    assert reader.status.lifecycle is Lifecycle.CLOSED
