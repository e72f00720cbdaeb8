"""Outbox: what is waiting to go to the platform, and for how long. Pending records are
fine (the sender drains them); one waiting for over an hour means the platform has not been
reachable for that long, and records failed for good need a person.

Read with plain sqlite3 in read-only mode and never through `Outbox.open`: the doctor runs as
root, and SQLite would create a missing `-wal`/`-shm` file for a WAL database, owned by root,
which the app (user kiosk) could then not open. So when the app is not running (no `-wal` and
`-shm` beside the database: a clean close checkpoints everything into the main file) the file
is opened `immutable`, which creates nothing; when it is running, its own `-wal`/`-shm` are
read as they are. Only metadata columns are read, never the encrypted personal part.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from kiosk.doctor.context import DoctorContext
from kiosk.doctor.model import CheckResult, fail, ok, warn

GROUP = "outbox"
PENDING = ("queued", "sending")  # kiosk.outbox.store.SubmissionState values
FAILED = "failed_permanently"


@dataclass(frozen=True)
class OutboxSummary:
    counts: dict[str, int]
    oldest_pending: float | None  # created_at (Unix time) of the oldest pending record
    pending_errors: list[str]


def read_summary(path: Path) -> OutboxSummary:
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    uri = path.absolute().as_uri() + "?mode=ro"
    if not (wal.exists() and shm.exists()):
        uri += "&immutable=1"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=2.0)
    try:
        counts = dict(conn.execute("SELECT state, COUNT(*) FROM submissions GROUP BY state"))
        oldest, = conn.execute(
            "SELECT MIN(created_at) FROM submissions WHERE state IN (?, ?)", PENDING
        ).fetchone()
        errors = [row[0] for row in conn.execute(
            "SELECT DISTINCT last_error FROM submissions WHERE state IN (?, ?) "
            "AND last_error IS NOT NULL ORDER BY last_error LIMIT 3", PENDING)]
    finally:
        conn.close()
    return OutboxSummary(counts, oldest, errors)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


async def run(ctx: DoctorContext) -> list[CheckResult]:
    path = ctx.outbox_path
    if not path.is_file():
        return [ok("outbox.pending", f"{path} not created yet: nothing queued")]
    try:
        summary = await asyncio.to_thread(read_summary, path)
    except (sqlite3.Error, OSError) as exc:
        return [fail("outbox.pending", f"cannot read {path}: {exc}",
                     f"check its owner and mode (see permissions); if it is damaged, stop the "
                     f"app, keep a copy, and `kiosk outbox status` as user kiosk says more")]
    pending = sum(summary.counts.get(s, 0) for s in PENDING)
    results = []
    if not pending or summary.oldest_pending is None:
        results.append(ok("outbox.pending", "nothing waiting to be sent"))
    else:
        age = max(0.0, time.time() - summary.oldest_pending)
        found = f"{pending} waiting, the oldest for {_age(age)}"
        if summary.pending_errors:
            found += " (last errors: " + ", ".join(summary.pending_errors) + ")"
        if age > ctx.options.outbox_age_warn_s:
            results.append(warn("outbox.pending", found,
                                "the platform has been unreachable: check [platform] url and the "
                                "network; `sudo -u kiosk kiosk outbox drain` sends now and "
                                "prints what fails"))
        else:
            results.append(ok("outbox.pending", found))
    failed = summary.counts.get(FAILED, 0)
    if failed:
        results.append(warn("outbox.failed", f"{failed} submission(s) refused for good by the "
                            "platform", "`kiosk outbox status`, then ops contact the citizens "
                            "by their local reference"))
    return results
