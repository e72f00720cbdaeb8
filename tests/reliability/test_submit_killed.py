"""A submitting journey killed with SIGKILL at random points, again and again, against the
real sandbox platform: after a restart and a drain, the sandbox holds exactly one case per
durable submission — none lost, none doubled (DESIGN §7).

Each round runs `kiosk journey flexible_employment_enrol` as its own process (a fresh 苏服码
shown to the simulated scanner and verified by the sandbox, receipt printer emulator, the kiosk's real outbox in a data dir shared by
every round) and kills it after a random delay spread over a whole journey's length.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import running_sandbox

KIOSK = Path(sys.executable).with_name("kiosk")
KILLS = 50  # the issue asks for at least 50 kills
MAX_ROUNDS = 120
SEED = int(os.environ.get("KILL_TEST_SEED", "20261122"))


@pytest.fixture
def sandbox(tmp_path):
    # The sandbox answers a new application 0.6 s after storing it: kills land while the
    # platform has the case and the kiosk does not know yet, as on a slow network.
    with running_sandbox(tmp_path / "sandbox", submit_delay=0.6) as found:
        yield found


def test_killed_submissions_end_as_exactly_one_case_each(sandbox, tmp_path):
    url, sandbox_db = sandbox
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[paths]\ndata_dir = "{tmp_path / "kiosk"}"\n'
        f'[platform]\nurl = "{url}"\n'
        '[logging]\nlevel = "WARNING"\n'
    )
    journey = [KIOSK, "--config", str(config), "journey", "flexible_employment_enrol",
               "--via", "code", "--json"]
    rng = random.Random(SEED)
    completed = killed = 0
    started = time.monotonic()
    rounds = 0
    while killed < KILLS and rounds < MAX_ROUNDS:
        rounds += 1
        citizen = rng.choice(["c01", "c03", "c04"])
        proc = subprocess.Popen(
            [*journey, "--citizen", citizen],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=rng.uniform(0.05, 1.8))  # a whole run takes ~1.5 s
            completed += 1
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            killed += 1
        proc.stdout.close()
    assert killed >= KILLS, f"only {killed} kills in {rounds} rounds"

    outbox_db = tmp_path / "kiosk" / "outbox.sqlite3"
    with sqlite3.connect(f"file:{outbox_db}?mode=ro", uri=True) as db:
        pending = {key for (key,) in db.execute(
            "SELECT idempotency_key FROM submissions WHERE state IN ('queued', 'sending')")}
    with sqlite3.connect(f"file:{sandbox_db}?mode=ro", uri=True) as db:
        known_to_platform = {key for (key,) in db.execute(
            "SELECT key FROM idempotency_keys WHERE scope = 'application'")}
    # Records left by a kill after the durable write are delivered by the next round's
    # sender or by the drain below, with their original key.
    resent = pending & known_to_platform

    drain = subprocess.run(
        [KIOSK, "--config", str(config), "outbox", "drain", "--timeout", "60"],
        capture_output=True, text=True, timeout=120,
    )
    assert drain.returncode == 0, drain.stdout + drain.stderr[-2000:]
    counts = json.loads(drain.stdout.strip().splitlines()[-1])
    assert counts.get("failed_permanently", 0) == 0, counts
    sent = counts.get("sent", 0)

    with sqlite3.connect(f"file:{outbox_db}?mode=ro", uri=True) as db:
        records = db.execute(
            "SELECT idempotency_key, case_number, state FROM submissions"
        ).fetchall()
    with sqlite3.connect(f"file:{sandbox_db}?mode=ro", uri=True) as db:
        cases = {row[0] for row in db.execute(
            "SELECT case_number FROM cases WHERE item_id = 'flexible_employment_enrol'")}
        keys = db.execute(
            "SELECT key, result FROM idempotency_keys WHERE scope = 'application'"
        ).fetchall()
    killed_after_write = len(records) - completed
    print(f"{rounds} rounds in {time.monotonic() - started:.1f} s: {killed} killed, "
          f"{completed} completed, {len(records)} durable submissions ({killed_after_write} "
          f"killed after the outbox write), {len(pending)} still pending before the drain "
          f"({len(resent)} already received by the platform), {len(cases)} cases")

    # The kills must have landed on both sides of the durable write, or this proves nothing.
    assert killed_after_write >= 5, f"only {killed_after_write} kills after the outbox write"
    assert len(records) < rounds, "no kill landed before a submission was stored"
    assert len(records) == sent  # every durable submission was delivered...
    assert all(state == "sent" for _, _, state in records)
    assert len({case for _, case, _ in records}) == len(records)  # ...each to its own case
    assert {case for _, case, _ in records} == cases  # and the sandbox has no other case
    # One idempotency key per submission, each bound to that submission's case.
    assert {(key, case) for key, case, _ in records} == {(k, r) for k, r in keys}
