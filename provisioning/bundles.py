"""Signed catalogue and config bundles: the kiosk installs only what ops signed, and never
an older version than it has (DESIGN §9).

A bundle is one JSON object:

    {"format": "kiosk-bundle-v1", "kind": "catalogue" | "config", "version": 7,
     "created_at": "2026-11-22T14:00:00+00:00", "payload": "<base64>", "sha256": "<hex>",
     "key_id": "<16 hex>", "signature": "<base64url>"}

signed with Ed25519 over `kiosk-bundle-v1\\n` + the canonical JSON (sorted keys, no spaces,
ASCII) of every field but `signature`. `key_id` is the first 16 hex digits of the SHA-256 of
the raw public key; the kiosk trusts the key(s) it got at enrolment. The payload is opaque
here (the catalogue or config loader parses it after installation).

`BundleStore` keeps, per kind, `current.json` (the installed bundle), `previous.json` (the
one before, for a local rollback) and `highest` (the highest version ever installed, so a
rollback on the kiosk does not reopen the door to re-installing what it rolled back from).
Every file is replaced atomically (provisioning/keystore.py), so a crash leaves the old
bundle or the new one installed, never a half-written file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from provisioning.keystore import ensure_private_dir, read_private, write_private

FORMAT = "kiosk-bundle-v1"
KINDS = ("catalogue", "config")
FIELDS = ("format", "kind", "version", "created_at", "payload", "sha256", "key_id", "signature")
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024
MAX_BUNDLE_BYTES = MAX_PAYLOAD_BYTES * 4 // 3 + 4096
MAX_VERSION = 2**53 - 1  # survives any JSON implementation
_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_KEY_ID = re.compile(r"^[0-9a-f]{16}\Z")
_B64URL = re.compile(r"^[A-Za-z0-9_-]+\Z")
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}\Z")


class BundleError(Exception):
    """A bundle the kiosk refuses. `code` is stable (the agent reports it as the command's
    result detail); the message is a sentence for ops."""

    code = "bundle_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BundleMalformed(BundleError):
    code = "malformed"


class BundleUnsigned(BundleError):
    code = "unsigned"


class BundleUnknownKey(BundleError):
    code = "unknown_key"


class BundleTampered(BundleError):
    code = "tampered"


class BundleRollback(BundleError):
    code = "rollback"


class BundleWrongKind(BundleError):
    code = "wrong_kind"


class BundleStoreError(BundleError):
    """The store itself cannot be read or written (disk, permissions)."""

    code = "store_error"


@dataclass(frozen=True)
class InstalledBundle:
    kind: str
    version: int
    created_at: str
    sha256: str
    key_id: str
    payload: bytes

    def describe(self) -> str:
        return f"{self.kind} v{self.version} ({self.sha256[:12]}, key {self.key_id})"


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def canonical_bytes(bundle: dict) -> bytes:
    """What the signature covers: every field but `signature`, canonical JSON, prefixed."""
    fields = {k: v for k, v in bundle.items() if k != "signature"}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return FORMAT.encode("ascii") + b"\n" + text.encode("ascii")


def make_bundle(
    kind: str,
    version: int,
    payload: bytes,
    signing_key: Ed25519PrivateKey,
    *,
    created_at: dt.datetime | None = None,
) -> dict:
    """A signed bundle (ops side: `kiosk provision bundle-sign`, or the fleet server)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ValueError("version must be a positive integer")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload larger than {MAX_PAYLOAD_BYTES} bytes")
    created = (created_at or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    bundle = {
        "format": FORMAT,
        "kind": kind,
        "version": version,
        "created_at": created,
        "payload": base64.b64encode(payload).decode("ascii"),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "key_id": key_id_of(signing_key.public_key()),
    }
    signature = signing_key.sign(canonical_bytes(bundle))
    bundle["signature"] = base64.urlsafe_b64encode(signature).rstrip(b"=").decode("ascii")
    return bundle


def encode_bundle(bundle: dict) -> bytes:
    return json.dumps(bundle, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def verify_bundle(
    bundle: dict | bytes | str,
    trusted_keys: Sequence[Ed25519PublicKey],
    *,
    kind: str | None = None,
) -> tuple[InstalledBundle, dict]:
    """Check a bundle completely (shape, signature, payload hash, and `kind` if given).
    Returns the parsed bundle and its fields; raises a `BundleError` subclass."""
    fields = _as_dict(bundle)
    if fields.get("format") != FORMAT:
        raise BundleMalformed(f"not a {FORMAT} bundle")
    signature_text = fields.get("signature")
    if signature_text is None or signature_text == "":
        raise BundleUnsigned("the bundle carries no signature")
    unknown = set(fields) - set(FIELDS)
    missing = set(FIELDS) - set(fields)
    if unknown or missing:
        raise BundleMalformed(
            f"unexpected fields {sorted(unknown)}"
            if unknown
            else f"missing fields {sorted(missing)}"
        )
    got_kind, version = fields["kind"], fields["version"]
    if got_kind not in KINDS:
        raise BundleMalformed("unknown bundle kind")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise BundleMalformed("the version must be a positive integer")
    created_at = fields["created_at"]
    if not isinstance(created_at, str) or not _is_iso8601(created_at):
        raise BundleMalformed("created_at is not an ISO 8601 time")
    sha = fields["sha256"]
    if not isinstance(sha, str) or not _HEX64.match(sha):
        raise BundleMalformed("sha256 is not a hex digest")
    key_id = fields["key_id"]
    if not isinstance(key_id, str) or not _KEY_ID.match(key_id):
        raise BundleMalformed("key_id is not a key id")
    if not isinstance(signature_text, str) or not _B64URL.match(signature_text):
        raise BundleMalformed("the signature is not base64url")
    payload_text = fields["payload"]
    if not isinstance(payload_text, str) or not _B64.match(payload_text) or len(payload_text) % 4:
        raise BundleMalformed("the payload is not base64")
    keys = {key_id_of(k): k for k in trusted_keys}
    public_key = keys.get(key_id)
    if public_key is None:
        raise BundleUnknownKey(f"signed with key {key_id}, which this kiosk does not trust")
    try:
        signature = base64.urlsafe_b64decode(signature_text + "=" * (-len(signature_text) % 4))
        public_key.verify(signature, canonical_bytes(fields))
    except (InvalidSignature, ValueError, binascii.Error):
        raise BundleTampered("the signature does not verify") from None
    payload = base64.b64decode(payload_text, validate=True)
    if hashlib.sha256(payload).hexdigest() != sha:
        # Only reachable when the signer itself wrote a wrong hash: still never install it.
        raise BundleTampered("the payload does not match its sha256")
    if kind is not None and got_kind != kind:
        raise BundleWrongKind(f"a {got_kind} bundle was sent as {kind}")
    return InstalledBundle(got_kind, version, created_at, sha, key_id, payload), fields


def _as_dict(bundle: dict | bytes | str) -> dict:
    if isinstance(bundle, (bytes, bytearray, memoryview, str)):
        if len(bundle) > MAX_BUNDLE_BYTES:
            raise BundleMalformed("the bundle is too large")
        try:
            bundle = json.loads(bundle)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BundleMalformed("the bundle is not JSON") from None
    if not isinstance(bundle, dict):
        raise BundleMalformed("the bundle is not a JSON object")
    return bundle


def _is_iso8601(text: str) -> bool:
    if len(text) > 40:
        return False
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


class BundleStore:
    """The kiosk's installed bundles under `directory` (private, 0700/0600)."""

    def __init__(self, directory: Path | str, trusted_keys: Sequence[Ed25519PublicKey]) -> None:
        self.directory = Path(directory)
        self.trusted_keys = list(trusted_keys)
        self._lock = threading.Lock()

    def installed(self, kind: str) -> InstalledBundle | None:
        """The installed bundle of `kind`, re-verified (a file edited on disk is refused)."""
        return self._load(kind, "current.json")

    def previous(self, kind: str) -> InstalledBundle | None:
        return self._load(kind, "previous.json")

    def rollback_available(self, kind: str) -> bool:
        """True when an earlier good bundle of `kind` is kept and can be reinstalled."""
        return (self._kind_dir(kind) / "previous.json").is_file()

    def highest_version(self, kind: str) -> int:
        """The highest version ever installed: anything at or below it is refused."""
        with self._lock:
            return self._floor(kind)

    def apply(self, bundle: dict | bytes | str, *, kind: str | None = None) -> InstalledBundle:
        """Verify and install a bundle; the installed one becomes `previous`.

        Raises `BundleMalformed`, `BundleUnsigned`, `BundleUnknownKey`, `BundleTampered`,
        `BundleWrongKind` (when `kind` is given and differs) or `BundleRollback` (version not
        above every version installed before). Nothing changes on disk when it raises.
        """
        parsed, fields = verify_bundle(bundle, self.trusted_keys, kind=kind)
        with self._lock:
            floor = self._floor(parsed.kind)
            if parsed.version <= floor:
                raise BundleRollback(
                    f"{parsed.kind} v{parsed.version} is not newer than v{floor}, "
                    "already installed here"
                )
            kind_dir = self._kind_dir(parsed.kind)
            try:
                ensure_private_dir(self.directory)
                ensure_private_dir(kind_dir)
                current = kind_dir / "current.json"
                if current.is_file():
                    # Copy, then replace: at every instant current.json is a whole bundle.
                    write_private(kind_dir / "previous.json", read_private(current))
                write_private(current, encode_bundle(fields))
                write_private(kind_dir / "highest", f"{parsed.version}\n")
            except OSError as exc:
                raise BundleStoreError(f"cannot install the bundle ({exc})") from None
            return parsed

    def rollback(self, kind: str) -> InstalledBundle:
        """Reinstall the previous bundle (ops: the new config breaks something). `highest`
        stays, so the version rolled back from cannot be re-applied; publish a newer one."""
        with self._lock:
            kind_dir = self._kind_dir(kind)
            previous = self._load(kind, "previous.json")
            if previous is None:
                raise BundleStoreError(f"no earlier {kind} bundle is kept")
            try:
                write_private(kind_dir / "current.json", read_private(kind_dir / "previous.json"))
                (kind_dir / "previous.json").unlink()
            except OSError as exc:
                raise BundleStoreError(f"cannot roll back ({exc})") from None
            return previous

    # -- internals ---------------------------------------------------------------------------

    def _kind_dir(self, kind: str) -> Path:
        if kind not in KINDS:
            raise BundleMalformed("unknown bundle kind")
        return self.directory / kind

    def _load(self, kind: str, name: str) -> InstalledBundle | None:
        path = self._kind_dir(kind) / name
        try:
            data = read_private(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BundleStoreError(f"cannot read {path} ({exc})") from None
        parsed, _ = verify_bundle(data, self.trusted_keys, kind=kind)
        return parsed

    def _floor(self, kind: str) -> int:
        """max(highest, current version): either file may be the newer one after a crash."""
        kind_dir = self._kind_dir(kind)
        floor = 0
        try:
            text = (kind_dir / "highest").read_text("ascii").strip()
            floor = int(text) if text.isdigit() else 0
        except (OSError, UnicodeDecodeError):
            pass
        try:
            # Not re-verified: only the version matters here, and a corrupt file must not
            # lower the floor.
            current = json.loads(read_private(kind_dir / "current.json"))
            version = current.get("version") if isinstance(current, dict) else None
            if isinstance(version, int) and not isinstance(version, bool):
                floor = max(floor, version)
        except (OSError, ValueError):
            pass
        return floor
