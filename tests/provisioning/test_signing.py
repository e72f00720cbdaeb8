"""Signed requests: the exact scheme, what breaks a signature, junk headers (fuzzed), the
kiosk's counter, and the server's atomic replay check on a real SQLite database."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from provisioning.signing import (
    MAX_COUNTER,
    AuthError,
    RequestCounter,
    SignedHeaders,
    parse_signed_headers,
    sign_request,
    verify_request,
)

KEY = ec.generate_private_key(ec.SECP256R1())
PUB = KEY.public_key()
NOW = 1_795_000_000.0
PATH = "/api/v1/device/heartbeat"
BODY = b'{"seq":1}'


def signed(**overrides):
    args = dict(device_id="kiosk-0001", counter=42, method="post", path_and_query=PATH,
                body=BODY, now=NOW)
    args.update(overrides)
    return sign_request(KEY, **args)


def test_the_signature_covers_exactly_the_documented_bytes():
    headers = signed()
    assert set(headers) == {"Kiosk-Device", "Kiosk-Counter", "Kiosk-Timestamp", "Kiosk-Signature"}
    assert headers["Kiosk-Counter"] == "42" and headers["Kiosk-Timestamp"] == str(int(NOW))
    assert "=" not in headers["Kiosk-Signature"]
    expected = "\n".join([
        "kiosk-request-v1", "POST", PATH, "kiosk-0001", "42", str(int(NOW)),
        hashlib.sha256(BODY).hexdigest(),
    ]).encode()
    sig = base64.urlsafe_b64decode(headers["Kiosk-Signature"] + "==")
    PUB.verify(sig, expected, ec.ECDSA(hashes.SHA256()))  # raises if not


def test_round_trip_with_case_insensitive_headers():
    headers = signed()
    for mapping in (headers, {k.lower(): v for k, v in headers.items()}, CIMultiDict(headers)):
        parsed = parse_signed_headers(mapping)
        assert parsed.device_id == "kiosk-0001" and parsed.counter == 42
        verify_request(PUB, parsed, "POST", PATH, BODY, NOW + 5)


@pytest.mark.parametrize("method, path, body", [
    ("GET", PATH, BODY),
    ("POST", "/api/v1/device/commands", BODY),
    ("POST", PATH + "?x=1", BODY),
    ("POST", PATH, BODY + b" "),
    ("POST", PATH, b""),
])
def test_changing_the_request_breaks_the_signature(method, path, body):
    parsed = parse_signed_headers(signed())
    with pytest.raises(AuthError) as err:
        verify_request(PUB, parsed, method, path, body, NOW)
    assert err.value.code == "bad_signature"


@pytest.mark.parametrize("field, value", [
    ("device_id", "kiosk-0002"), ("counter", 43), ("timestamp", int(NOW) + 1),
])
def test_changing_a_signed_header_breaks_the_signature(field, value):
    parsed = parse_signed_headers(signed())
    forged = SignedHeaders(**{**parsed.__dict__, field: value})
    with pytest.raises(AuthError) as err:
        verify_request(PUB, forged, "POST", PATH, BODY, NOW)
    assert err.value.code == "bad_signature"


def test_another_key_does_not_verify_and_skew_is_bounded():
    parsed = parse_signed_headers(signed())
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(AuthError, match="bad_signature"):
        verify_request(other, parsed, "POST", PATH, BODY, NOW)
    verify_request(PUB, parsed, "POST", PATH, BODY, NOW + 300)
    verify_request(PUB, parsed, "POST", PATH, BODY, NOW - 300)
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(AuthError) as err:
            verify_request(PUB, parsed, "POST", PATH, BODY, now)
        assert err.value.code == "clock_skew"
    verify_request(PUB, parsed, "POST", PATH, BODY, NOW + 1000, max_skew_s=1000)


@pytest.mark.parametrize("change, code", [
    (lambda h: h.pop("Kiosk-Signature"), "missing_signature"),
    (lambda h: h.pop("Kiosk-Counter"), "missing_header"),
    (lambda h: h.pop("Kiosk-Device"), "missing_header"),
    (lambda h: h.update({"Kiosk-Device": "../../etc"}), "malformed_device"),
    (lambda h: h.update({"Kiosk-Counter": "-1"}), "malformed_counter"),
    (lambda h: h.update({"Kiosk-Counter": "1e5"}), "malformed_counter"),
    (lambda h: h.update({"Kiosk-Counter": str(MAX_COUNTER + 1)}), "malformed_counter"),
    (lambda h: h.update({"Kiosk-Counter": "٣"}), "malformed_counter"),
    (lambda h: h.update({"Kiosk-Timestamp": "1.5"}), "malformed_timestamp"),
    (lambda h: h.update({"Kiosk-Signature": "abc="}), "malformed_signature"),
    (lambda h: h.update({"Kiosk-Signature": "A" * 40}), "malformed_signature"),
    (lambda h: h.update({"Kiosk-Signature": "A" * 200}), "malformed_signature"),
])
def test_malformed_headers_have_precise_codes(change, code):
    headers = dict(signed())
    change(headers)
    with pytest.raises(AuthError) as err:
        parse_signed_headers(headers)
    assert err.value.code == code


def test_a_repeated_header_is_refused():
    headers = CIMultiDict(signed())
    headers.add("kiosk-counter", "99")
    with pytest.raises(AuthError) as err:
        parse_signed_headers(headers)
    assert err.value.code == "malformed_headers"


NAMES = st.sampled_from(["Kiosk-Device", "kiosk-counter", "KIOSK-TIMESTAMP", "Kiosk-Signature",
                         "Host", "x"])
VALUES = st.one_of(st.text(max_size=120), st.integers(), st.none(), st.binary(max_size=20),
                   st.lists(st.text(max_size=3), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.dictionaries(st.one_of(NAMES, st.text(max_size=10), st.integers()), VALUES, max_size=6),
    st.none(), st.integers(), st.text(max_size=20), st.lists(st.text(max_size=5), max_size=3),
))
def test_junk_headers_raise_only_auth_error(headers):
    try:
        parse_signed_headers(headers)
    except AuthError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({
    "Kiosk-Device": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", fullmatch=True),
    "Kiosk-Counter": st.from_regex(r"[0-9]{1,19}", fullmatch=True),
    "Kiosk-Timestamp": st.from_regex(r"[0-9]{1,12}", fullmatch=True),
    "Kiosk-Signature": st.from_regex(r"[A-Za-z0-9_-]{8,100}", fullmatch=True),
}))
def test_well_shaped_but_forged_headers_never_verify(headers):
    try:
        parsed = parse_signed_headers(headers)
    except AuthError:
        return
    with pytest.raises(AuthError):
        verify_request(PUB, parsed, "POST", PATH, BODY, float(parsed.timestamp))


# -- the kiosk's counter --------------------------------------------------------------------


def test_counter_is_strictly_increasing_persisted_and_private(tmp_path):
    counter = RequestCounter(tmp_path / "state" / "counter")
    values = [counter.next() for _ in range(50)]
    assert values == sorted(set(values))
    assert values[0] >= time.time_ns() // 1000 - 10_000_000
    assert (tmp_path / "state" / "counter").stat().st_mode & 0o777 == 0o600
    again = RequestCounter(tmp_path / "state" / "counter")
    assert again.last == values[-1] and again.next() > values[-1]


def test_counter_moves_forward_after_the_file_is_lost_or_the_clock_steps_back(tmp_path):
    clock = [2_000_000_000_000]
    counter = RequestCounter(tmp_path / "c", clock_ns=lambda: clock[0])
    first = counter.next()
    assert first == 2_000_000_000
    clock[0] -= 10**12  # clock set back a quarter hour: last + 1 still wins
    assert counter.next() == first + 1
    (tmp_path / "c").unlink()  # reinstalled: the time floor is still ahead of what was sent
    clock[0] += 2 * 10**12
    assert counter.next() > first + 1
    (tmp_path / "c").write_text("garbage")
    assert counter.next() == clock[0] // 1000
    counter.advance_to(10**17)
    assert counter.next() == 10**17 + 1


def test_counter_values_are_unique_across_threads(tmp_path):
    counter = RequestCounter(tmp_path / "c", clock_ns=lambda: 0)
    seen: list[int] = []
    lock = threading.Lock()

    def work():
        for _ in range(25):
            value = counter.next()
            with lock:
                seen.append(value)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert sorted(seen) == list(range(1, 101))


def test_the_servers_atomic_counter_update_refuses_replays_and_revoked_devices(tmp_path):
    """The statement docs/security.md gives the server, on a real SQLite database."""
    db = sqlite3.connect(tmp_path / "fleet.db")
    db.execute("CREATE TABLE devices (id TEXT PRIMARY KEY, last_counter INTEGER NOT NULL, "
               "revoked_at REAL)")
    db.execute("INSERT INTO devices VALUES ('kiosk-0001', 0, NULL)")
    update = ("UPDATE devices SET last_counter=:c WHERE id=:id AND last_counter < :c "
              "AND revoked_at IS NULL")

    def accept(counter: int) -> bool:
        return db.execute(update, {"c": counter, "id": "kiosk-0001"}).rowcount == 1

    counter = RequestCounter(tmp_path / "counter")
    first, second = counter.next(), counter.next()
    assert accept(first) and accept(second)
    assert not accept(second) and not accept(first)  # replays
    db.execute("UPDATE devices SET revoked_at = 1")
    assert not accept(counter.next())  # revocation takes effect at the next request
    db.close()
