"""The outbox sender against a fake platform: retries with growing jittered backoff, permanent
failures, send_now, cancellation, and never two attempts on one record at once."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time

import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from kiosk.outbox import Keystore, Outbox, OutboxSender, SubmissionState, backoff_delay
from kiosk.platform.api import (
    CaseState,
    NotAuthorized,
    PlatformProtocolError,
    PlatformUnavailable,
    Rejected,
    SubmissionReceipt,
)
from tests.kiosk.outbox import make_application

class FakeTime:
    """Wall clock and sleep the test controls: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


class FakePlatform:
    """Deduplicates on the idempotency key like the real one; fails as told first."""

    def __init__(self, clock=time.time, failures=()) -> None:
        self.clock = clock
        self.failures = list(failures)
        self.calls: list[tuple[float, str, int]] = []
        self.cases: dict[str, SubmissionReceipt] = {}
        self.gate: asyncio.Event | None = None  # when set, submit waits for it

    async def submit(self, application, idempotency_key):
        self.calls.append((self.clock(), idempotency_key, application.fields["n"]))
        if self.gate is not None:
            await self.gate.wait()
        if self.failures:
            failure = self.failures.pop(0)
            if isinstance(failure, (int, float)):  # a hang of this many (real) seconds
                await asyncio.sleep(failure)
            else:
                raise failure
        if idempotency_key not in self.cases:
            number = f"JS2026-{len(self.cases) + 1:06d}"
            receipt = SubmissionReceipt(number, CaseState.RECEIVED, self.clock())
            self.cases[idempotency_key] = receipt
        return self.cases[idempotency_key]


@pytest_asyncio.fixture
async def outbox(tmp_path):
    box = await Outbox.open(tmp_path / "outbox.db", Keystore(tmp_path / "keys"))
    yield box
    await box.close()


async def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def sent(outbox: Outbox, ref: str):
    async def check() -> bool:
        record = await outbox.record(ref)
        return record.state is SubmissionState.SENT

    return check


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- backoff (pure) --------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_without_jitter():
    delays = [
        backoff_delay(n, base_delay=1, max_delay=300, jitter=0, rand=lambda: 0.5)
        for n in range(1, 12)
    ]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_delay(10_000, base_delay=1, max_delay=300, jitter=0) == 300


@given(
    attempts=st.integers(min_value=0, max_value=5000),
    base=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=10, max_value=3600),
    jitter=st.floats(min_value=0, max_value=1),
    r=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_stays_within_its_bounds(attempts, base, cap, jitter, r):
    delay = backoff_delay(attempts, base_delay=base, max_delay=cap, jitter=jitter, rand=lambda: r)
    ceiling = min(cap, base * 2 ** min(max(attempts, 1) - 1, 62))
    assert ceiling * (1 - jitter) - 1e-9 <= delay <= ceiling + 1e-9


# -- the drain loop --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_retryable_failures_back_off_then_one_send(outbox):
    fake = FakeTime()
    failures = [PlatformUnavailable()] * 3 + [PlatformProtocolError()]
    platform = FakePlatform(fake.clock, failures=failures)
    sender = OutboxSender(
        outbox,
        platform.submit,
        base_delay=1,
        max_delay=300,
        jitter=0.2,
        clock=fake.clock,
        sleep=fake.sleep,
        rand=random.Random(7).random,
    )
    record = await outbox.put(make_application())
    runner = asyncio.create_task(sender.run())
    await wait_until(sent(outbox, record.local_ref))
    await stop(runner)

    assert len(platform.calls) == 5
    assert {key for _, key, _ in platform.calls} == {record.idempotency_key}
    assert len(platform.cases) == 1  # one case
    gaps = [later[0] - earlier[0] for earlier, later in zip(platform.calls, platform.calls[1:])]
    expected_rand = random.Random(7)
    expected = [2 ** (k - 1) * (1 - 0.2 * expected_rand.random()) for k in range(1, 5)]
    assert gaps == pytest.approx(expected)
    for k, gap in enumerate(gaps, start=1):
        assert 0.8 * 2 ** (k - 1) <= gap <= 2 ** (k - 1)  # grows, within the jitter band
    assert gaps == sorted(gaps)
    assert any(gap != 2 ** k for k, gap in enumerate(gaps))  # jittered, not the bare ceiling
    final = await outbox.record(record.local_ref)
    assert final.attempts == 5 and final.last_error is None
    assert final.case_number == "JS2026-000001"


@pytest.mark.asyncio
async def test_permanent_errors_mark_failed_and_the_sender_moves_on(outbox):
    platform = FakePlatform(failures=[Rejected(), NotAuthorized()])
    sender = OutboxSender(outbox, platform.submit, base_delay=0.01, max_delay=0.05)
    refs = [(await outbox.put(make_application(i))).local_ref for i in range(3)]
    runner = asyncio.create_task(sender.run())
    await wait_until(sent(outbox, refs[2]))
    await stop(runner)

    first, second, third = [await outbox.record(ref) for ref in refs]
    assert first.state is SubmissionState.FAILED_PERMANENTLY
    assert first.last_error == "platform.rejected" and first.attempts == 1
    assert second.state is SubmissionState.FAILED_PERMANENTLY
    assert second.last_error == "platform.not_authorized"
    assert third.state is SubmissionState.SENT
    assert [n for _, _, n in platform.calls] == [0, 1, 2]  # tried in the order they were put
    assert await outbox.pending_count() == 0


@pytest.mark.asyncio
async def test_unexpected_errors_bad_answers_and_hangs_are_retried(outbox):
    platform = FakePlatform(failures=[RuntimeError("boom"), 5.0])
    bad_answers = [{"case": "not a receipt"}, SubmissionReceipt("", "no such state", "never")]

    async def submit(application, idempotency_key):
        if bad_answers:
            platform.calls.append((time.time(), idempotency_key, application.fields["n"]))
            return bad_answers.pop(0)
        return await platform.submit(application, idempotency_key)

    errors: list[str | None] = []
    sender = OutboxSender(outbox, submit, base_delay=0.01, max_delay=0.02, attempt_timeout=0.1)
    record = await outbox.put(make_application())
    for _ in range(4):
        assert await sender.send_now(record.local_ref, timeout=1) is None
        errors.append((await outbox.record(record.local_ref)).last_error)
    receipt = await sender.send_now(record.local_ref, timeout=1)
    assert errors == [
        "platform.protocol",
        "platform.protocol",
        "unexpected.RuntimeError",
        "outbox.attempt_timeout",
    ]
    assert (await outbox.record(record.local_ref)).attempts == 5
    assert receipt is not None and receipt.case_number == "JS2026-000001"
    assert {key for _, key, _ in platform.calls} == {record.idempotency_key}


@pytest.mark.asyncio
async def test_unreadable_record_is_parked_and_the_rest_still_go(tmp_path):
    db_path = tmp_path / "outbox.db"
    keys = Keystore(tmp_path / "keys")
    async with await Outbox.open(db_path, keys) as outbox:
        bad = await outbox.put(make_application(1))
        good = await outbox.put(make_application(2))
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE submissions SET item_id = 'edited' WHERE local_ref = ?", (bad.local_ref,))
    conn.commit()
    conn.close()
    async with await Outbox.open(db_path, keys) as outbox:
        platform = FakePlatform()
        sender = OutboxSender(outbox, platform.submit, base_delay=0.01, max_delay=0.05)
        runner = asyncio.create_task(sender.run())
        await wait_until(sent(outbox, good.local_ref))
        await stop(runner)
        parked = await outbox.record(bad.local_ref)
        assert parked.state is SubmissionState.FAILED_PERMANENTLY
        assert parked.last_error == "outbox.unreadable"
        assert [n for _, _, n in platform.calls] == [2]


@pytest.mark.asyncio
async def test_a_new_put_wakes_an_idle_sender(outbox):
    platform = FakePlatform()
    sender = OutboxSender(outbox, platform.submit, idle_poll=3600)
    runner = asyncio.create_task(sender.run())
    await asyncio.sleep(0.05)  # idle, waiting up to an hour
    record = await outbox.put(make_application())
    await wait_until(sent(outbox, record.local_ref), timeout=2)
    await stop(runner)


@pytest.mark.asyncio
async def test_a_clock_that_jumped_back_does_not_strand_records(outbox):
    fake = FakeTime()
    platform = FakePlatform(fake.clock, failures=[PlatformUnavailable()])
    sender = OutboxSender(
        outbox, platform.submit, base_delay=10, max_delay=60, clock=fake.clock, sleep=fake.sleep
    )
    record = await outbox.put(make_application())
    assert await sender.send_now(record.local_ref, timeout=1) is None
    retry_at = (await outbox.record(record.local_ref)).next_attempt_at
    fake.now -= 86_400  # the wall clock is set back a day: retry_at is now far in the future
    runner = asyncio.create_task(sender.run())
    await wait_until(sent(outbox, record.local_ref))
    await stop(runner)
    assert platform.calls[1][0] < retry_at - 3600  # retried without waiting out the jump


# -- send_now ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_send_now_online_returns_the_receipt_at_once(outbox):
    platform = FakePlatform()
    sender = OutboxSender(outbox, platform.submit)
    record = await outbox.put(make_application())
    receipt = await sender.send_now(record.local_ref, timeout=1)
    assert receipt == await outbox.receipt(record.local_ref)
    assert receipt.case_number == "JS2026-000001"
    assert await sender.send_now(record.local_ref, timeout=1) == receipt
    assert len(platform.calls) == 1  # the second call read the stored receipt


@pytest.mark.asyncio
async def test_send_now_timeout_leaves_the_attempt_running(outbox):
    platform = FakePlatform()
    platform.gate = asyncio.Event()
    sender = OutboxSender(outbox, platform.submit)
    record = await outbox.put(make_application())
    assert await sender.send_now(record.local_ref, timeout=0.05) is None
    assert (await outbox.record(record.local_ref)).state is SubmissionState.SENDING
    platform.gate.set()
    await wait_until(sent(outbox, record.local_ref))
    assert len(platform.calls) == 1


@pytest.mark.asyncio
async def test_send_now_and_run_never_send_one_record_twice(outbox):
    platform = FakePlatform()
    platform.gate = asyncio.Event()
    sender = OutboxSender(outbox, platform.submit, base_delay=0.01, max_delay=0.05)
    record = await outbox.put(make_application())
    runner = asyncio.create_task(sender.run())
    now = asyncio.create_task(sender.send_now(record.local_ref, timeout=2))
    await asyncio.sleep(0.1)  # both want it; one attempt is in flight
    assert len(platform.calls) == 1
    platform.gate.set()
    receipt = await now
    assert receipt is not None
    await asyncio.sleep(0.05)
    await stop(runner)
    assert len(platform.calls) == 1


@pytest.mark.asyncio
async def test_send_now_of_an_unknown_reference_is_none(outbox):
    sender = OutboxSender(outbox, FakePlatform().submit)
    assert await sender.send_now("Q-20260101-999999", timeout=0.5) is None


# -- cancellation ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_cancelling_run_mid_send_requeues_with_the_same_key(outbox):
    platform = FakePlatform()
    platform.gate = asyncio.Event()  # the platform never answers
    sender = OutboxSender(outbox, platform.submit)
    record = await outbox.put(make_application())
    runner = asyncio.create_task(sender.run())
    await wait_until(lambda: _sending(outbox, record.local_ref))
    await stop(runner)

    after = await outbox.record(record.local_ref)
    assert after.state is SubmissionState.QUEUED and after.attempts == 1
    platform.gate.set()
    receipt = await OutboxSender(outbox, platform.submit).send_now(record.local_ref, timeout=1)
    assert receipt is not None
    assert [key for _, key, _ in platform.calls] == [record.idempotency_key] * 2
    assert len(platform.cases) == 1


@pytest.mark.asyncio
async def test_close_cancels_background_attempts_consistently(outbox):
    platform = FakePlatform()
    platform.gate = asyncio.Event()
    sender = OutboxSender(outbox, platform.submit)
    record = await outbox.put(make_application())
    assert await sender.send_now(record.local_ref, timeout=0.05) is None
    await sender.close()
    assert (await outbox.record(record.local_ref)).state is SubmissionState.QUEUED


@pytest.mark.asyncio
async def test_a_record_stuck_sending_after_a_crash_is_resent_with_its_key(tmp_path):
    db_path = tmp_path / "outbox.db"
    keys = Keystore(tmp_path / "keys")
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
    # What a kill during the request leaves behind.
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE submissions SET state = 'sending', attempts = 1")
    conn.commit()
    conn.close()
    platform = FakePlatform()
    platform.cases[record.idempotency_key] = SubmissionReceipt(
        "JS2026-000777", CaseState.RECEIVED, time.time()
    )  # the platform had received the first send
    async with await Outbox.open(db_path, keys) as outbox:
        sender = OutboxSender(outbox, platform.submit)
        runner = asyncio.create_task(sender.run())
        await wait_until(sent(outbox, record.local_ref))
        await stop(runner)
        assert (await outbox.receipt(record.local_ref)).case_number == "JS2026-000777"
        assert (await outbox.record(record.local_ref)).attempts == 2
    assert [key for _, key, _ in platform.calls] == [record.idempotency_key]
    assert len(platform.cases) == 1


async def _sending(outbox: Outbox, ref: str) -> bool:
    return (await outbox.record(ref)).state is SubmissionState.SENDING


@pytest.mark.asyncio
async def test_send_now_says_so_when_the_platform_refuses_for_good(outbox):
    from kiosk.outbox import SubmissionRefused
    from kiosk.platform.api import Rejected

    fake = FakeTime()
    platform = FakePlatform(fake.clock, failures=[Rejected()])
    sender = OutboxSender(outbox, platform.submit, clock=fake.clock, sleep=fake.sleep)
    record = await outbox.put(make_application())
    with pytest.raises(SubmissionRefused) as info:
        await sender.send_now(record.local_ref, timeout=1)
    assert info.value.message_key == "platform.rejected" and not info.value.retryable
    assert (await outbox.record(record.local_ref)).state is SubmissionState.FAILED_PERMANENTLY
