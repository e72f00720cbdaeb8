"""Run a coroutine that never waits, without an event loop.

Several parsers live inside async driver and client methods (the reader's record scan, the
platform client's answer handling). With their I/O replaced by plain functions nothing in
them suspends, so `send(None)` runs them to the end in microseconds: 100,000 inputs stay
affordable and the code under test is the real method, not a copy of it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Suspended(AssertionError):
    """The coroutine waited on something: the harness replaced too little I/O."""


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise Suspended("coroutine suspended; the fuzz harness must replace every awaited I/O")
