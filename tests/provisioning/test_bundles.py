"""Signed bundles: forged, tampered, unsigned, rolled-back and malformed bundles are refused,
nothing changes on disk when they are, and a crash never leaves a half-installed bundle."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning import bundles, keystore
from provisioning.bundles import (
    BundleError,
    BundleMalformed,
    BundleRollback,
    BundleStore,
    BundleTampered,
    BundleUnknownKey,
    BundleUnsigned,
    BundleWrongKind,
    canonical_bytes,
    encode_bundle,
    key_id_of,
    make_bundle,
)

OPS_KEY = Ed25519PrivateKey.generate()
ATTACKER_KEY = Ed25519PrivateKey.generate()
CATALOGUE = json.dumps({"items": ["social_security_record", "residence_certificate"]}).encode()


@pytest.fixture
def store(tmp_path) -> BundleStore:
    return BundleStore(tmp_path / "bundles", [OPS_KEY.public_key()])


def snapshot(directory) -> dict:
    if not directory.exists():
        return {}
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def resign(bundle: dict, key=OPS_KEY) -> dict:
    bundle = {k: v for k, v in bundle.items() if k != "signature"}
    sig = key.sign(canonical_bytes(bundle))
    bundle["signature"] = base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    return bundle


def test_apply_installs_a_signed_bundle_privately(store, tmp_path):
    bundle = make_bundle("catalogue", 1, CATALOGUE, OPS_KEY)
    assert set(bundle) == set(bundles.FIELDS) and bundle["format"] == "kiosk-bundle-v1"
    assert bundle["key_id"] == key_id_of(OPS_KEY.public_key())
    installed = store.apply(encode_bundle(bundle))
    assert (installed.kind, installed.version, installed.payload) == ("catalogue", 1, CATALOGUE)
    assert store.installed("catalogue") == installed
    assert store.installed("config") is None and not store.rollback_available("catalogue")
    assert keystore.check_private_dir(tmp_path / "bundles") == []
    current = tmp_path / "bundles" / "catalogue" / "current.json"
    assert stat.S_IMODE(os.stat(current).st_mode) == 0o600


def test_a_bundle_from_an_untrusted_key_is_refused(store):
    with pytest.raises(BundleUnknownKey):
        store.apply(make_bundle("catalogue", 1, CATALOGUE, ATTACKER_KEY))
    # The attacker claims the trusted key id: the signature gives him away.
    forged = make_bundle("catalogue", 1, b'{"items":["phishing"]}', ATTACKER_KEY)
    forged["key_id"] = key_id_of(OPS_KEY.public_key())
    with pytest.raises(BundleTampered):
        store.apply(resign(forged, ATTACKER_KEY))
    assert store.installed("catalogue") is None


@pytest.mark.parametrize("field, value", [
    ("version", 99), ("kind", "config"), ("created_at", "2030-01-01T00:00:00+00:00"),
    ("payload", base64.b64encode(b'{"items":[]}').decode()),
])
def test_changing_any_signed_field_is_tampering(store, field, value):
    bundle = make_bundle("catalogue", 1, CATALOGUE, OPS_KEY)
    bundle[field] = value
    if field == "payload":  # even with a matching hash
        bundle["sha256"] = hashlib.sha256(b'{"items":[]}').hexdigest()
    with pytest.raises(BundleTampered):
        store.apply(bundle)


def test_a_payload_that_does_not_match_its_signed_hash_is_tampering(store):
    bundle = make_bundle("catalogue", 1, CATALOGUE, OPS_KEY)
    bundle["payload"] = base64.b64encode(b"other").decode()
    with pytest.raises(BundleTampered):
        store.apply(resign(bundle))  # signed by ops, but the hash inside is wrong


@pytest.mark.parametrize("strip", [
    lambda b: b.pop("signature"),
    lambda b: b.update(signature=""),
    lambda b: b.update(signature=None),
])
def test_unsigned_bundles_are_refused(store, strip):
    bundle = make_bundle("config", 1, b"x", OPS_KEY)
    strip(bundle)
    with pytest.raises(BundleUnsigned):
        store.apply(bundle)


def test_versions_only_go_up_even_after_a_local_rollback(store):
    v1, v2, v3, v4 = (make_bundle("config", n, b"config %d" % n, OPS_KEY) for n in (1, 2, 3, 4))
    store.apply(v2)
    for old in (v1, v2):
        with pytest.raises(BundleRollback):
            store.apply(old)
    store.apply(v3)
    assert store.rollback_available("config") and store.previous("config").version == 2
    assert store.rollback("config").version == 2
    assert store.installed("config").version == 2 and not store.rollback_available("config")
    with pytest.raises(BundleRollback):  # the version rolled back from stays refused
        store.apply(v3)
    assert store.highest_version("config") == 3
    assert store.apply(v4).version == 4


def test_kinds_are_separate_and_a_wrong_kind_is_refused(store):
    store.apply(make_bundle("catalogue", 5, CATALOGUE, OPS_KEY))
    store.apply(make_bundle("config", 1, b"c", OPS_KEY))  # config has its own versions
    with pytest.raises(BundleWrongKind):
        store.apply(make_bundle("config", 2, b"c", OPS_KEY), kind="catalogue")


@pytest.mark.parametrize("junk", [
    b"not json", b"[1,2]", b"{}", b"\xff\xfe",
    '{"format": "kiosk-bundle-v2", "signature": "x"}',
    b"[" * 100_000,
])
def test_malformed_bundles_are_refused(store, junk):
    with pytest.raises(BundleMalformed):
        store.apply(junk)


@pytest.mark.parametrize("field, value", [
    ("version", True), ("version", 0), ("version", "2"), ("version", 2.0), ("kind", "firmware"),
    ("created_at", "yesterday"), ("sha256", "abc"), ("key_id", "../../x"), ("payload", "***"),
    ("extra", "x"),
])
def test_malformed_fields_are_refused_before_any_crypto(store, field, value):
    bundle = make_bundle("config", 1, b"x", OPS_KEY)
    bundle[field] = value
    with pytest.raises(BundleMalformed):
        store.apply(bundle)


def test_refusals_change_nothing_on_disk(store, tmp_path):
    store.apply(make_bundle("catalogue", 2, CATALOGUE, OPS_KEY))
    before = snapshot(tmp_path / "bundles")
    for bad in (make_bundle("catalogue", 1, b"old", OPS_KEY),
                make_bundle("catalogue", 3, b"evil", ATTACKER_KEY), b"junk"):
        with pytest.raises(BundleError):
            store.apply(bad)
    assert snapshot(tmp_path / "bundles") == before


def test_a_crash_while_installing_leaves_the_old_bundle_installed(store, tmp_path, monkeypatch):
    store.apply(make_bundle("catalogue", 1, CATALOGUE, OPS_KEY))
    real = keystore.write_private

    def crash_on_current(path, data):
        if os.path.basename(path) == "current.json":
            raise keystore.KeystoreError("power cut")
        real(path, data)

    monkeypatch.setattr(bundles, "write_private", crash_on_current)
    with pytest.raises(BundleError):
        store.apply(make_bundle("catalogue", 2, b"new", OPS_KEY))
    monkeypatch.undo()
    fresh = BundleStore(tmp_path / "bundles", [OPS_KEY.public_key()])
    assert fresh.installed("catalogue").version == 1
    assert not [p for p in (tmp_path / "bundles").rglob("*.tmp")]
    assert fresh.apply(make_bundle("catalogue", 2, b"new", OPS_KEY)).version == 2


def test_a_bundle_edited_on_disk_is_not_trusted(store, tmp_path):
    store.apply(make_bundle("catalogue", 1, CATALOGUE, OPS_KEY))
    path = tmp_path / "bundles" / "catalogue" / "current.json"
    data = json.loads(path.read_bytes())
    data["payload"] = base64.b64encode(b"edited").decode()
    data["sha256"] = hashlib.sha256(b"edited").hexdigest()
    path.write_text(json.dumps(data))
    with pytest.raises(BundleTampered):
        store.installed("catalogue")


def test_a_new_signing_key_works_once_trusted():
    new_key = Ed25519PrivateKey.generate()
    bundle = make_bundle("config", 1, b"x", new_key)
    with pytest.raises(BundleUnknownKey):
        bundles.verify_bundle(bundle, [OPS_KEY.public_key()])
    parsed, _ = bundles.verify_bundle(bundle, [OPS_KEY.public_key(), new_key.public_key()])
    assert parsed.key_id == key_id_of(new_key.public_key())


@settings(max_examples=200, deadline=None)
@given(st.one_of(
    st.binary(max_size=300),
    st.dictionaries(st.sampled_from(list(bundles.FIELDS) + ["x"]),
                    st.one_of(st.text(max_size=50), st.integers(), st.none(), st.booleans()),
                    max_size=9),
))
def test_junk_raises_only_bundle_errors(tmp_path_factory, junk):
    store = BundleStore(tmp_path_factory.getbasetemp() / "fuzz-bundles", [OPS_KEY.public_key()])
    try:
        store.apply(junk)
    except BundleError:
        pass
    else:
        pytest.fail("junk was installed")
