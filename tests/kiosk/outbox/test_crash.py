"""A real crash test: SIGKILL a kiosk process at random points while it puts and sends
submissions, restart it, and check the platform holds exactly one case per submission.

The "platform" is a small aiohttp server in the test process on 127.0.0.1 that deduplicates
on the idempotency key like the real one. The kiosk is this module run as a script
(`python -m tests.kiosk.outbox.test_crash worker ...`): a real Outbox and OutboxSender
sending over HTTP. Kills land on a timer, right after a put returned, and from inside the
server when a request arrives (before it is recorded, or after it is recorded but before the
answer leaves: the window that only the stable key makes safe).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from kiosk.outbox import Keystore, Outbox, OutboxSender, SubmissionState
from kiosk.platform.api import CaseState, PlatformUnavailable, SubmissionReceipt
from tests.kiosk.outbox import make_application

REPO = Path(__file__).resolve().parents[3]
KILLS_WANTED = 60
KILLS_REQUIRED = 50
TIME_BUDGET_S = 45.0  # the kill phase stops here even on a slow machine
FOREVER = 1_000_000  # "keep putting until killed"


# -- the platform stand-in -------------------------------------------------------------------


class DedupPlatform:
    """Records idempotency keys; the same key always gets the same case. Can kill the kiosk
    process when a request arrives, before or after recording it."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cases: dict[str, tuple[str, int]] = {}  # key -> (case number, submission n)
        self.requests = 0
        self.repeats = 0
        self.victim: int | None = None
        self.kill_at_request: int | None = None  # kill on the request with this number
        self.kill_after_recording = False
        self.server_kills = 0

    def arm(self, pid: int, *, requests_from_now: int, after_recording: bool) -> None:
        self.victim = pid
        self.kill_at_request = self.requests + requests_from_now
        self.kill_after_recording = after_recording

    def disarm(self) -> None:
        self.victim = self.kill_at_request = None

    def _maybe_kill(self, request_number: int, after_recording: bool) -> bool:
        if (
            self.victim is not None
            and request_number == self.kill_at_request
            and self.kill_after_recording == after_recording
        ):
            os.kill(self.victim, signal.SIGKILL)
            self.server_kills += 1
            self.disarm()
            return True
        return False

    async def submit(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests += 1
        number = self.requests  # requests overlap: compare this one's number, not the count
        await asyncio.sleep(self.rng.uniform(0, 0.003))  # a little latency widens the windows
        if self._maybe_kill(number, after_recording=False):
            return web.json_response({"error": "gone"}, status=503)
        key = body["idempotency_key"]
        if key in self.cases:
            self.repeats += 1
        else:
            self.cases[key] = (f"JS2026-{len(self.cases) + 1:06d}", body["n"])
        self._maybe_kill(number, after_recording=True)  # the answer is then written to a dead peer
        case_number, _ = self.cases[key]
        return web.json_response(
            {"case_number": case_number, "state": "received", "received_at": time.time()}
        )


# -- the kiosk process -----------------------------------------------------------------------


async def worker(db: str, keys: str, url: str, total: int) -> None:
    """Put submissions n = (rows already stored) .. total-1, each followed by send_now, with
    the sender running; then drain and say so. Rows are put one at a time, so row k holds
    submission n = k whatever happened to earlier runs."""
    outbox = await Outbox.open(db, Keystore(keys))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:

        async def submit(application, idempotency_key):
            payload = {"idempotency_key": idempotency_key, "n": application.fields["n"]}
            try:
                async with http.post(url, json=payload) as response:
                    if response.status >= 500:
                        raise PlatformUnavailable()
                    data = await response.json()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                raise PlatformUnavailable() from None
            return SubmissionReceipt(
                data["case_number"], CaseState(data["state"]), data["received_at"]
            )

        sender = OutboxSender(outbox, submit, base_delay=0.005, max_delay=0.05, attempt_timeout=2)
        runner = asyncio.create_task(sender.run())
        stored = len(await outbox.records())
        print(f"READY {stored}", flush=True)
        for n in range(stored, total):
            record = await outbox.put(make_application(n))
            print(f"PUT {n}", flush=True)  # from here the citizen has been told "submitted"
            await sender.send_now(record.local_ref, timeout=1)
        while await outbox.pending_count():
            await asyncio.sleep(0.005)
        print("DRAINED", flush=True)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await sender.close()
    await outbox.close()


# -- the test --------------------------------------------------------------------------------


class Kiosk:
    """One run of the worker process."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.acknowledged: list[int] = []

    @classmethod
    async def start(cls, tmp_path: Path, url: str, total: int) -> Kiosk:
        with open(tmp_path / "worker.stderr", "ab") as stderr:
            proc = await cls._spawn(tmp_path, url, total, stderr)
        kiosk = cls(proc)
        line = await kiosk.line(timeout=20)
        assert line.startswith("READY"), f"worker did not start: {line!r}"
        return kiosk

    @staticmethod
    async def _spawn(tmp_path: Path, url: str, total: int, stderr) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.kiosk.outbox.test_crash",
            "worker",
            str(tmp_path / "outbox.db"),
            str(tmp_path / "keys"),
            url,
            str(total),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )

    async def line(self, timeout: float = 10) -> str:
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        text = raw.decode().strip()
        if text.startswith("PUT "):
            self.acknowledged.append(int(text.split()[1]))
        return text

    async def until(self, predicate, timeout: float = 10) -> str:
        """Read lines until one matches (returns it) or the process's output ends ("")."""
        while True:
            text = await self.line(timeout)
            if text == "" or predicate(text):
                return text

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    async def reap(self) -> int:
        while await self.line(timeout=10) != "":  # drain what it printed before dying
            pass
        return await asyncio.wait_for(self.proc.wait(), 10)


@pytest.mark.asyncio
@pytest.mark.timeout(110)
async def test_sigkill_anywhere_loses_nothing_and_doubles_nothing(tmp_path):
    seed = int(os.environ.get("OUTBOX_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    platform = DedupPlatform(rng)
    app = web.Application()
    app.router.add_post("/submit", platform.submit)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}/submit"

    acknowledged: set[int] = set()
    kills = {"timer": 0, "after_put": 0, "server_before": 0, "server_after": 0}
    started = time.monotonic()
    try:
        while sum(kills.values()) < KILLS_WANTED and time.monotonic() - started < TIME_BUDGET_S:
            kiosk = await Kiosk.start(tmp_path, url, FOREVER)
            how = rng.choice(list(kills))
            if how == "timer":
                await asyncio.sleep(rng.uniform(0, 0.06))
                kiosk.kill()
            elif how == "after_put":
                for _ in range(rng.randint(1, 3)):
                    await kiosk.until(lambda text: text.startswith("PUT"))
                kiosk.kill()
            else:
                platform.arm(
                    kiosk.proc.pid,
                    requests_from_now=rng.randint(1, 3),
                    after_recording=how == "server_after",
                )
                try:
                    await asyncio.wait_for(kiosk.proc.wait(), 10)
                finally:
                    platform.disarm()
            code = await kiosk.reap()
            acknowledged.update(kiosk.acknowledged)
            assert code == -signal.SIGKILL, f"worker exited {code} ({how}); see worker.stderr"
            kills[how] += 1
        kill_phase_s = time.monotonic() - started

        # Restart once more without killing: it only drains what is stored.
        kiosk = await Kiosk.start(tmp_path, url, 0)
        assert await kiosk.until(lambda text: text == "DRAINED", timeout=30) == "DRAINED"
        assert await kiosk.reap() == 0
    finally:
        await runner.cleanup()

    total_kills = sum(kills.values())
    print(
        f"\noutbox crash test (seed {seed}): {total_kills} SIGKILLs {kills} "
        f"in {kill_phase_s:.1f}s; {len(platform.cases)} cases, {platform.requests} requests, "
        f"{platform.repeats} repeated keys answered with the same case"
    )
    assert total_kills >= KILLS_REQUIRED, f"only {total_kills} kills in the time budget"
    assert platform.server_kills == kills["server_before"] + kills["server_after"]

    async with await Outbox.open(tmp_path / "outbox.db", Keystore(tmp_path / "keys")) as outbox:
        records = await outbox.records()
    # Every stored submission was sent and carries the case the platform gave its key.
    assert records and all(r.state is SubmissionState.SENT for r in records)
    for record in records:
        assert record.idempotency_key in platform.cases, "a record was sent under another key"
        assert record.case_number == platform.cases[record.idempotency_key][0]
    # Exactly one case per submission: none lost, none doubled.
    submissions = sorted(n for _, n in platform.cases.values())
    assert submissions == list(range(len(records)))
    # Everything a citizen was told "submitted" is among them.
    assert acknowledged <= set(submissions)
    # The dangerous window (recorded by the platform, answer lost) was really exercised.
    if kills["server_after"]:
        assert platform.repeats >= 1


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    _, _, db_arg, keys_arg, url_arg, total_arg = sys.argv
    asyncio.run(worker(db_arg, keys_arg, url_arg, int(total_arg)))
