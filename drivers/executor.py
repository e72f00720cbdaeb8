"""Daemon worker threads for one device's blocking calls.

asyncio's default executor is shared by every device and joined when the loop closes, so
one call stuck inside a vendor library (a libpcsclite read that never returns, a USB
transfer on a wedged device) would stall every other device and hang the process on exit.
Each device therefore gets its own `DeviceExecutor`: calls run on daemon threads started
as needed; a stuck thread is simply left behind (the device's command timed out and its
status says so) and never blocks shutdown. At most `max_workers` threads exist per device:
past that the device is wedged, `submit` raises `ExecutorSaturated` and the driver reports
it, instead of leaking a thread per poll.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor, Future
from typing import Any


class ExecutorSaturated(RuntimeError):
    pass


class DeviceExecutor(Executor):
    def __init__(self, name: str, *, max_workers: int = 4, idle_s: float = 30.0) -> None:
        self._name = name
        self._max = max_workers
        self._idle_s = idle_s
        self._work: queue.SimpleQueue[tuple[Future, Any, tuple, dict] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads waiting for work and not yet promised to a submit
        self._closed = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"executor of {self._name} is shut down")
            if self._idle:
                self._idle -= 1  # promised to this call
            elif self._threads < self._max:
                self._threads += 1
                threading.Thread(
                    target=self._worker, name=f"{self._name}-io", daemon=True
                ).start()
            else:
                raise ExecutorSaturated(
                    f"{self._name}: {self._max} calls are stuck in the driver"
                )
            self._work.put((future, fn, args, kwargs))
        return future

    @property
    def threads(self) -> int:
        return self._threads

    def _worker(self) -> None:
        while True:
            try:
                item = self._work.get(timeout=self._idle_s)
            except queue.Empty:
                with self._lock:
                    # Leave only if no call is queued for the idle slot this thread holds.
                    if self._work.empty() and self._idle:
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue
            if item is None:  # shutdown
                with self._lock:
                    self._threads -= 1
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # handed to the awaiting coroutine
                    future.set_exception(exc)
                else:
                    future.set_result(result)
            with self._lock:
                if self._closed:
                    self._threads -= 1
                    return
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Idle threads leave; busy ones leave when their call returns. Never blocks on
        a stuck call (the threads are daemons)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._work.put(None)
