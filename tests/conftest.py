"""Shared test set-up.

UI tests (marker `ui`) each run in a forked child process: Kivy's window is a process-wide
singleton, and Kivy must never be imported by the parent pytest process. Fixtures are set up
in the parent (none of them imports Kivy); the test body runs in the child, which reports
its traceback back through a pipe.
"""

from __future__ import annotations

import os
import signal
import sys
import time
import traceback

import pytest

UI_TEST_TIMEOUT_S = 110  # below pytest-timeout (120 s), so the child is killed, never orphaned


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if pyfuncitem.get_closest_marker("ui") is None:
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child: run the test body, report, and leave without pytest's cleanup
        os.close(read_end)
        status = 0
        try:
            pyfuncitem.obj(**args)
        except BaseException:
            status = 1
            os.write(write_end, traceback.format_exc().encode("utf-8", "replace"))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.close(write_end)
            os._exit(status)
    os.close(write_end)
    marker = pyfuncitem.get_closest_marker("timeout")  # pytest-timeout's, when a test sets one
    limit = marker.args[0] - 10 if marker and marker.args else UI_TEST_TIMEOUT_S
    deadline = time.monotonic() + limit
    report = b""
    os.set_blocking(read_end, False)
    while True:
        try:
            chunk = os.read(read_end, 65536)
            report += chunk
        except BlockingIOError:
            chunk = None
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(read_end)
            pytest.fail(f"UI test still running after {limit}s: killed", pytrace=False)
        if chunk is None:
            time.sleep(0.01)
    os.set_blocking(read_end, True)
    while chunk := os.read(read_end, 65536):
        report += chunk
    os.close(read_end)
    if os.WIFSIGNALED(status):
        pytest.fail(f"UI test process died of signal {os.WTERMSIG(status)}", pytrace=False)
    if os.waitstatus_to_exitcode(status) != 0:
        pytest.fail(report.decode("utf-8", "replace") or "UI test failed", pytrace=False)
    return True


@pytest.fixture(autouse=True)
def _kivy_stays_out_of_the_parent():
    yield
    assert "kivy" not in sys.modules, "a test imported Kivy into the pytest process"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def pcscd():
    """The session's one pcscd (Debian's pcscd ignores PCSCLITE_CSOCK_NAME: only one can run
    per machine). Tests that restart it leave it running; the kiosk's services reuse it."""
    from drivers.sim.pcscd import Pcscd, PcscdAlreadyRunning

    daemon = Pcscd()
    try:
        daemon.start()
    except PcscdAlreadyRunning:
        pytest.fail(
            "another pcscd is running on this machine; these tests need their own "
            "(stop it, e.g. a leftover from an interrupted run)",
            pytrace=False,
        )
    yield daemon
    daemon.stop()
