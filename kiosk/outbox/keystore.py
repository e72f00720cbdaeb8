"""The outbox's key store: 256-bit AES keys in a private directory, one file per key.

Minimal on purpose (a later hardening issue moves keys into the device's secure storage):
each key is `<key_id>.key` (32 raw bytes, mode 0600) and the file `current` names the key
new records are sealed with. Writes go to a temporary file, are fsynced and renamed into
place, and the directory is fsynced, so a crash or power cut leaves either the old or the new
state, never a half-written key or a `current` that names a missing key.

Old keys stay until nothing references them: the outbox's `rotate()` re-encrypts pending
records under the new key first and only then retires keys no record uses.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from pathlib import Path

KEY_BYTES = 32  # AES-256
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")  # key ids come back from the database: never a path
_CURRENT = "current"


class KeystoreError(Exception):
    """The key store cannot be read or written. Never carries key material."""


class UnknownKey(KeystoreError, LookupError):
    """No key with this id: never created here, retired, or not a key id at all."""


class Keystore:
    """Keys in `directory` (created 0700). Thread-safe; keys are cached after first read."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._cache: dict[str, bytes] = {}

    # -- reading ---------------------------------------------------------------------------

    def current(self) -> tuple[str, bytes]:
        """The key new records are sealed with; the first call on an empty store creates it."""
        with self._lock:
            key_id = self._read_current()
            if key_id is None:
                key_id = self._create_key()
                self._write_current(key_id)
            return key_id, self._load(key_id)

    def get(self, key_id: str) -> bytes:
        with self._lock:
            return self._load(key_id)

    def key_ids(self) -> list[str]:
        """Every key still on disk, current or not."""
        with self._lock:
            if not self.directory.is_dir():
                return []
            return sorted(
                p.stem for p in self.directory.glob("*.key") if _KEY_ID.match(p.stem)
            )

    # -- changing --------------------------------------------------------------------------

    def rotate(self) -> str:
        """Create a new key and make it current. Old keys stay readable."""
        with self._lock:
            key_id = self._create_key()
            self._write_current(key_id)
            return key_id

    def retire(self, key_id: str) -> None:
        """Delete a key no record needs any more. The current key cannot be retired."""
        with self._lock:
            if not _KEY_ID.match(key_id):
                raise UnknownKey("not a key id")
            if key_id == self._read_current():
                raise KeystoreError("the current key cannot be retired")
            self._cache.pop(key_id, None)
            try:
                (self.directory / f"{key_id}.key").unlink()
            except FileNotFoundError:
                return
            except OSError as exc:
                raise KeystoreError(f"cannot retire key ({exc.strerror})") from None
            self._sync_directory()

    # -- internals (called with the lock held) ---------------------------------------------

    def _load(self, key_id: str) -> bytes:
        if key_id in self._cache:
            return self._cache[key_id]
        if not _KEY_ID.match(key_id):
            raise UnknownKey("not a key id")
        try:
            key = (self.directory / f"{key_id}.key").read_bytes()
        except FileNotFoundError:
            raise UnknownKey(f"key {key_id} is not in the store") from None
        except OSError as exc:
            raise KeystoreError(f"cannot read key {key_id} ({exc.strerror})") from None
        if len(key) != KEY_BYTES:
            raise KeystoreError(f"key {key_id} has the wrong length")
        self._cache[key_id] = key
        return key

    def _read_current(self) -> str | None:
        try:
            key_id = (self.directory / _CURRENT).read_text("ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreError(f"cannot read the current key id ({exc})") from None
        if not _KEY_ID.match(key_id):
            raise KeystoreError("the current key id is malformed")
        return key_id

    def _create_key(self) -> str:
        self._ensure_directory()
        key_id = secrets.token_hex(8)
        key = secrets.token_bytes(KEY_BYTES)
        self._write_atomically(f"{key_id}.key", key)
        self._cache[key_id] = key
        return key_id

    def _write_current(self, key_id: str) -> None:
        self._write_atomically(_CURRENT, key_id.encode("ascii"))

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise KeystoreError(f"cannot create the key directory ({exc.strerror})") from None

    def _write_atomically(self, name: str, data: bytes) -> None:
        target = self.directory / name
        tmp = self.directory / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            # O_EXCL + 0600 from the start: the key is never readable by others, not even
            # for the instant between create and chmod. fchmod undoes a permissive umask.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
            self._sync_directory()
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise KeystoreError(f"cannot write {name} ({exc.strerror})") from None

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
