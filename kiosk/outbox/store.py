"""The outbox store: submissions made durable before the citizen is told "submitted" (DESIGN §7).

One SQLite database in WAL mode with `synchronous=FULL`, one row per submission. `put()`
returns only after the row's transaction is committed and fsynced; any failure (disk full,
read-only file system, I/O error) raises `OutboxUnavailable` and leaves no partial row, so
the caller must not say "submitted".

Each row has a human-readable local reference (`Q-YYYYMMDD-NNNNNN`, from a counter that
never repeats on this kiosk) and an idempotency key (UUID4) written in the same transaction
as the row, before any send: every send of the row uses that one key (see `sender.py` for
why that gives exactly one case). The applicant and the form fields are sealed with AES-GCM
(`crypto.py`) under the keystore's current key; the rest of the row is clear metadata, so
the sender schedules and ops inspect without decrypting. A sent row keeps its case number
and receipt and has its personal part wiped.

SQLite is blocking: every database call runs on one dedicated thread that owns the only
connection, so calls are serialised and the event loop never waits on a disk flush.
"""

from __future__ import annotations

import asyncio
import enum
import fcntl
import functools
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kiosk.outbox.crypto import (
    RecordUnreadable,
    associated_data,
    decode_personal,
    encode_personal,
    seal,
    unseal,
)
from kiosk.outbox.keystore import Keystore, KeystoreError
from kiosk.platform.api import Application, CaseState, SubmissionReceipt

log = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 1
DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # a runaway queue must not fill the kiosk's disk
UNREADABLE_ERROR = "outbox.unreadable"


class SubmissionState(enum.StrEnum):
    QUEUED = "queued"  # durable, waiting for its (next) attempt
    SENDING = "sending"  # an attempt is in flight (or was, when the kiosk died)
    SENT = "sent"  # the platform returned a case; personal part wiped
    FAILED_PERMANENTLY = "failed_permanently"  # refused by the platform or unreadable: ops


# The state machine. Each transition's SQL also checks the state it leaves, so a stale caller
# cannot move a row along an edge that is not here.
TRANSITIONS: dict[SubmissionState, frozenset[SubmissionState]] = {
    SubmissionState.QUEUED: frozenset(
        {SubmissionState.SENDING, SubmissionState.FAILED_PERMANENTLY}
    ),
    SubmissionState.SENDING: frozenset(
        {SubmissionState.SENT, SubmissionState.QUEUED, SubmissionState.FAILED_PERMANENTLY}
    ),
    SubmissionState.SENT: frozenset(),
    SubmissionState.FAILED_PERMANENTLY: frozenset({SubmissionState.QUEUED}),  # ops requeue
}


class OutboxError(Exception):
    """Base of the outbox's own failures. Messages never carry personal data."""


class OutboxUnavailable(OutboxError):
    """The outbox cannot durably store or update submissions right now (disk full, read-only,
    I/O error, keystore unreadable, held by another process, closed). Nothing was half-written.
    `code` is a short machine-readable reason, e.g. `SQLITE_FULL`."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"outbox unavailable: {code}" + (f" ({detail})" if detail else ""))
        self.code = code


@dataclass(frozen=True)
class OutboxRecord:
    """One submission as ops sees it: metadata only, nothing personal."""

    local_ref: str
    idempotency_key: str
    item_id: str
    item_code: str
    state: SubmissionState
    attempts: int
    next_attempt_at: float
    last_error: str | None
    key_id: str | None  # None once sent (the personal part is gone)
    receipt: SubmissionReceipt | None
    created_at: float
    updated_at: float

    @property
    def case_number(self) -> str | None:
        return self.receipt.case_number if self.receipt else None


@dataclass(frozen=True, repr=False)
class Claim:
    """A record moved to `sending`, with its decrypted application, for one attempt."""

    record: OutboxRecord
    application: Application

    def __repr__(self) -> str:
        return f"Claim({self.record.local_ref}, attempt {self.record.attempts})"


@dataclass(frozen=True)
class RotationResult:
    key_id: str  # the new current key
    reencrypted: int
    unreadable: tuple[str, ...]  # local refs left under their old key (their keys are kept)
    retired: tuple[str, ...]  # key ids deleted because no record needs them any more


def format_local_ref(number: int, at: float) -> str:
    """`Q-20261122-000042`: the kiosk-local date of the submission and the kiosk's counter.
    The counter alone makes it unique; the date helps a citizen and a clerk talk about it."""
    return f"Q-{time.strftime('%Y%m%d', time.localtime(at))}-{number:06d}"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY,
    local_ref TEXT NOT NULL UNIQUE,
    idempotency_key TEXT NOT NULL UNIQUE,
    item_id TEXT NOT NULL,
    item_code TEXT NOT NULL,
    commitment_accepted INTEGER NOT NULL,
    submitted_at REAL NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('queued', 'sending', 'sent', 'failed_permanently')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    key_id TEXT,
    personal BLOB CHECK (typeof(personal) IN ('blob', 'null')),
    case_number TEXT,
    case_state TEXT,
    received_at REAL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    CHECK ((state = 'sent') = (personal IS NULL)),
    CHECK ((personal IS NULL) = (key_id IS NULL)),
    CHECK ((state = 'sent') = (case_number IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS submissions_by_state ON submissions (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters (name, value) VALUES ('local_ref', 0);
"""

_PENDING = (SubmissionState.QUEUED.value, SubmissionState.SENDING.value)

# Every read names its columns; `personal` is cast so that a value someone rewrote as text
# comes back as bytes and fails authentication, instead of failing to decode as UTF-8.
_COLUMNS = """seq, local_ref, idempotency_key, item_id, item_code, commitment_accepted,
    submitted_at, state, attempts, next_attempt_at, last_error, key_id,
    CAST(personal AS BLOB) AS personal, case_number, case_state, received_at, created_at,
    updated_at"""


class Outbox:
    """The durable queue of submissions. Create with `await Outbox.open(...)`."""

    def __init__(
        self,
        path: Path,
        keystore: Keystore,
        *,
        max_bytes: int,
        read_only: bool,
        clock: Callable[[], float],
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._keystore = keystore
        self._max_bytes = max_bytes
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-db")
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        self._closed = False
        # Set after every put/requeue so a waiting sender wakes at once instead of polling.
        self.changed = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: Path | str,
        keystore: Keystore,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        read_only: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> Outbox:
        """Open (creating if needed) the outbox at `path`. One writer per database: a second
        writable open while another process holds it raises OutboxUnavailable("locked").
        `read_only=True` is for ops tools: inspect without the power to change anything.
        `max_bytes` caps the database (SQLite's max_page_count); beyond it, put() fails with
        OutboxUnavailable("SQLITE_FULL") while sending keeps working."""
        outbox = cls(Path(path), keystore, max_bytes=max_bytes, read_only=read_only, clock=clock)
        try:
            await outbox._run(outbox._connect)
        except BaseException:
            await outbox._shutdown()
            raise
        return outbox

    async def close(self) -> None:
        if self._closed:
            return
        try:
            await self._run(self._disconnect)
        finally:
            self._closed = True
            await self._shutdown()

    async def __aenter__(self) -> Outbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the kiosk's side ------------------------------------------------------------------

    async def put(self, application: Application) -> OutboxRecord:
        """Store a submission durably. Returns only after the commit is on disk; raises
        OutboxUnavailable (nothing stored) or UnserializableFields (an item bug)."""
        # Encode before touching the disk: a field the codec rejects must not cost a
        # reference number or leave anything behind.
        plaintext = encode_personal(application.applicant, application.fields)
        record = await self._run(self._put, application, plaintext)
        self.changed.set()
        return record

    async def receipt(self, local_ref: str) -> SubmissionReceipt | None:
        """The platform's receipt once the submission is sent; None while it is not (or for
        a reference this outbox does not know)."""
        record = await self.record(local_ref)
        return record.receipt if record else None

    async def pending_count(self) -> int:
        """Submissions not yet sent and not given up on (queued or sending)."""
        return await self._run(self._pending_count)

    # -- ops -------------------------------------------------------------------------------

    async def record(self, local_ref: str) -> OutboxRecord | None:
        return await self._run(self._record, local_ref)

    async def records(self, states: Iterable[SubmissionState] | None = None) -> list[OutboxRecord]:
        """Every record (or those in `states`), oldest first. Metadata only."""
        wanted = None if states is None else tuple(SubmissionState(s).value for s in states)
        return await self._run(self._records, wanted)

    async def state_counts(self) -> dict[SubmissionState, int]:
        """How many records are in each state (for the health endpoint and heartbeats)."""
        return await self._run(self._state_counts)

    async def requeue(self, local_ref: str) -> bool:
        """Give a failed_permanently record another go (after ops fixed the cause). Same
        idempotency key. False if the record is not in that state."""
        done = await self._run(self._requeue, local_ref)
        if done:
            self.changed.set()
        return done

    async def load_application(self, local_ref: str) -> Application | None:
        """Decrypt a record's application (on-device tools and tests). None for an unknown
        reference or a sent record (its personal part is wiped); RecordUnreadable if the
        sealed part fails authentication."""
        return await self._run(self._load_application, local_ref)

    async def rotate(self) -> RotationResult:
        """Make a new key current, re-encrypt every record still holding personal data under
        it in one transaction, then retire keys nothing references. A crash at any point
        leaves every record readable: the old key is deleted only after the commit."""
        return await self._run(self._rotate)

    # -- the sender's side -----------------------------------------------------------------

    async def claim(self, local_ref: str, now: float) -> Claim | None:
        """Move a queued record to `sending` (counting the attempt) and decrypt it. None if
        the record is not queued. An unreadable record is marked failed_permanently."""
        return await self._run(self._claim, local_ref, now)

    async def mark_sent(self, local_ref: str, receipt: SubmissionReceipt) -> bool:
        return await self._run(self._mark_sent, local_ref, receipt)

    async def mark_retry(self, local_ref: str, error_code: str, next_attempt_at: float) -> bool:
        return await self._run(
            self._leave_sending, local_ref, SubmissionState.QUEUED, error_code, next_attempt_at
        )

    async def mark_failed(self, local_ref: str, error_code: str) -> bool:
        return await self._run(
            self._leave_sending, local_ref, SubmissionState.FAILED_PERMANENTLY, error_code, None
        )

    async def release(self, local_ref: str, now: float) -> bool:
        """An attempt was abandoned (cancelled): back to queued, due now, same key."""
        return await self._run(self._leave_sending, local_ref, SubmissionState.QUEUED, None, now)

    async def recover_stale(self, in_flight: Collection[str], now: float) -> int:
        """Return `sending` records with no attempt in flight to `queued` (after a crash, or
        a failed state update). Their next send reuses their idempotency key."""
        return await self._run(self._recover_stale, tuple(in_flight), now)

    async def next_due(self, now: float, *, horizon: float) -> str | None:
        """The oldest queued record whose attempt is due. A next_attempt_at more than
        `horizon` ahead can only come from a wall clock that jumped back: treat it as due."""
        return await self._run(self._next_due, now, now + horizon)

    async def next_attempt_time(self) -> float | None:
        return await self._run(self._next_attempt_time)

    # -- the database thread ---------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise OutboxUnavailable("closed")
        loop = asyncio.get_running_loop()
        call = functools.partial(self._guarded, fn, *args)
        return await loop.run_in_executor(self._executor, call)

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        """Map storage failures to OutboxUnavailable, rolling back whatever was begun."""
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            self._rollback()
            code = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
            raise OutboxUnavailable(code) from exc
        except KeystoreError as exc:
            self._rollback()
            raise OutboxUnavailable("keystore", str(exc)) from exc
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        conn = self._conn
        if conn is not None and conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite already rolled back (it does for some FULL/IOERR cases)

    def _connect(self) -> None:
        if not self.read_only:
            self._take_lock()
        if self.read_only:
            conn = sqlite3.connect(
                self.path.absolute().as_uri() + "?mode=ro", uri=True, isolation_level=None
            )
        else:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        conn.row_factory = sqlite3.Row
        self._conn = conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxUnavailable("schema", f"database schema {version} is newer than this code")
        if self.read_only:
            if version != SCHEMA_VERSION:
                raise OutboxUnavailable("schema", "not an outbox database")
            return
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise OutboxUnavailable("journal_mode", f"WAL refused ({mode})")
        # FULL: in WAL mode the WAL is fsynced at every commit, so a commit that returned
        # survives a power cut (NORMAL could lose the last transactions).
        conn.execute("PRAGMA synchronous=FULL")
        # Zero freed content: the wiped ciphertext of sent records does not linger in pages.
        conn.execute("PRAGMA secure_delete=ON")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={max(1, self._max_bytes // page_size)}")
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
            self._sync_directory()  # the new database file's directory entry
        stale = conn.execute(
            "UPDATE submissions SET state = 'queued', updated_at = ? WHERE state = 'sending'",
            (self._clock(),),
        ).rowcount
        if stale:
            log.info("outbox: %d submission(s) were in flight at the last stop; requeued", stale)

    def _take_lock(self) -> None:
        # One writer process per outbox: two senders would each requeue the other's in-flight
        # rows. flock is released by the kernel when a process dies, even by SIGKILL.
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OutboxUnavailable("lock", exc.strerror or "") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise OutboxUnavailable("locked", "another process has this outbox open") from None
        self._lock_fd = fd

    def _sync_directory(self) -> None:
        fd = os.open(self.path.absolute().parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _shutdown(self) -> None:
        self._closed = True
        if self._conn is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
            except Exception:  # closing after a failed open: nothing more to save
                pass
        self._executor.shutdown(wait=False)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise OutboxUnavailable("closed")
        return self._conn

    # Everything below runs on the database thread only.

    def _put(self, application: Application, plaintext: bytes) -> OutboxRecord:
        db = self._db
        now = self._clock()
        idempotency_key = str(uuid.uuid4())
        db.execute("BEGIN IMMEDIATE")
        number = db.execute(
            "UPDATE counters SET value = value + 1 WHERE name = 'local_ref' RETURNING value"
        ).fetchone()[0]
        # After the first write, so a read-only outbox fails before it could create a key.
        key_id, key = self._keystore.current()
        local_ref = format_local_ref(number, now)
        ad = associated_data(
            local_ref=local_ref,
            idempotency_key=idempotency_key,
            key_id=key_id,
            item_id=application.item_id,
            item_code=application.item_code,
            commitment_accepted=application.commitment_accepted,
            submitted_at=application.created_at,
        )
        db.execute(
            """INSERT INTO submissions (seq, local_ref, idempotency_key, item_id, item_code,
                   commitment_accepted, submitted_at, state, attempts, next_attempt_at,
                   key_id, personal, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)""",
            (
                number,
                local_ref,
                idempotency_key,
                application.item_id,
                application.item_code,
                int(bool(application.commitment_accepted)),
                float(application.created_at),
                now,
                key_id,
                seal(key, plaintext, ad),
                now,
                now,
            ),
        )
        db.execute("COMMIT")
        # Built from what was written, not read back: once COMMIT returned, nothing may turn
        # this put into a failure the caller would report as "not submitted".
        return OutboxRecord(
            local_ref=local_ref,
            idempotency_key=idempotency_key,
            item_id=application.item_id,
            item_code=application.item_code,
            state=SubmissionState.QUEUED,
            attempts=0,
            next_attempt_at=now,
            last_error=None,
            key_id=key_id,
            receipt=None,
            created_at=now,
            updated_at=now,
        )

    def _record(self, local_ref: str) -> OutboxRecord | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM submissions WHERE local_ref = ?", (local_ref,)
        ).fetchone()
        return _to_record(row) if row else None

    def _records(self, states: tuple[str, ...] | None) -> list[OutboxRecord]:
        if states is None:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM submissions ORDER BY seq").fetchall()
        else:
            marks = ",".join("?" * len(states))
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM submissions WHERE state IN ({marks}) ORDER BY seq",
                states,
            ).fetchall()
        return [_to_record(r) for r in rows]

    def _pending_count(self) -> int:
        return self._db.execute(
            "SELECT COUNT(*) FROM submissions WHERE state IN (?, ?)", _PENDING
        ).fetchone()[0]

    def _state_counts(self) -> dict[SubmissionState, int]:
        counts = {state: 0 for state in SubmissionState}
        for state, n in self._db.execute(
            "SELECT state, COUNT(*) FROM submissions GROUP BY state"
        ):
            counts[SubmissionState(state)] = n
        return counts

    def _open_row(self, row: sqlite3.Row) -> Application:
        """Decrypt a row's personal part against its clear metadata."""
        try:
            key = self._keystore.get(row["key_id"])
        except KeystoreError:
            raise RecordUnreadable("the record's key is not in the keystore") from None
        plaintext = unseal(key, row["personal"], _row_ad(row, row["key_id"]))
        applicant, fields = decode_personal(plaintext)
        return Application(
            item_id=row["item_id"],
            item_code=row["item_code"],
            applicant=applicant,
            fields=fields,
            commitment_accepted=bool(row["commitment_accepted"]),
            created_at=row["submitted_at"],
        )

    def _load_application(self, local_ref: str) -> Application | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM submissions WHERE local_ref = ?", (local_ref,)
        ).fetchone()
        if row is None or row["personal"] is None:
            return None
        return self._open_row(row)

    def _claim(self, local_ref: str, now: float) -> Claim | None:
        db = self._db
        row = db.execute(
            f"SELECT {_COLUMNS} FROM submissions WHERE local_ref = ?", (local_ref,)
        ).fetchone()
        if row is None or row["state"] != SubmissionState.QUEUED:
            return None
        try:
            application = self._open_row(row)
        except RecordUnreadable:
            # Nothing can ever send this row: park it where ops see it instead of retrying.
            db.execute(
                """UPDATE submissions SET state = 'failed_permanently', last_error = ?,
                       updated_at = ? WHERE seq = ? AND state = 'queued'""",
                (UNREADABLE_ERROR, self._clock(), row["seq"]),
            )
            log.error("outbox: submission %s is unreadable; marked failed", local_ref)
            return None
        changed = db.execute(
            """UPDATE submissions SET state = 'sending', attempts = attempts + 1, updated_at = ?
               WHERE seq = ? AND state = 'queued'""",
            (self._clock(), row["seq"]),
        ).rowcount
        if not changed:
            return None
        record = self._record(local_ref)
        assert record is not None
        return Claim(record, application)

    def _mark_sent(self, local_ref: str, receipt: SubmissionReceipt) -> bool:
        changed = self._db.execute(
            """UPDATE submissions SET state = 'sent', case_number = ?, case_state = ?,
                   received_at = ?, personal = NULL, key_id = NULL, last_error = NULL,
                   updated_at = ?
               WHERE local_ref = ? AND state = 'sending'""",
            (
                receipt.case_number,
                CaseState(receipt.state).value,
                float(receipt.received_at),
                self._clock(),
                local_ref,
            ),
        ).rowcount
        return bool(changed)

    def _leave_sending(
        self,
        local_ref: str,
        to: SubmissionState,
        error_code: str | None,
        next_attempt_at: float | None,
    ) -> bool:
        assert to in TRANSITIONS[SubmissionState.SENDING] and to is not SubmissionState.SENT
        changed = self._db.execute(
            """UPDATE submissions SET state = ?, last_error = COALESCE(?, last_error),
                   next_attempt_at = COALESCE(?, next_attempt_at), updated_at = ?
               WHERE local_ref = ? AND state = 'sending'""",
            (to.value, error_code, next_attempt_at, self._clock(), local_ref),
        ).rowcount
        return bool(changed)

    def _requeue(self, local_ref: str) -> bool:
        now = self._clock()
        changed = self._db.execute(
            """UPDATE submissions SET state = 'queued', next_attempt_at = ?, updated_at = ?
               WHERE local_ref = ? AND state = 'failed_permanently' AND personal IS NOT NULL""",
            (now, now, local_ref),
        ).rowcount
        return bool(changed)

    def _recover_stale(self, in_flight: tuple[str, ...], now: float) -> int:
        marks = ",".join("?" * len(in_flight))
        not_in_flight = f"AND local_ref NOT IN ({marks})" if in_flight else ""
        return self._db.execute(
            f"""UPDATE submissions SET state = 'queued', next_attempt_at = ?, updated_at = ?
                WHERE state = 'sending' {not_in_flight}""",
            (now, self._clock(), *in_flight),
        ).rowcount

    def _next_due(self, now: float, horizon_end: float) -> str | None:
        row = self._db.execute(
            """SELECT local_ref FROM submissions
               WHERE state = 'queued' AND (next_attempt_at <= ? OR next_attempt_at > ?)
               ORDER BY seq LIMIT 1""",
            (now, horizon_end),
        ).fetchone()
        return row[0] if row else None

    def _next_attempt_time(self) -> float | None:
        return self._db.execute(
            "SELECT MIN(next_attempt_at) FROM submissions WHERE state = 'queued'"
        ).fetchone()[0]

    def _rotate(self) -> RotationResult:
        if self.read_only:  # checked here: keystore.rotate() below is not a database write
            raise OutboxUnavailable("read_only")
        db = self._db
        # The new key is durable and current before any row uses it; until the commit below,
        # rows stay under their old keys, which are still in the store.
        new_id = self._keystore.rotate()
        new_key = self._keystore.get(new_id)
        reencrypted, unreadable = 0, []
        db.execute("BEGIN IMMEDIATE")
        rows = db.execute(
            f"""SELECT {_COLUMNS} FROM submissions
                WHERE personal IS NOT NULL AND key_id != ? ORDER BY seq""",
            (new_id,),
        ).fetchall()
        for row in rows:
            try:
                key = self._keystore.get(row["key_id"])
                plaintext = unseal(key, row["personal"], _row_ad(row, row["key_id"]))
            except (RecordUnreadable, KeystoreError):
                unreadable.append(row["local_ref"])
                continue
            db.execute(
                "UPDATE submissions SET key_id = ?, personal = ?, updated_at = ? WHERE seq = ?",
                (new_id, seal(new_key, plaintext, _row_ad(row, new_id)), self._clock(), row["seq"]),
            )
            reencrypted += 1
        db.execute("COMMIT")
        referenced = {
            r[0]
            for r in db.execute("SELECT DISTINCT key_id FROM submissions WHERE key_id IS NOT NULL")
        }
        retired = []
        for key_id in self._keystore.key_ids():
            if key_id != new_id and key_id not in referenced:
                try:
                    self._keystore.retire(key_id)
                except KeystoreError as exc:
                    # The rotation itself is committed; a key left behind is retired next time.
                    log.warning("outbox: could not retire key %s: %s", key_id, exc)
                    continue
                retired.append(key_id)
        if unreadable:
            log.error("outbox: %d record(s) unreadable during key rotation", len(unreadable))
        return RotationResult(new_id, reencrypted, tuple(unreadable), tuple(retired))


def _row_ad(row: sqlite3.Row, key_id: str) -> bytes:
    return associated_data(
        local_ref=row["local_ref"],
        idempotency_key=row["idempotency_key"],
        key_id=key_id,
        item_id=row["item_id"],
        item_code=row["item_code"],
        commitment_accepted=bool(row["commitment_accepted"]),
        submitted_at=row["submitted_at"],
    )


def _to_record(row: sqlite3.Row) -> OutboxRecord:
    receipt = None
    if row["case_number"] is not None:
        receipt = SubmissionReceipt(
            case_number=row["case_number"],
            state=CaseState(row["case_state"]),
            received_at=row["received_at"],
        )
    return OutboxRecord(
        local_ref=row["local_ref"],
        idempotency_key=row["idempotency_key"],
        item_id=row["item_id"],
        item_code=row["item_code"],
        state=SubmissionState(row["state"]),
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        key_id=row["key_id"],
        receipt=receipt,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
