"""The outbox store on a real SQLite file: durability, encryption at rest, tampering, key
rotation, and failures that must leave nothing half-written."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from kiosk.outbox import (
    Keystore,
    Outbox,
    OutboxUnavailable,
    RecordUnreadable,
    SubmissionState,
    UnserializableFields,
)
from kiosk.platform.api import CaseState, SubmissionReceipt
from tests.kiosk.outbox import make_application, personal_needles

pytestmark = pytest.mark.asyncio

REF = re.compile(r"^Q-\d{8}-\d{6}$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.fixture
def paths(tmp_path):
    return tmp_path / "outbox.db", Keystore(tmp_path / "keys")


def raw(db_path) -> sqlite3.Connection:
    """A second, plain connection: what another process (or ops with sqlite3) would see."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    return conn


def receipt(n: int = 1) -> SubmissionReceipt:
    return SubmissionReceipt(f"JS2026-{n:06d}", CaseState.RECEIVED, time.time())


async def send(outbox: Outbox, local_ref: str, n: int = 1) -> None:
    claim = await outbox.claim(local_ref, time.time())
    assert claim is not None
    assert await outbox.mark_sent(local_ref, receipt(n))


async def test_put_is_durable_across_reopen(paths):
    db_path, keys = paths
    outbox = await Outbox.open(db_path, keys)
    record = await outbox.put(make_application(1))
    assert REF.match(record.local_ref)
    assert UUID4.match(record.idempotency_key)
    assert record.state is SubmissionState.QUEUED and record.attempts == 0
    await outbox.close()

    outbox = await Outbox.open(db_path, Keystore(keys.directory))  # a restart: fresh objects
    try:
        again = await outbox.record(record.local_ref)
        assert again == record
        assert await outbox.pending_count() == 1
        assert await outbox.receipt(record.local_ref) is None
        app = await outbox.load_application(record.local_ref)
        original = make_application(1)
        assert app.applicant == original.applicant
        assert dict(app.fields) == dict(original.fields)
        assert (app.item_id, app.item_code, app.commitment_accepted, app.created_at) == (
            original.item_id,
            original.item_code,
            original.commitment_accepted,
            original.created_at,
        )
    finally:
        await outbox.close()


async def test_put_has_committed_when_it_returns(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
        # Another connection sees the row at once: no transaction is left open.
        row = raw(db_path).execute(
            "SELECT state, idempotency_key FROM submissions WHERE local_ref = ?",
            (record.local_ref,),
        ).fetchone()
        assert tuple(row) == ("queued", record.idempotency_key)
        modes = raw(db_path).execute("PRAGMA journal_mode").fetchone()[0]
        assert modes == "wal"


async def test_local_refs_are_unique_and_keep_counting_after_reopen(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        first = [await outbox.put(make_application(i)) for i in range(3)]
    async with await Outbox.open(db_path, keys) as outbox:
        second = [await outbox.put(make_application(i)) for i in range(3, 5)]
        records = await outbox.records()
    numbers = [int(r.local_ref.rsplit("-", 1)[1]) for r in first + second]
    assert numbers == [1, 2, 3, 4, 5]
    assert len({r.idempotency_key for r in records}) == 5
    assert [r.local_ref for r in records] == [r.local_ref for r in first + second]


async def test_database_and_wal_hold_no_plaintext(paths):
    db_path, keys = paths
    wal_path = db_path.with_name(db_path.name + "-wal")

    def assert_clean(stage: str) -> None:
        for path in (db_path, wal_path):
            if not path.exists():
                continue
            data = path.read_bytes()
            for needle in personal_needles():
                assert needle not in data, f"{needle!r} found in {path.name} {stage}"

    outbox = await Outbox.open(db_path, keys)
    refs = [(await outbox.put(make_application(i))).local_ref for i in range(20)]
    assert wal_path.exists() and wal_path.stat().st_size > 0  # the grep must see the WAL too
    # The non-personal metadata is there in clear: the grep really reads the rows.
    assert b"320200-GJJ-0042" in wal_path.read_bytes() + db_path.read_bytes()
    assert_clean("after put")
    await send(outbox, refs[0])
    await outbox.rotate()
    assert_clean("after send and rotation")
    await outbox.close()
    assert_clean("after close (checkpointed)")


async def test_sent_record_keeps_receipt_and_loses_personal_part(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
        await send(outbox, record.local_ref, 42)
        sent = await outbox.record(record.local_ref)
        assert sent.state is SubmissionState.SENT
        assert sent.case_number == "JS2026-000042" and sent.key_id is None
        assert (await outbox.receipt(record.local_ref)).case_number == "JS2026-000042"
        assert await outbox.load_application(record.local_ref) is None
        assert await outbox.pending_count() == 0
    row = raw(db_path).execute("SELECT personal FROM submissions").fetchone()
    assert row["personal"] is None


async def test_swapped_rows_fail_with_a_typed_error(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        a = await outbox.put(make_application(1))
        b = await outbox.put(make_application(2))
        c = await outbox.put(make_application(3))
    conn = raw(db_path)
    rows = {r["local_ref"]: r["personal"] for r in conn.execute("SELECT * FROM submissions")}
    swap = "UPDATE submissions SET personal = ? WHERE local_ref = ?"
    conn.execute(swap, (rows[b.local_ref], a.local_ref))
    conn.execute(swap, (rows[a.local_ref], b.local_ref))
    conn.close()

    async with await Outbox.open(db_path, keys) as outbox:
        for ref in (a.local_ref, b.local_ref):
            with pytest.raises(RecordUnreadable):
                await outbox.load_application(ref)
        assert (await outbox.load_application(c.local_ref)).fields["n"] == 3
        # The sender can never send it: claiming parks it where ops see it.
        assert await outbox.claim(a.local_ref, time.time()) is None
        parked = await outbox.record(a.local_ref)
        assert parked.state is SubmissionState.FAILED_PERMANENTLY
        assert parked.last_error == "outbox.unreadable"


def _flip_byte(blob: bytes, at: int) -> bytes:
    changed = bytearray(blob)
    changed[at] ^= 0x40
    return bytes(changed)


@pytest.mark.parametrize(
    "column, change",
    [
        ("personal", lambda blob: _flip_byte(blob, 40)),  # inside the ciphertext
        ("personal", lambda blob: _flip_byte(blob, 5)),  # inside the nonce
        ("personal", lambda blob: blob[:-1]),  # truncated tag
        ("idempotency_key", lambda _: "00000000-0000-4000-8000-000000000000"),
        ("item_code", lambda _: "320200-OTHER-0001"),
        ("submitted_at", lambda value: value + 1),
    ],
)
async def test_tampered_rows_fail_with_a_typed_error(paths, column, change):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
    conn = raw(db_path)
    (value,) = conn.execute(f"SELECT {column} FROM submissions").fetchone()
    conn.execute(f"UPDATE submissions SET {column} = ?", (change(value),))
    conn.close()
    async with await Outbox.open(db_path, keys) as outbox:
        with pytest.raises(RecordUnreadable) as caught:
            await outbox.load_application(record.local_ref)
        assert "欧阳" not in str(caught.value)


async def test_rotation_reencrypts_every_pending_record(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        refs = [(await outbox.put(make_application(i))).local_ref for i in range(5)]
        old_key = (await outbox.record(refs[0])).key_id
        await send(outbox, refs[0])
        claim = await outbox.claim(refs[1], time.time())  # one in flight during rotation
        assert claim is not None
        await outbox.mark_failed(refs[1], "platform.rejected")  # failed ones are kept too

        result = await outbox.rotate()
        assert result.key_id != old_key
        assert result.reencrypted == 4 and result.unreadable == ()
        assert result.retired == (old_key,)
        assert old_key not in keys.key_ids()
        for i, ref in enumerate(refs[1:], start=1):
            record = await outbox.record(ref)
            assert record.key_id == result.key_id
            assert (await outbox.load_application(ref)).fields["n"] == i
        newer = await outbox.put(make_application(9))
        assert newer.key_id == result.key_id

        second = await outbox.rotate()
        assert second.reencrypted == 5 and second.retired == (result.key_id,)

    # Readable after a restart with a fresh keystore object.
    async with await Outbox.open(db_path, Keystore(keys.directory)) as outbox:
        for ref in refs[1:] + [newer.local_ref]:
            assert await outbox.load_application(ref) is not None


async def test_rotation_keeps_the_key_of_an_unreadable_record(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        bad = await outbox.put(make_application(1))
        good = await outbox.put(make_application(2))
    conn = raw(db_path)
    conn.execute(
        "UPDATE submissions SET item_id = 'edited' WHERE local_ref = ?", (bad.local_ref,)
    )
    conn.close()
    async with await Outbox.open(db_path, keys) as outbox:
        result = await outbox.rotate()
        assert result.unreadable == (bad.local_ref,)
        assert result.reencrypted == 1 and result.retired == ()
        assert bad.key_id in keys.key_ids()
        assert (await outbox.load_application(good.local_ref)).fields["n"] == 2


async def test_disk_full_raises_unavailable_and_writes_nothing(paths):
    db_path, keys = paths
    big = "x" * 3000  # random-looking after encryption, so every row takes real pages
    async with await Outbox.open(db_path, keys, max_bytes=64 * 1024) as outbox:
        stored = []
        with pytest.raises(OutboxUnavailable) as caught:
            for i in range(200):
                stored.append(await outbox.put(make_application(i, note=big)))
        assert caught.value.code == "SQLITE_FULL"
        assert 0 < len(stored) < 200
        assert await outbox.pending_count() == len(stored)
        assert [r.local_ref for r in await outbox.records()] == [r.local_ref for r in stored]
        # Reading and sending still work on a full outbox.
        await send(outbox, stored[0].local_ref)

    conn = raw(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == len(stored)
    conn.close()

    # With room again the next reference follows on: the failed put consumed no number.
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application(999))
        assert int(record.local_ref.rsplit("-", 1)[1]) == len(stored) + 1
        for r in stored[1:]:
            assert await outbox.load_application(r.local_ref) is not None


async def test_read_only_database_raises_unavailable(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
    inspector_keys = Keystore(db_path.parent / "inspector-keys")  # empty: nothing to read
    async with await Outbox.open(db_path, inspector_keys, read_only=True) as inspector:
        assert [r.local_ref for r in await inspector.records()] == [record.local_ref]
        with pytest.raises(OutboxUnavailable) as caught:
            await inspector.put(make_application(2))
        assert caught.value.code == "SQLITE_READONLY"
        with pytest.raises(OutboxUnavailable):
            await inspector.rotate()
        assert await inspector.pending_count() == 1
    assert inspector_keys.key_ids() == []  # the inspector created or rotated no key
    assert keys.key_ids() == [record.key_id]
    counts = raw(db_path).execute("SELECT COUNT(*) FROM submissions").fetchone()[0]
    assert counts == 1


async def test_unopenable_path_and_broken_keystore_raise_unavailable(tmp_path):
    with pytest.raises(OutboxUnavailable):
        await Outbox.open(tmp_path / "missing" / "outbox.db", Keystore(tmp_path / "keys"))
    (tmp_path / "not-a-dir").write_text("")
    broken = Keystore(tmp_path / "not-a-dir")
    async with await Outbox.open(tmp_path / "outbox.db", broken) as outbox:
        with pytest.raises(OutboxUnavailable) as caught:
            await outbox.put(make_application())
        assert caught.value.code == "keystore"
        assert await outbox.pending_count() == 0


async def test_unserializable_fields_store_nothing(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        with pytest.raises(UnserializableFields):
            await outbox.put(make_application(photo=object()))
        assert await outbox.records() == []
        record = await outbox.put(make_application())
        assert record.local_ref.endswith("-000001")


async def test_one_writer_at_a_time(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys):
        with pytest.raises(OutboxUnavailable) as caught:
            await Outbox.open(db_path, keys)
        assert caught.value.code == "locked"
    async with await Outbox.open(db_path, keys):  # released on close
        pass


async def test_record_left_sending_is_requeued_with_its_key(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
        claim = await outbox.claim(record.local_ref, time.time())
        assert claim.record.state is SubmissionState.SENDING and claim.record.attempts == 1
        assert claim.application.applicant == make_application().applicant
        # A second claim while sending gets nothing: one attempt at a time.
        assert await outbox.claim(record.local_ref, time.time()) is None
    # The process "died" mid-send (closed without marking).
    async with await Outbox.open(db_path, keys) as outbox:
        again = await outbox.record(record.local_ref)
        assert again.state is SubmissionState.QUEUED and again.attempts == 1
        claim = await outbox.claim(record.local_ref, time.time())
        assert claim.record.idempotency_key == record.idempotency_key


async def test_transitions_check_the_state_they_leave(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
        ref = record.local_ref
        assert not await outbox.mark_sent(ref, receipt())  # queued, not sending
        assert not await outbox.mark_failed(ref, "platform.rejected")
        assert not await outbox.requeue(ref)
        await send(outbox, ref)
        assert not await outbox.mark_retry(ref, "platform.unavailable", time.time())
        assert not await outbox.requeue(ref)  # a sent record stays sent
        assert (await outbox.record(ref)).state is SubmissionState.SENT
        counts = await outbox.state_counts()
        assert counts[SubmissionState.SENT] == 1 and counts[SubmissionState.QUEUED] == 0


async def test_ops_can_requeue_a_failed_record(paths):
    db_path, keys = paths
    async with await Outbox.open(db_path, keys) as outbox:
        record = await outbox.put(make_application())
        await outbox.claim(record.local_ref, time.time())
        assert await outbox.mark_failed(record.local_ref, "platform.not_authorized")
        failed = await outbox.records([SubmissionState.FAILED_PERMANENTLY])
        assert [r.last_error for r in failed] == ["platform.not_authorized"]
        assert await outbox.requeue(record.local_ref)
        assert outbox.changed.is_set()
        assert (await outbox.record(record.local_ref)).state is SubmissionState.QUEUED


async def test_closed_outbox_is_unavailable(paths):
    db_path, keys = paths
    outbox = await Outbox.open(db_path, keys)
    await outbox.close()
    await outbox.close()  # idempotent
    with pytest.raises(OutboxUnavailable) as caught:
        await outbox.put(make_application())
    assert caught.value.code == "closed"
