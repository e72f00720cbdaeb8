import asyncio
import threading

import pytest

from drivers.base import (
    Device,
    DeviceClass,
    DeviceFailure,
    DeviceState,
    DeviceTimeout,
    ErrorKind,
    Lifecycle,
    LifecycleError,
    OperatorAction,
    SupplyLevel,
)


class FakePrinter(Device):
    device_class = DeviceClass.RECEIPT_PRINTER

    def __init__(self, **kwargs):
        super().__init__("receipt", **kwargs)
        self.aborted = threading.Event()
        self.opened = False

    async def _open(self):
        self.opened = True
        self._update(state=DeviceState.ONLINE, supplies={"paper": SupplyLevel.FULL})

    async def _close(self):
        self.opened = False

    def _abort(self):
        self.aborted.set()

    def blocking_print(self, seconds):
        # Stands for a blocking driver call that _abort() interrupts.
        if self.aborted.wait(seconds):
            raise OSError("port closed")
        return "printed"


@pytest.fixture
def printer():
    p = FakePrinter(command_timeout=0.2)
    p.events = []
    p.subscribe(p.events.append)
    return p


@pytest.mark.asyncio
async def test_lifecycle_in_order_and_back_to_closed(printer):
    await printer.start()
    assert printer.status.lifecycle is Lifecycle.ENABLED and printer.opened
    with pytest.raises(LifecycleError):
        await printer.open()
    await printer.close()
    assert printer.status.lifecycle is Lifecycle.CLOSED
    assert printer.status.state is DeviceState.OFFLINE
    await printer.close()  # closing twice is harmless


@pytest.mark.asyncio
async def test_enable_before_claim_is_refused(printer):
    await printer.open()
    with pytest.raises(LifecycleError):
        await printer.enable()


@pytest.mark.asyncio
async def test_status_changed_carries_only_the_delta(printer):
    await printer.open()
    printer.events.clear()
    printer._update(state=DeviceState.ONLINE)  # no change: no event
    assert printer.events == []
    printer._update(state=DeviceState.BUSY, supplies={"paper": SupplyLevel.FULL})
    (event,) = printer.events
    assert event.kind == "status_changed" and dict(event.changes) == {"state": DeviceState.BUSY}


@pytest.mark.asyncio
async def test_threshold_events_when_supplies_cross_low_or_out(printer):
    await printer.open()
    printer.events.clear()
    printer._update(supplies={"paper": SupplyLevel.LOW})
    printer._update(supplies={"paper": SupplyLevel.LOW})
    printer._update(supplies={"paper": SupplyLevel.OUT})
    thresholds = [(e.supply, e.level) for e in printer.events if e.kind == "threshold"]
    assert thresholds == [("paper", SupplyLevel.LOW), ("paper", SupplyLevel.OUT)]


@pytest.mark.asyncio
async def test_failures_record_kind_action_and_state(printer):
    await printer.open()
    failure = printer._fail(
        DeviceFailure("cover open", code="printer.cover_open", kind=ErrorKind.USER,
                      action=OperatorAction.CLEAR)
    )
    assert printer.status.state is DeviceState.USER_ERROR
    assert printer.status.last_error.action is OperatorAction.CLEAR
    assert printer.status.last_error.code == "printer.cover_open"
    assert [e.kind for e in printer.events][-1] == "error"
    assert failure.message_key == "device.failed"
    as_json = printer.status.to_json()
    assert as_json["last_error"]["action"] == "clear" and as_json["supplies"] == {"paper": "full"}


@pytest.mark.asyncio
async def test_blocking_call_returns(printer):
    await printer.start()
    assert await printer._call(printer.blocking_print, 0.01) == "printed"


@pytest.mark.asyncio
async def test_timeout_aborts_the_blocking_call_and_reports_offline(printer):
    await printer.start()
    with pytest.raises(DeviceTimeout):
        await printer._call(printer.blocking_print, 5)
    assert printer.aborted.wait(1)
    assert printer.status.state is DeviceState.OFFLINE
    assert printer.status.last_error.code == "timeout"


@pytest.mark.asyncio
async def test_cancel_aborts_the_blocking_call(printer):
    await printer.start()
    task = asyncio.create_task(printer._call(printer.blocking_print, 5, timeout=10))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert printer.aborted.wait(1)


@pytest.mark.asyncio
async def test_selftest_reports_without_raising(printer):
    result = await printer.selftest()
    assert not result.ok and "closed" in result.detail
    await printer.start()
    result = await printer.selftest()
    assert result.ok and result.to_json()["status"]["lifecycle"] == "enabled"


@pytest.mark.asyncio
async def test_a_broken_listener_does_not_break_the_device(printer):
    def broken(_event):
        raise RuntimeError("observer bug")

    printer.subscribe(broken)
    await printer.start()
    assert printer.status.lifecycle is Lifecycle.ENABLED


@pytest.mark.asyncio
async def test_a_call_stuck_in_the_library_neither_blocks_the_device_nor_exit():
    release = threading.Event()

    class Wedged(FakePrinter):
        def _abort(self):  # this library offers no way to interrupt the call
            pass

    printer = Wedged(command_timeout=0.1)
    await printer.start()
    for _ in range(4):  # each timed-out call leaves one stuck daemon thread behind
        with pytest.raises(DeviceTimeout):
            await printer._call(release.wait)
    # Past the per-device cap the device reports itself wedged instead of leaking threads.
    with pytest.raises(DeviceFailure) as info:
        await printer._call(release.wait)
    assert info.value.code == "driver_stuck"
    assert printer.status.last_error.code == "driver_stuck"
    stuck = [t for t in threading.enumerate() if t.name == "receipt-io"]
    assert stuck and all(t.daemon for t in stuck)  # they cannot hang the process's exit
    await printer.close()
    release.set()


@pytest.mark.asyncio
async def test_devices_do_not_share_worker_threads():
    a, b = FakePrinter(command_timeout=1), FakePrinter(command_timeout=1)
    await a.start()
    await b.start()
    names = await asyncio.gather(
        a._call(lambda: threading.current_thread().name),
        b._call(lambda: threading.current_thread().name),
    )
    assert names == ["receipt-io", "receipt-io"]
    assert a._executor is not b._executor
