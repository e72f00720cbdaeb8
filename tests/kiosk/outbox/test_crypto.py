"""Sealing of the outbox's personal part: round trips, tampering, codec, and the key store."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.outbox.crypto import (
    RecordUnreadable,
    UnserializableFields,
    associated_data,
    decode_personal,
    encode_personal,
    seal,
    unseal,
)
from kiosk.outbox.keystore import KeystoreError, Keystore, UnknownKey
from tests.kiosk.outbox import ID_NUMBER, NAME, PHONE, make_application

KEY = bytes(range(32))


def _ad(**overrides) -> bytes:
    values = dict(
        local_ref="Q-20261122-000042",
        idempotency_key="6f1c1f5e-3a43-4b0e-9a57-6b0f6c2d9d11",
        key_id="00112233aabbccdd",
        item_id="housing_fund_withdrawal",
        item_code="320200-GJJ-0042",
        commitment_accepted=True,
        submitted_at=1_790_000_000.25,
    )
    values.update(overrides)
    return associated_data(**values)


def test_seal_round_trip_with_fresh_nonce():
    a = seal(KEY, b"secret", _ad())
    b = seal(KEY, b"secret", _ad())
    assert a != b  # random nonce per record
    assert a[1:13] != b[1:13]
    assert unseal(KEY, a, _ad()) == b"secret"
    assert b"secret" not in a


@pytest.mark.parametrize(
    "change",
    [
        {"local_ref": "Q-20261122-000043"},  # ciphertext moved to another row
        {"idempotency_key": "00000000-0000-4000-8000-000000000000"},
        {"key_id": "ffffffffffffffff"},
        {"item_code": "320200-GJJ-0043"},
        {"commitment_accepted": False},
        {"submitted_at": 1_790_000_000.26},
    ],
)
def test_changed_metadata_fails_authentication(change):
    blob = seal(KEY, b"secret", _ad())
    with pytest.raises(RecordUnreadable):
        unseal(KEY, blob, _ad(**change))


def test_flipped_bits_and_wrong_key_fail():
    blob = seal(KEY, b"secret", _ad())
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(RecordUnreadable):
            unseal(KEY, bytes(tampered), _ad())
    with pytest.raises(RecordUnreadable):
        unseal(bytes(32), blob, _ad())
    with pytest.raises(RecordUnreadable):
        unseal(KEY, blob[:20], _ad())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_junk_blobs_raise_only_record_unreadable(blob):
    with pytest.raises(RecordUnreadable):
        unseal(KEY, blob, _ad())


def test_error_messages_carry_no_content():
    blob = seal(KEY, NAME.encode(), _ad())
    with pytest.raises(RecordUnreadable) as caught:
        unseal(KEY, blob + b"x", _ad())
    assert NAME not in str(caught.value)
    with pytest.raises(RecordUnreadable) as caught:
        decode_personal(f'{{"v":1,"applicant":{{"name":"{NAME}"}}}}'.encode())
    assert NAME not in str(caught.value)


def test_personal_codec_round_trip():
    app = make_application(
        7,
        born=dt.date(1949, 12, 31),
        at=dt.datetime(2026, 11, 22, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))),
        amount=decimal.Decimal("1234.50"),
        photo=b"\x00\xffjpeg",
        nested={"$t": "not a tag", "list": [1, 2.5, None, True, "文字"]},
    )
    applicant, fields = decode_personal(encode_personal(app.applicant, app.fields))
    assert applicant == app.applicant
    assert applicant.authorization == app.applicant.authorization
    assert fields == dict(app.fields)
    assert fields["amount"] == decimal.Decimal("1234.50")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.dates() | st.binary(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_fields_codec_round_trips(fields):
    app = make_application()
    _, decoded = decode_personal(encode_personal(app.applicant, fields))
    assert decoded == fields


def test_unstorable_field_values_are_refused():
    app = make_application()
    with pytest.raises(UnserializableFields):
        encode_personal(app.applicant, {"x": object()})
    with pytest.raises(UnserializableFields):
        encode_personal(app.applicant, {"x": {1: "non-string key"}})


def test_plaintext_holds_what_the_seal_hides():
    # Guards the grep tests in test_store: the needles really are in what gets encrypted.
    app = make_application()
    plaintext = encode_personal(app.applicant, app.fields)
    for needle in (NAME.encode(), ID_NUMBER.encode(), PHONE.encode()):
        assert needle in plaintext


# -- key store -------------------------------------------------------------------------------


def test_keystore_creates_private_keys(tmp_path):
    store = Keystore(tmp_path / "keys")
    key_id, key = store.current()
    assert len(key) == 32
    assert store.current() == (key_id, key)
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    for path in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
    # A fresh instance (a restart) reads the same key.
    assert Keystore(tmp_path / "keys").current() == (key_id, key)


def test_keystore_files_are_0600_even_with_a_permissive_umask(tmp_path):
    old = os.umask(0)
    try:
        store = Keystore(tmp_path / "keys")
        store.current()
        store.rotate()
    finally:
        os.umask(old)
    for path in (tmp_path / "keys").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_keystore_rotate_get_retire(tmp_path):
    store = Keystore(tmp_path / "keys")
    old_id, old_key = store.current()
    new_id = store.rotate()
    assert new_id != old_id
    assert store.current()[0] == new_id
    assert store.get(old_id) == old_key  # old keys stay readable
    assert set(store.key_ids()) == {old_id, new_id}
    with pytest.raises(KeystoreError):
        store.retire(new_id)
    store.retire(old_id)
    with pytest.raises(UnknownKey):
        Keystore(tmp_path / "keys").get(old_id)
    with pytest.raises(UnknownKey):
        store.get(old_id)


def test_keystore_rejects_key_ids_that_are_paths(tmp_path):
    store = Keystore(tmp_path / "keys")
    store.current()
    for bad in ("../current", "current", "", "/etc/passwd", "00112233aabbccdd/.."):
        with pytest.raises(UnknownKey):
            store.get(bad)
