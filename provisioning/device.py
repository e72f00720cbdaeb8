"""The kiosk side of enrolment: the device's key, certificate and enrolment record.

`enrol()` makes the device key (EC P-256) on the kiosk (it never leaves it), sends a CSR with
the one-time token to the fleet server, checks what comes back (the certificate is for our
key and issued by the CA that came with it) and writes the state directory:

    <state_dir>/            0700
        device.key          PEM PKCS#8, 0600
        device.crt          PEM, the device certificate
        ca.crt              PEM, the fleet CA
        enrolment.json      {device_id, server_url, site, heartbeat_interval_s,
                             bundle_signing_key_pem, credential_key_pem, enrolled_at}

Each file is replaced atomically and `enrolment.json` is written last: it is the commit
record. Until it exists the kiosk is not enrolled; once it exists the files it describes are
complete. On a forced re-enrolment it is removed first, so a crash half-way leaves "not
enrolled", never the old record with the new key. Other files in the directory (the agent's
request counter, say) are left alone.

`DeviceIdentity.load` is what the agent and the doctor use; it checks the same things again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import os
import ssl as ssl_module
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from fleet.wire import ApiError, EnrolRequest, EnrolResponse, Site
from provisioning.ca import (
    CertificateError,
    device_id_of,
    load_certificate,
    same_public_key,
    verify_issued_by,
)
from provisioning.keystore import (
    KeystoreError,
    check_private_dir,
    ensure_private_dir,
    group_or_other_can_read,
    read_private,
    remove_private,
    write_private,
)
from provisioning.sessions import SessionOffer
from provisioning.signing import sign_request
from provisioning.tokens import looks_like_token, normalise_token

KEY_FILE = "device.key"
CERT_FILE = "device.crt"
CA_FILE = "ca.crt"
ENROLMENT_FILE = "enrolment.json"
ENROL_PATH = "/api/v1/enrol"
ENROL_TIMEOUT_S = 30.0
MAX_RESPONSE_BYTES = 256 * 1024

# What ops read when enrolment fails: what happened and what to do next.
SERVER_ERRORS = {
    "token_unknown": (
        "The fleet server does not know this enrolment token. Check it was typed exactly as "
        "shown (kenr_ followed by 32 letters and digits 2-7), or ask ops for a new token."
    ),
    "token_expired": (
        "This enrolment token has expired. Ask ops to create a new token for this kiosk's site "
        "and run the command again with it."
    ),
    "token_used": (
        "This enrolment token has already been used (each token enrols one kiosk). Ask ops for "
        "a new token; if this kiosk was enrolled before, ops should revoke its old record."
    ),
    "csr_rejected": (
        "The fleet server refused this kiosk's key request. This is a software fault, not a "
        "typing mistake: report it to the fleet team with this message."
    ),
}


class NotEnrolled(Exception):
    """This kiosk has no enrolment yet (or it was removed)."""


class IdentityError(Exception):
    """The state directory exists but is broken: unreadable, inconsistent or unsafe."""


class EnrolmentFailed(Exception):
    """Enrolment did not happen. `code` is stable; the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class AlreadyEnrolled(EnrolmentFailed):
    def __init__(self, state_dir: Path, device_id: str) -> None:
        super().__init__(
            "already_enrolled",
            f"This kiosk is already enrolled as {device_id} ({state_dir}). To enrol it again "
            "(new site, lost server record), run the command with --force.",
        )


@dataclass(frozen=True)
class DeviceIdentity:
    device_id: str
    server_url: str
    site: Site
    private_key: ec.EllipticCurvePrivateKey
    certificate_pem: str
    ca_pem: str
    bundle_signing_key_pem: str
    heartbeat_interval_s: int
    credential_key_pem: str = ""
    enrolled_at: str = ""
    state_dir: Path | None = None

    @classmethod
    def load(cls, state_dir: Path | str) -> DeviceIdentity:
        """Read and check the state directory. Raises `NotEnrolled` or `IdentityError`."""
        state_dir = Path(state_dir)
        record = EnrolmentRecord.load(state_dir)  # NotEnrolled / IdentityError
        try:
            key_pem = read_private(state_dir / KEY_FILE)
            cert_pem = read_private(state_dir / CERT_FILE).decode("ascii")
            ca_pem = read_private(state_dir / CA_FILE).decode("ascii")
        except FileNotFoundError as exc:
            raise IdentityError(
                f"{exc.filename} is missing; enrol again with --force"
            ) from None
        except (OSError, ValueError) as exc:
            raise IdentityError(f"cannot read the enrolment in {state_dir} ({exc})") from None
        if group_or_other_can_read(state_dir / KEY_FILE):
            raise IdentityError(
                f"{state_dir / KEY_FILE} is readable by other users: chmod 600 it "
                "(and consider the key leaked: revoke and re-enrol)"
            )
        device_id = record.device_id
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except (ValueError, TypeError):
            raise IdentityError(f"{state_dir / KEY_FILE} is not a PEM private key") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise IdentityError(f"{state_dir / KEY_FILE} is not an EC key")
        try:
            cert = load_certificate(cert_pem)
            # Expiry is not checked here: an expired kiosk must still say who it is (status,
            # doctor); the server refuses it and ops re-enrol it.
            verify_issued_by(cert_pem, ca_pem, check_validity=False)
            cert_device = device_id_of(cert_pem)
        except CertificateError as exc:
            raise IdentityError(f"the device certificate is unusable: {exc.detail}") from None
        if not same_public_key(cert.public_key(), key.public_key()):
            raise IdentityError(
                "device.crt does not belong to device.key; enrol again with --force"
            )
        if cert_device != device_id:
            raise IdentityError(
                f"device.crt is for {cert_device} but enrolment.json says {device_id}"
            )
        return cls(
            device_id=device_id,
            server_url=record.server_url,
            site=record.site,
            private_key=key,
            certificate_pem=cert_pem,
            ca_pem=ca_pem,
            bundle_signing_key_pem=record.bundle_signing_key_pem,
            heartbeat_interval_s=record.heartbeat_interval_s,
            credential_key_pem=record.credential_key_pem,
            enrolled_at=record.enrolled_at,
            state_dir=state_dir,
        )

    def sign(
        self, method: str, path_and_query: str, body: bytes, counter: int, now: float
    ) -> dict[str, str]:
        """The signature headers for one request (provisioning/signing.py)."""
        return sign_request(
            self.private_key, self.device_id, counter, method, path_and_query, body, now
        )

    def session_offer(self) -> SessionOffer:
        """A fresh key-exchange key for opening a device session (provisioning/sessions.py):
        its `body` goes to the session endpoint signed with `sign`, its `accept` turns the
        answer into a `DeviceSession` the agent keeps in memory only."""
        return SessionOffer(self.device_id)

    @property
    def certificate_not_after(self) -> dt.datetime:
        return load_certificate(self.certificate_pem).not_valid_after_utc

    def bundle_signing_key(self) -> Ed25519PublicKey | None:
        """The key catalogue/config bundles must be signed with (None: none was given)."""
        return _ed25519_public(self.bundle_signing_key_pem)

    def credential_key(self) -> Ed25519PublicKey | None:
        """The key maintenance credentials are signed with; the bundle key when the server
        sent no separate one."""
        return _ed25519_public(self.credential_key_pem) or self.bundle_signing_key()

    def problems(self) -> list[str]:
        """File-permission problems in the state directory (for the doctor)."""
        return check_private_dir(self.state_dir) if self.state_dir else []


@dataclass(frozen=True)
class EnrolmentRecord:
    """`enrolment.json` alone, without the device key: what the kiosk app needs (its
    maintenance gate and bundle store) when it must not hold the agent's key."""

    device_id: str
    server_url: str
    site: Site
    heartbeat_interval_s: int
    bundle_signing_key_pem: str = ""
    credential_key_pem: str = ""
    enrolled_at: str = ""

    @classmethod
    def load(cls, state_dir: Path | str) -> EnrolmentRecord:
        """Raises `NotEnrolled` or `IdentityError`, like `DeviceIdentity.load`."""
        path = Path(state_dir) / ENROLMENT_FILE
        try:
            record = json.loads(read_private(path))
        except FileNotFoundError:
            raise NotEnrolled(
                f"this kiosk is not enrolled (no {path}); run "
                "`kiosk provision --server URL --token TOKEN`"
            ) from None
        except (OSError, ValueError) as exc:
            raise IdentityError(f"cannot read {path} ({exc})") from None
        try:
            result = cls(
                device_id=str(record["device_id"]),
                server_url=str(record["server_url"]),
                site=Site.model_validate(record["site"]),
                heartbeat_interval_s=int(record["heartbeat_interval_s"]),
                bundle_signing_key_pem=str(record.get("bundle_signing_key_pem") or ""),
                credential_key_pem=str(record.get("credential_key_pem") or ""),
                enrolled_at=str(record.get("enrolled_at") or ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError, ValidationError) as exc:
            raise IdentityError(f"{path} is incomplete or invalid ({exc})") from None
        result.bundle_signing_key()  # a bad key is an IdentityError now, not later
        result.credential_key()
        return result

    def bundle_signing_key(self) -> Ed25519PublicKey | None:
        return _ed25519_public(self.bundle_signing_key_pem)

    def credential_key(self) -> Ed25519PublicKey | None:
        return _ed25519_public(self.credential_key_pem) or self.bundle_signing_key()


def _ed25519_public(pem: str) -> Ed25519PublicKey | None:
    if not pem:
        return None
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise IdentityError("a signing key in enrolment.json is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise IdentityError("a signing key in enrolment.json is not an Ed25519 key")
    return key


def make_csr(key: ec.EllipticCurvePrivateKey) -> str:
    """A CSR for `key`. Its subject is a placeholder: the CA sets the real one."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kiosk-enrolment")]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def is_enrolled(state_dir: Path | str) -> bool:
    return (Path(state_dir) / ENROLMENT_FILE).exists()


def _check_server_url(server_url: str, allow_insecure_http: bool) -> str:
    parts = urlsplit(server_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnrolmentFailed(
            "bad_server_url", f"{server_url!r} is not a server URL (e.g. https://fleet.example.cn)"
        )
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        raise EnrolmentFailed(
            "insecure_server_url",
            "The enrolment token must not travel unencrypted: use an https:// server URL "
            "(plain http is allowed only to this machine, for tests).",
        )
    return server_url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def enrol(
    server_url: str,
    token: str,
    state_dir: Path,
    *,
    ssl: ssl_module.SSLContext | bool | None = None,
    app_version: str = "",
    force: bool = False,
    timeout_s: float = ENROL_TIMEOUT_S,
    allow_insecure_http: bool = False,
) -> DeviceIdentity:
    """Enrol this kiosk with the fleet server. Raises `EnrolmentFailed` (`AlreadyEnrolled`
    when an enrolment exists and `force` is false) with a sentence for ops."""
    state_dir = Path(state_dir)
    base_url = _check_server_url(server_url, allow_insecure_http)
    canonical = normalise_token(token) if looks_like_token(token) else None
    if canonical is None:
        raise EnrolmentFailed(
            "token_malformed",
            "That is not an enrolment token: it starts with kenr_ and has 32 more letters and "
            "digits (2-7). Check what ops gave you.",
        )
    if is_enrolled(state_dir) and not force:
        try:
            existing = DeviceIdentity.load(state_dir).device_id
        except (NotEnrolled, IdentityError):
            existing = "an unreadable identity"
        raise AlreadyEnrolled(state_dir, existing)

    key = ec.generate_private_key(ec.SECP256R1())
    request = EnrolRequest(token=canonical, csr_pem=make_csr(key), app_version=app_version[:64])
    response = await _post_enrolment(base_url, request, ssl, timeout_s)
    _check_response(response, key)

    record = {
        "device_id": response.device_id,
        "server_url": base_url,
        "site": response.site.model_dump(mode="json"),
        "heartbeat_interval_s": response.heartbeat_interval_s,
        "bundle_signing_key_pem": response.bundle_signing_key_pem,
        "credential_key_pem": getattr(response, "credential_key_pem", "") or "",
        "enrolled_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        ensure_private_dir(state_dir)
        remove_private(state_dir / ENROLMENT_FILE)  # not enrolled until the new record lands
        write_private(state_dir / KEY_FILE, key_pem)
        write_private(state_dir / CERT_FILE, response.certificate_pem)
        write_private(state_dir / CA_FILE, response.ca_certificate_pem)
        write_private(
            state_dir / ENROLMENT_FILE,
            json.dumps(record, ensure_ascii=False, indent=2) + "\n",
        )
    except KeystoreError as exc:
        raise EnrolmentFailed(
            "state_write_failed",
            f"The kiosk was enrolled as {response.device_id} but its identity could not be "
            f"saved ({exc}). Fix the disk or permissions, then ask ops for a new token.",
        ) from None
    try:
        return DeviceIdentity.load(state_dir)
    except (NotEnrolled, IdentityError) as exc:  # written a moment ago: should not happen
        raise EnrolmentFailed("state_unreadable", str(exc)) from None


async def _post_enrolment(
    base_url: str, request: EnrolRequest, ssl: Any, timeout_s: float
) -> EnrolResponse:
    url = base_url + ENROL_PATH
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    ssl_arg = True if ssl is None else ssl
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(
                url,
                data=request.model_dump_json().encode("utf-8"),
                headers={"Content-Type": "application/json"},
                ssl=ssl_arg,
            ) as resp:
                body = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                status = resp.status
    except aiohttp.ClientConnectorCertificateError:
        raise EnrolmentFailed(
            "tls_untrusted",
            f"The fleet server's TLS certificate is not trusted ({base_url}). If it uses a "
            "private CA, pass that CA with --ca-file.",
        ) from None
    except aiohttp.ClientSSLError as exc:
        raise EnrolmentFailed("tls_failed", f"TLS with {base_url} failed ({exc}).") from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
        raise EnrolmentFailed(
            "unreachable",
            f"Cannot reach the fleet server at {base_url} ({reason}). Check the URL, the "
            "network cable or SIM, and the firewall, then try again; the token stays valid.",
        ) from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise EnrolmentFailed("bad_response", "The fleet server's answer is too large.")
    if status != 200:
        raise _server_error(status, body)
    try:
        return EnrolResponse.model_validate_json(body)
    except ValidationError:
        raise EnrolmentFailed(
            "bad_response",
            "The fleet server's answer is not a valid enrolment (wrong server URL, or server "
            "and kiosk versions that do not match).",
        ) from None


def _server_error(status: int, body: bytes) -> EnrolmentFailed:
    try:
        error = ApiError.model_validate_json(body)
    except ValidationError:
        return EnrolmentFailed(
            "server_error",
            f"The fleet server answered HTTP {status} without an explanation. Check the server "
            "URL; if it is right, try again later or tell the fleet team.",
        )
    message = SERVER_ERRORS.get(error.error)
    if message is None:
        message = (
            f"The fleet server refused the enrolment (HTTP {status}, {error.error}"
            f"{': ' + error.detail if error.detail else ''}). Tell the fleet team."
        )
    elif error.detail:
        message = f"{message} (server: {error.detail})"
    return EnrolmentFailed(error.error, message)


def _check_response(response: EnrolResponse, key: ec.EllipticCurvePrivateKey) -> None:
    def bad(detail: str) -> EnrolmentFailed:
        return EnrolmentFailed(
            "bad_certificate",
            f"The fleet server's answer does not hold together ({detail}); nothing was saved. "
            "Tell the fleet team (the token may have been used up).",
        )

    try:
        cert = load_certificate(response.certificate_pem)
        verify_issued_by(response.certificate_pem, response.ca_certificate_pem)
        cert_device = device_id_of(response.certificate_pem)
    except CertificateError as exc:
        raise bad(exc.detail) from None
    if not same_public_key(cert.public_key(), key.public_key()):
        raise bad("the certificate is for another key")
    if cert_device != response.device_id:
        raise bad("the certificate names another device")
    for pem in (response.bundle_signing_key_pem, getattr(response, "credential_key_pem", "")):
        try:
            _ed25519_public(pem or "")
        except IdentityError as exc:
            raise bad(str(exc)) from None


def ssl_context_for(ca_file: Path | str | None) -> ssl_module.SSLContext | None:
    """A TLS context trusting `ca_file` in addition to the system's CAs (None: defaults)."""
    if ca_file is None:
        return None
    context = ssl_module.create_default_context()
    context.load_verify_locations(cafile=os.fspath(ca_file))
    return context
