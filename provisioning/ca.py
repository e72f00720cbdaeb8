"""The fleet CA: issues each enrolled kiosk its device certificate (DESIGN §9).

The CA key (EC P-256) lives on the fleet server in a private directory (`ca.key`, 0600) next
to its self-signed certificate (`ca.crt`, ten years). Issuing trusts nothing in the kiosk's
CSR but its public key, and only after checking the CSR's self-signature (proof that the
kiosk holds the private key): the subject is set here (CN = device id, O = site id), the SAN
carries `urn:kiosk:device:<device_id>`, the key must be P-256, the serial is random.

The certificate is the kiosk's identity record; requests are authenticated by signatures
with the same key (provisioning/signing.py), not by mTLS: see docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioning.keystore import (
    KeystoreError,
    ensure_private_dir,
    group_or_other_can_read,
    read_private,
    write_private,
)

CA_KEY_FILE = "ca.key"
CA_CERT_FILE = "ca.crt"
CA_VALIDITY_DAYS = 3650
DEVICE_CERT_DAYS = 825
MAX_DEVICE_CERT_DAYS = 825
MAX_CSR_PEM_CHARS = 8000  # as fleet/wire.py's EnrolRequest
DEVICE_URN_PREFIX = "urn:kiosk:device:"
# Backdating covers a kiosk whose clock is a little behind the server's.
BACKDATE = dt.timedelta(minutes=5)
# The wire's Ident: device and site ids are also URL path segments and log fields.
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class CAError(Exception):
    """The CA directory cannot be created or loaded (missing, unreadable, key/cert mismatch)."""


class CSRRejected(ValueError):
    """A CSR the CA will not sign. `code` is stable (the server answers `csr_rejected` with
    it in the detail); `detail` is a sentence for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


class CertificateError(ValueError):
    """A certificate that is not what it should be: unparsable, not issued by the CA,
    expired or not yet valid. `code` is one of `malformed`, `not_issued_by_ca`,
    `expired`, `not_yet_valid`, `no_device_id`."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class FleetCA:
    """A loaded CA. Create one with `FleetCA.create`, open it with `FleetCA.load`."""

    directory: Path
    private_key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @classmethod
    def create(cls, directory: Path | str, name: str = "Kiosk Fleet CA") -> FleetCA:
        """A new CA in `directory` (created 0700). Refuses to replace an existing CA: every
        enrolled kiosk trusts it, so losing it means re-enrolling the fleet."""
        directory = Path(directory)
        if (directory / CA_KEY_FILE).exists() or (directory / CA_CERT_FILE).exists():
            raise CAError(f"{directory} already holds a CA; refusing to overwrite it")
        try:
            ensure_private_dir(directory)
        except KeystoreError as exc:
            raise CAError(str(exc)) from None
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _utcnow()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            # Key first: a crash leaves a key without a certificate (load says so), never a
            # certificate whose key is lost.
            write_private(directory / CA_KEY_FILE, key_pem)
            write_private(directory / CA_CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
        except KeystoreError as exc:
            raise CAError(str(exc)) from None
        return cls(directory, key, cert)

    @classmethod
    def load(cls, directory: Path | str) -> FleetCA:
        """Open the CA in `directory`. Refuses a key file others can read (like ssh does)."""
        directory = Path(directory)
        key_path, cert_path = directory / CA_KEY_FILE, directory / CA_CERT_FILE
        try:
            key_pem = read_private(key_path)
            cert_pem = read_private(cert_path)
        except FileNotFoundError as exc:
            missing = Path(exc.filename).name
            raise CAError(f"no fleet CA in {directory} ({missing} missing)") from None
        except KeystoreError as exc:
            raise CAError(str(exc)) from None
        if group_or_other_can_read(key_path):
            raise CAError(f"{key_path} is readable by other users: chmod 600 it")
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
            cert = x509.load_pem_x509_certificate(cert_pem)
        except (ValueError, TypeError) as exc:
            raise CAError(f"the CA files in {directory} cannot be parsed ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not _same_key(
            key.public_key(), cert.public_key()
        ):
            raise CAError(f"{key_path} does not match {cert_path}")
        return cls(directory, key, cert)

    def issue_device_certificate(
        self,
        csr_pem: str,
        device_id: str,
        site_id: str,
        days: int = DEVICE_CERT_DAYS,
        *,
        now: dt.datetime | None = None,
    ) -> str:
        """Sign a device certificate for the key in `csr_pem`. Raises `CSRRejected`."""
        if not isinstance(device_id, str) or not _IDENT.match(device_id):
            raise CSRRejected("bad_device_id", "the device id is not a valid identifier")
        if not isinstance(site_id, str) or not _IDENT.match(site_id):
            raise CSRRejected("bad_site_id", "the site id is not a valid identifier")
        if isinstance(days, bool) or not isinstance(days, int) or not (
            1 <= days <= MAX_DEVICE_CERT_DAYS
        ):
            raise CSRRejected("bad_validity", f"validity must be 1..{MAX_DEVICE_CERT_DAYS} days")
        csr = _parse_csr(csr_pem)
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise CSRRejected("key_type", "only EC P-256 device keys are accepted")
        try:
            signature_ok = csr.is_signature_valid
        except Exception:  # unsupported signature algorithm
            signature_ok = False
        if not signature_ok:
            raise CSRRejected("bad_signature", "the CSR's signature does not verify")
        now = now or _utcnow()
        not_after = min(now + dt.timedelta(days=days), self.certificate.not_valid_after_utc)
        subject = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, device_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, site_id),
        ])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False,
                    crl_sign=False, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(DEVICE_URN_PREFIX + device_id)]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
            .sign(self.private_key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _parse_csr(csr_pem: str) -> x509.CertificateSigningRequest:
    if not isinstance(csr_pem, str) or not csr_pem.strip():
        raise CSRRejected("malformed", "the CSR is empty")
    if len(csr_pem) > MAX_CSR_PEM_CHARS:
        raise CSRRejected("malformed", "the CSR is too long")
    try:
        return x509.load_pem_x509_csr(csr_pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise CSRRejected("malformed", "the CSR is not a PEM certificate request") from None


def _same_key(a: ec.EllipticCurvePublicKey | object, b: object) -> bool:
    def der(k: object) -> bytes | None:
        try:
            return k.public_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        except Exception:
            return None

    da, db = der(a), der(b)
    return da is not None and da == db


def same_public_key(a: object, b: object) -> bool:
    """True when two public keys are the same key (compared by their DER encoding)."""
    return _same_key(a, b)


def load_certificate(cert_pem: str | bytes) -> x509.Certificate:
    """Parse a PEM certificate or raise `CertificateError("malformed")`."""
    try:
        data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else bytes(cert_pem)
        return x509.load_pem_x509_certificate(data)
    except (ValueError, TypeError, UnicodeEncodeError):
        raise CertificateError("malformed", "not a PEM certificate") from None


def device_id_of(cert_pem: str) -> str:
    """The device id a device certificate was issued for (from its SAN URN)."""
    cert = load_certificate(cert_pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    for uri in uris:
        if uri.startswith(DEVICE_URN_PREFIX):
            device_id = uri[len(DEVICE_URN_PREFIX):]
            if _IDENT.match(device_id):
                return device_id
    raise CertificateError("no_device_id", "the certificate names no kiosk device")


def public_key_of(cert_pem: str) -> ec.EllipticCurvePublicKey:
    """The device's public key (EC P-256) from its certificate."""
    key = load_certificate(cert_pem).public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CertificateError("malformed", "the certificate's key is not EC P-256")
    return key


def not_after_of(cert_pem: str) -> dt.datetime:
    """When the certificate expires (UTC)."""
    return load_certificate(cert_pem).not_valid_after_utc


def verify_issued_by(
    cert_pem: str,
    ca_cert_pem: str,
    *,
    now: dt.datetime | None = None,
    check_validity: bool = True,
) -> None:
    """Raise `CertificateError` unless `cert_pem` was signed by the CA in `ca_cert_pem` and
    (with `check_validity`) is valid at `now`."""
    cert = load_certificate(cert_pem)
    ca = load_certificate(ca_cert_pem)
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError(
            "not_issued_by_ca", "the certificate was not issued by this CA"
        ) from None
    if check_validity:
        now = now or _utcnow()
        if now < cert.not_valid_before_utc:
            raise CertificateError(
                "not_yet_valid", f"valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )
        if now > cert.not_valid_after_utc:
            raise CertificateError("expired", f"expired on {cert.not_valid_after_utc:%Y-%m-%d} UTC")
