"""The fleet CA: what it issues, what it refuses, and OpenSSL's independent opinion."""

from __future__ import annotations

import base64
import datetime as dt
import os
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from provisioning.ca import (
    CAError,
    CertificateError,
    CSRRejected,
    FleetCA,
    device_id_of,
    public_key_of,
    verify_issued_by,
)
from provisioning.device import make_csr


def csr_for(key, cn="evil", org="someone-elses-site") -> str:
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def p256():
    return ec.generate_private_key(ec.SECP256R1())


def test_create_writes_a_private_ten_year_p256_ca(tmp_path):
    ca = FleetCA.create(tmp_path / "ca", name="Test Fleet CA")
    assert stat.S_IMODE(os.stat(tmp_path / "ca").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "ca" / "ca.key").st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(ca.certificate_pem.encode())
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Test Fleet CA"
    assert isinstance(cert.public_key().curve, ec.SECP256R1)
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    years = (cert.not_valid_after_utc - cert.not_valid_before_utc).days / 365
    assert 9.9 < years < 10.1
    assert FleetCA.load(tmp_path / "ca").certificate_pem == ca.certificate_pem


def test_create_refuses_to_overwrite_and_load_refuses_unsafe_or_mismatched_files(tmp_path):
    FleetCA.create(tmp_path / "a")
    with pytest.raises(CAError, match="refusing to overwrite"):
        FleetCA.create(tmp_path / "a")
    os.chmod(tmp_path / "a" / "ca.key", 0o644)
    with pytest.raises(CAError, match="readable by other users"):
        FleetCA.load(tmp_path / "a")
    os.chmod(tmp_path / "a" / "ca.key", 0o600)
    FleetCA.create(tmp_path / "b")
    (tmp_path / "a" / "ca.crt").write_bytes((tmp_path / "b" / "ca.crt").read_bytes())
    with pytest.raises(CAError, match="does not match"):
        FleetCA.load(tmp_path / "a")
    with pytest.raises(CAError, match="no fleet CA"):
        FleetCA.load(tmp_path / "nothing")


def test_issue_sets_subject_san_eku_itself_and_ignores_the_csr_subject(session_ca):
    key = p256()
    pem = session_ca.issue_device_certificate(csr_for(key), "kiosk-0001", "wx-bank-001")
    cert = x509.load_pem_x509_certificate(pem.encode())
    assert cert.subject.rfc4514_string() == "O=wx-bank-001,CN=kiosk-0001"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "urn:kiosk:device:kiosk-0001"
    ]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days in (825, 824)
    assert device_id_of(pem) == "kiosk-0001"
    assert public_key_of(pem).public_numbers() == key.public_key().public_numbers()
    verify_issued_by(pem, session_ca.certificate_pem)
    again = session_ca.issue_device_certificate(csr_for(key), "kiosk-0001", "wx-bank-001")
    assert x509.load_pem_x509_certificate(again.encode()).serial_number != cert.serial_number


def test_openssl_accepts_the_device_certificate_for_client_auth(session_ca, tmp_path):
    pem = session_ca.issue_device_certificate(make_csr(p256()), "kiosk-0002", "site-9")
    (tmp_path / "ca.pem").write_text(session_ca.certificate_pem)
    (tmp_path / "dev.pem").write_text(pem)
    out = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-purpose", "sslclient",
         "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "dev.pem")],
        capture_output=True, text=True, timeout=20,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    bad = subprocess.run(
        ["openssl", "verify", "-purpose", "sslserver",
         "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "dev.pem")],
        capture_output=True, text=True, timeout=20,
    )
    assert bad.returncode != 0  # a device certificate is no server certificate


def tampered(csr_pem: str) -> str:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # last byte of the ECDSA signature's s
    csr = x509.load_der_x509_csr(bytes(der))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda: csr_for(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
         "key_type"),
        (lambda: csr_for(ec.generate_private_key(ec.SECP384R1())), "key_type"),
        (lambda: tampered(csr_for(p256())), "bad_signature"),
        (lambda: "not a csr", "malformed"),
        (lambda: "", "malformed"),
        (lambda: "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
         "malformed"),
        (lambda: "x" * 9000, "malformed"),
    ],
)
def test_issue_refuses_bad_csrs(session_ca, make, code):
    with pytest.raises(CSRRejected) as err:
        session_ca.issue_device_certificate(make(), "kiosk-0003", "site-1")
    assert err.value.code == code


@pytest.mark.parametrize("device_id, site_id, days, code", [
    ("../etc", "site-1", 10, "bad_device_id"),
    ("kiosk 1", "site-1", 10, "bad_device_id"),
    ("kiosk-1", "", 10, "bad_site_id"),
    ("kiosk-1", "site-1", 826, "bad_validity"),
    ("kiosk-1", "site-1", 0, "bad_validity"),
])
def test_issue_refuses_bad_names_and_validity(session_ca, device_id, site_id, days, code):
    with pytest.raises(CSRRejected) as err:
        session_ca.issue_device_certificate(make_csr(p256()), device_id, site_id, days)
    assert err.value.code == code


def test_verify_issued_by_refuses_other_cas_expired_and_junk(session_ca, tmp_path):
    other = FleetCA.create(tmp_path / "other")
    pem = other.issue_device_certificate(make_csr(p256()), "kiosk-0004", "site-1", days=30)
    with pytest.raises(CertificateError) as err:
        verify_issued_by(pem, session_ca.certificate_pem)
    assert err.value.code == "not_issued_by_ca"
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=31)
    with pytest.raises(CertificateError) as err:
        verify_issued_by(pem, other.certificate_pem, now=later)
    assert err.value.code == "expired"
    verify_issued_by(pem, other.certificate_pem, now=later, check_validity=False)
    with pytest.raises(CertificateError) as err:
        device_id_of("junk")
    assert err.value.code == "malformed"
    with pytest.raises(CertificateError) as err:
        device_id_of(session_ca.certificate_pem)
    assert err.value.code == "no_device_id"


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.text(max_size=200),
    st.binary(max_size=300).map(
        lambda b: "-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(b).decode() + "-----END CERTIFICATE REQUEST-----\n"
    ),
))
def test_junk_csrs_raise_only_csr_rejected(session_ca, junk):
    with pytest.raises(CSRRejected):
        session_ca.issue_device_certificate(junk, "kiosk-0005", "site-1")
