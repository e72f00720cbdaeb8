"""Background tasks started and forgotten by their caller (a tap's conductor step, a watcher's
follow-up): kept referenced until they end (asyncio itself keeps only weak references, so an
unreferenced task can vanish mid-step), and a failure is logged instead of lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from typing import Any


class TaskSet:
    def __init__(self, log: logging.Logger, what: str) -> None:
        self._log = log
        self._what = what  # "conductor task", "UI task": who failed, in the log
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error("%s failed", self._what, exc_info=task.exception())

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))  # a copy: tasks leave the set as they end

    def cancel_all(self) -> None:
        for task in self:
            task.cancel()

    def clear(self) -> None:
        self._tasks.clear()
