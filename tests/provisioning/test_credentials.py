"""Maintenance credentials: issued on the server side, checked offline by the kiosk's gate
(signature, window, scope, revocation, PIN, rate limit), and small enough for a QR code that
a real decoder reads back."""

from __future__ import annotations

import base64
import io
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from PIL import Image
from hypothesis import strategies as st

from provisioning.credentials import (
    CredentialError,
    MaintenanceGate,
    issue_credential,
    read_credential,
    region_covers,
)
from tests.conftest import FakeClock

KEY = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
T0 = 1_795_000_000.0
FAST = dict(scrypt_log_n=12)  # the gate reads the cost from the credential


def issue(**kw):
    args = dict(regions=["320200"], pin="482915", valid_for_s=8 * 3600, now=T0, **FAST)
    args.update(kw)
    return issue_credential(KEY, "zhang.wei", **args)


def gate(clock=None, **kw) -> MaintenanceGate:
    clock = clock or FakeClock(T0 + 10)
    kw.setdefault("device_id", "kiosk-0001")
    kw.setdefault("region", "320213")
    return MaintenanceGate(KEY.public_key(), clock=clock, **kw)


def test_a_valid_credential_and_pin_open_the_gate():
    cred_id, text = issue()
    assert text.startswith("kcred1.") and cred_id.startswith("cred_")
    result = gate().attempt(text, "482915")
    assert result.ok and result.reason is None
    assert (result.cred_id, result.holder) == (cred_id, "zhang.wei")
    assert result.expires_at == T0 + 8 * 3600


def test_the_default_cost_is_real_and_still_quick(clock):
    _, text = issue_credential(KEY, "li.na", kiosks=["kiosk-0001"], pin="000123", valid_for_s=60,
                               now=T0)
    assert read_credential(text, KEY.public_key()).scrypt_log_n == 15
    started = time.perf_counter()
    assert gate().attempt(text, "000123").ok
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("scope, region, ok", [
    ("320213", "320213", True), ("320200", "320213", True), ("320000", "320213", True),
    ("320100", "320213", False), ("330000", "320213", False), ("320214", "320213", False),
])
def test_region_scopes_follow_gb_t_2260(scope, region, ok):
    assert region_covers(scope, region) is ok


def test_scope_by_kiosk_or_region():
    _, by_kiosk = issue(regions=[], kiosks=["kiosk-0001"])
    assert gate().attempt(by_kiosk, "482915").ok
    assert gate(device_id="kiosk-0002").attempt(by_kiosk, "482915").reason == "out_of_scope"
    _, other_city = issue(regions=["320100"])
    assert gate().attempt(other_city, "482915").reason == "out_of_scope"


def test_validity_window():
    _, text = issue(valid_for_s=3600)
    assert gate(FakeClock(T0 - 3600)).attempt(text, "482915").reason == "not_yet_valid"
    assert gate(FakeClock(T0 - 30)).attempt(text, "482915").ok  # a minute of clock leeway
    assert gate(FakeClock(T0 + 3599)).attempt(text, "482915").ok
    assert gate(FakeClock(T0 + 3600)).attempt(text, "482915").reason == "expired"


def test_forged_and_altered_credentials_fail_the_signature():
    _, forged = issue_credential(OTHER, "mallory", regions=["320000"], pin="111111",
                                 valid_for_s=3600, now=T0, **FAST)
    assert gate().attempt(forged, "111111").reason == "bad_signature"
    _, text = issue()
    body, sig = text[len("kcred1."):].split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["r"] = ["320000"]
    payload["ex"] += 10 * 86400
    altered = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    assert gate().attempt(f"kcred1.{altered}.{sig}", "482915").reason == "bad_signature"


@pytest.mark.parametrize("junk", [
    "", "hello", "kcred1.", "kcred1.a.b.c", "kcred1.!!!.???", "kcred2.abc.def", "x" * 5000,
])
def test_junk_is_malformed(junk):
    assert gate().attempt(junk, "482915").reason == "malformed"


def test_revoked_credentials_are_refused_and_the_list_survives_a_restart(tmp_path):
    cred_id, text = issue()
    first = gate(revoked_path=tmp_path / "state" / "revoked.json")
    first.revoke([cred_id, "../bad id"])
    assert first.attempt(text, "482915").reason == "revoked"
    assert first.revoked == frozenset({cred_id})
    second = gate(revoked_path=tmp_path / "state" / "revoked.json")
    assert second.attempt(text, "482915").reason == "revoked"


def test_wrong_pins_lock_the_gate_and_the_lock_doubles():
    clock = FakeClock(T0 + 10)
    g = gate(clock)
    _, text = issue()
    for pin in ("000000", "12345", "abcdef", "482916"):
        assert g.attempt(text, pin).reason == "wrong_pin"
        clock.advance(1)
    assert g.locked_until is None
    assert g.attempt(text, "999999").reason == "wrong_pin"  # fifth failure in 10 minutes
    assert g.locked_until == pytest.approx(clock.now + 300)
    assert g.attempt(text, "482915").reason == "locked"  # even the right PIN
    clock.advance(301)
    assert g.locked_until is None
    for _ in range(5):
        g.attempt(text, "000000")
    assert g.locked_until == pytest.approx(clock.now + 600)  # second lock: doubled
    clock.advance(601)
    assert g.attempt(text, "482915").ok
    for _ in range(5):  # a success resets the doubling
        g.attempt(text, "000000")
    assert g.locked_until == pytest.approx(clock.now + 300)


def test_failures_spread_over_more_than_ten_minutes_do_not_lock():
    clock = FakeClock(T0 + 10)
    g = gate(clock)
    _, text = issue()
    for _ in range(12):
        g.attempt(text, "000000")
        clock.advance(200)
    assert g.locked_until is None


def test_events_carry_no_pin_and_no_credential_text():
    cred_id, text = issue()
    g = gate()
    g.attempt(text, "000000")
    g.attempt(text, "482915")
    _, forged = issue_credential(OTHER, "mallory", regions=["320000"], pin="111111",
                                 valid_for_s=3600, now=T0, **FAST)
    g.attempt(forged, "111111")
    events = g.drain_events()
    assert [(e["ok"], e["reason"], e["cred_id"]) for e in events] == [
        (False, "wrong_pin", cred_id), (True, None, cred_id), (False, "bad_signature", None),
    ]
    dumped = json.dumps(events)
    for secret in ("000000", "482915", "111111", text[7:40], forged[7:40], "mallory"):
        assert secret not in dumped
    assert g.drain_events() == []


@pytest.mark.parametrize("kw", [
    dict(regions=[], kiosks=[]), dict(regions=["3202"]), dict(kiosks=["bad id"]),
    dict(pin="12345"), dict(pin="12345a"), dict(valid_for_s=0), dict(valid_for_s=31 * 86400),
])
def test_issue_refuses_bad_arguments(kw):
    with pytest.raises(CredentialError):
        issue(**kw)


def test_the_credential_fits_a_qr_code_that_a_real_decoder_reads_back():
    import segno
    import zxingcpp

    _, text = issue(regions=["320200", "320500"], kiosks=["kiosk-0001"])
    qr = segno.make_qr(text, error="m")
    assert qr.version <= 14, qr.version  # 73x73 modules: fine on a phone or a printed card
    png = io.BytesIO()
    qr.save(png, kind="png", scale=4, border=4)
    image = Image.open(io.BytesIO(png.getvalue())).convert("L")
    decoded = zxingcpp.read_barcodes(image)
    assert [r.text for r in decoded] == [text]
    assert gate().attempt(decoded[0].text, "482915").ok


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.text(max_size=10))
def test_junk_never_raises(text, pin):
    result = gate().attempt("kcred1." + text, pin)
    assert not result.ok and result.reason in ("malformed", "bad_signature")
