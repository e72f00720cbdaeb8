"""The outbox sender: drains queued submissions to the platform, each one exactly once.

Why exactly once (no submission lost, none doubled) across crashes, kills and network cuts:

1. `Outbox.put` commits the row, with its idempotency key, before it returns; the kiosk says
   "submitted" only after that, and `synchronous=FULL` keeps the commit through a power cut.
   So every submission the citizen was told about exists on disk with one fixed key.
2. The key is never regenerated: every attempt, in this process or after a restart, sends the
   key stored in the row.
3. A row leaves the pending states (`queued`, `sending`) only when the platform answered:
   `sent` after a receipt (written after the answer arrived), `failed_permanently` after a
   refusal that no retry can fix. A crash anywhere else leaves the row `queued` or `sending`,
   and `sending` rows are requeued on open, so every row is tried until it has an answer: at
   least once.
4. The platform deduplicates on the key: the same key always yields the same case, however
   often it arrives (`PlatformClient.submit`'s contract). At least once with one key is
   therefore exactly one case.

The argument needs the platform's dedupe memory to outlive our retries (days, not minutes)
and holds per outbox database: restoring an old backup and sending from two kiosks is outside
it. A `put` whose commit raised an I/O error can, rarely, still have reached the disk; the
kiosk then told the citizen "not submitted" while the row will be sent (one case, never two,
unless the citizen submits again).

Scheduling: records are first tried in the order they were put. A retryable failure
(`PlatformError.retryable`, a timeout, an unexpected exception) schedules that record's next
attempt with exponential backoff and jitter; records behind it do not wait for it. A
permanent failure marks the record failed_permanently (ops sees it) and the sender moves on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

from kiosk.outbox.store import Outbox, OutboxError, SubmissionState
from kiosk.platform.api import CaseState, PlatformError, SubmissionReceipt

log = logging.getLogger(__name__)

Submit = Callable[..., Awaitable[SubmissionReceipt]]  # submit(application, idempotency_key=...)

TIMEOUT_ERROR = "outbox.attempt_timeout"
PROTOCOL_ERROR = "platform.protocol"


def backoff_delay(
    attempts: int,
    *,
    base_delay: float,
    max_delay: float,
    jitter: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after `attempts` failed attempts (≥ 1).

    The ceiling doubles per attempt from `base_delay` up to `max_delay`; the delay is drawn
    uniformly from [ceiling × (1 − jitter), ceiling]. jitter = 1 is "full jitter", a small
    jitter keeps delays near the ceiling; either way kiosks that lost the network together do
    not all retry in the same second when it comes back.
    """
    exponent = min(max(attempts, 1) - 1, 62)  # 2**62 s is beyond any max_delay: no overflow
    ceiling = min(max_delay, base_delay * (2.0**exponent))
    return ceiling * (1.0 - jitter * rand())


class SubmissionRefused(PlatformError):
    """The platform refused a submission for good (the record is failed_permanently);
    `message_key` is the platform error's, for the citizen."""

    def __init__(self, message_key: str) -> None:
        super().__init__(f"submission refused ({message_key})")
        if message_key.startswith("platform."):
            self.message_key = message_key


class OutboxSender:
    """Sends an outbox's records through `submit`. One sender per outbox."""

    def __init__(
        self,
        outbox: Outbox,
        submit: Submit,
        *,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        jitter: float = 0.2,
        attempt_timeout: float = 30.0,
        idle_poll: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not 0.0 <= jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("need 0 < base_delay <= max_delay")
        self._outbox = outbox
        self._submit = submit
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.attempt_timeout = attempt_timeout
        self.idle_poll = idle_poll
        # Wall-clock time, not monotonic: next_attempt_at is stored and must mean the same
        # after a reboot. A clock that jumps back is handled by Outbox.next_due's horizon.
        self._clock = clock
        self._sleep = sleep
        self._rand = rand
        self._in_flight: dict[str, asyncio.Task[SubmissionReceipt | None]] = {}

    # -- public ----------------------------------------------------------------------------

    async def send_now(self, local_ref: str, timeout: float) -> SubmissionReceipt | None:
        """Try this record at once (right after put(), so an online kiosk can print the case
        number). Returns the receipt, or None if it is not sent within `timeout` — the attempt
        then carries on in the background and the receipt lands in the outbox later.
        Raises `SubmissionRefused` when the platform refused it for good: the citizen must
        not be told "queued" for something that will never be sent."""
        try:
            existing = await self._outbox.receipt(local_ref)
            if existing is not None:
                return existing
            attempt = self._attempt(local_ref)
            receipt = await asyncio.wait_for(asyncio.shield(attempt), timeout)
            if receipt is None:
                record = await self._outbox.record(local_ref)
                if record is not None and record.state is SubmissionState.FAILED_PERMANENTLY:
                    raise SubmissionRefused(record.last_error or "platform.rejected")
            return receipt
        except TimeoutError:
            return None
        except OutboxError as exc:
            # The record is already durable; the citizen gets the "queued" receipt.
            log.warning("outbox: send_now of %s could not run: %s", local_ref, exc)
            return None

    async def run(self) -> None:
        """Drain the outbox until cancelled. Cancellation mid-attempt returns the record to
        `queued`; if the process dies instead, the next open does it. Same key either way."""
        await self._outbox.recover_stale(set(self._in_flight), self._clock())
        while True:
            # Clear before looking: a put() landing after the query still wakes the wait.
            self._outbox.changed.clear()
            try:
                now = self._clock()
                local_ref = await self._outbox.next_due(now, horizon=self.max_delay)
                if local_ref is not None:
                    await self._attempt(local_ref)
                    continue
                await self._outbox.recover_stale(set(self._in_flight), now)
                wake_at = await self._outbox.next_attempt_time()
            except Exception as exc:  # storage trouble or a bug: pause, never die, never spin
                log.warning("outbox: sender paused: %s", type(exc).__name__)
                await self._sleep(self.base_delay)
                continue
            if wake_at is None:
                delay = self.idle_poll
            else:
                delay = min(max(wake_at - now, 0.0), self.max_delay)
            await self._wait(delay)

    async def close(self) -> None:
        """Cancel attempts still in flight (their records go back to queued)."""
        tasks = list(self._in_flight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- one attempt -----------------------------------------------------------------------

    def _attempt(self, local_ref: str) -> asyncio.Task[SubmissionReceipt | None]:
        """The attempt in flight for this record, started if there is none: send_now and
        run() never send the same record twice at once."""
        task = self._in_flight.get(local_ref)
        if task is None:
            task = asyncio.create_task(self._send_one(local_ref), name=f"outbox-send {local_ref}")
            self._in_flight[local_ref] = task
            task.add_done_callback(lambda done: self._attempt_done(local_ref, done))
        return task

    def _attempt_done(self, local_ref: str, task: asyncio.Task[SubmissionReceipt | None]) -> None:
        if self._in_flight.get(local_ref) is task:
            del self._in_flight[local_ref]
        if not task.cancelled() and task.exception() is not None:
            # Retrieved here so a background attempt's failure is logged, not "never retrieved".
            log.warning("outbox: attempt on %s failed: %s", local_ref, task.exception())

    async def _send_one(self, local_ref: str) -> SubmissionReceipt | None:
        claim = await self._outbox.claim(local_ref, self._clock())
        if claim is None:  # sent meanwhile, failed, unreadable, or unknown
            return await self._outbox.receipt(local_ref)
        record = claim.record
        try:
            async with asyncio.timeout(self.attempt_timeout):
                receipt = await self._submit(
                    claim.application, idempotency_key=record.idempotency_key
                )
        except asyncio.CancelledError:
            # Unknown whether the platform got it; the same key makes that harmless. shield:
            # a second cancel must not stop the record going back to queued.
            await asyncio.shield(self._outbox.release(local_ref, self._clock()))
            raise
        except PlatformError as exc:
            if exc.retryable:
                await self._schedule_retry(local_ref, record.attempts, exc.message_key)
            else:
                await self._outbox.mark_failed(local_ref, exc.message_key)
                log.warning(
                    "outbox: submission %s refused by the platform (%s); marked failed",
                    local_ref,
                    exc.message_key,
                )
            return None
        except TimeoutError:
            await self._schedule_retry(local_ref, record.attempts, TIMEOUT_ERROR)
            return None
        except Exception as exc:  # a bug or an unmapped transport error: retry, never drop
            code = f"unexpected.{type(exc).__name__}"
            await self._schedule_retry(local_ref, record.attempts, code)
            return None
        if not _is_receipt(receipt):
            await self._schedule_retry(local_ref, record.attempts, PROTOCOL_ERROR)
            return None
        if not await self._outbox.mark_sent(local_ref, receipt):
            log.warning("outbox: %s was no longer sending when its receipt came", local_ref)
        return receipt

    async def _schedule_retry(self, local_ref: str, attempts: int, error_code: str) -> None:
        delay = backoff_delay(
            attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            jitter=self.jitter,
            rand=self._rand,
        )
        await self._outbox.mark_retry(local_ref, error_code, self._clock() + delay)
        log.info(
            "outbox: submission %s attempt %d failed (%s); next in %.1f s",
            local_ref,
            attempts,
            error_code,
            delay,
        )

    async def _wait(self, delay: float) -> None:
        """Sleep `delay` seconds, or less if a new record arrives."""
        sleeper = asyncio.ensure_future(self._sleep(delay))
        woken = asyncio.ensure_future(self._outbox.changed.wait())
        try:
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()


def _is_receipt(value: object) -> bool:
    """What submit returned can be stored as a receipt (else: the platform broke its API)."""
    if not isinstance(value, SubmissionReceipt):
        return False
    try:
        CaseState(value.state)
        float(value.received_at)
    except (ValueError, TypeError):
        return False
    return isinstance(value.case_number, str) and bool(value.case_number)
