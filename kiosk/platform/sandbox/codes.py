"""The sandbox's dynamic 苏服码: minting and checking code strings, and their life rules.

A code is `SFM1` + a 14-character random nonce + a 14-character MAC, all [0-9A-Z]
(32 characters; the kiosk's log redactor matches `SFM1[0-9A-Z]{20,120}`). The MAC is
HMAC-SHA256 over prefix and nonce with a key made at first start, so a forged or mistyped
code is refused before any lookup. Codes are valid for 60 s and single use; which citizen a
code belongs to, when it was issued and whether it was used live in the store. Pure logic
apart from `load_or_create_key`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
import string
from pathlib import Path

PREFIX = "SFM1"
ALPHABET = string.digits + string.ascii_uppercase
NONCE_LENGTH = 14
MAC_LENGTH = 14
CODE_LENGTH = len(PREFIX) + NONCE_LENGTH + MAC_LENGTH
DEFAULT_TTL_S = 60.0


class CodeStatus(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"


def _base36(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 36)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


class CodeMinter:
    """Mints and checks code strings with one HMAC key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the code key needs at least 16 bytes")
        self._key = key

    def _mac(self, nonce: str) -> str:
        digest = hmac.new(self._key, (PREFIX + nonce).encode("ascii"), hashlib.sha256).digest()
        return _base36(int.from_bytes(digest[:12], "big"), MAC_LENGTH)

    def mint(self) -> str:
        nonce = "".join(secrets.choice(ALPHABET) for _ in range(NONCE_LENGTH))
        return PREFIX + nonce + self._mac(nonce)

    def is_authentic(self, code: str) -> bool:
        """True when the string has the shape and a MAC made with this key."""
        if len(code) != CODE_LENGTH or not code.startswith(PREFIX):
            return False
        body = code[len(PREFIX):]
        if any(c not in ALPHABET for c in body):
            return False
        nonce, mac = body[:NONCE_LENGTH], body[NONCE_LENGTH:]
        return hmac.compare_digest(mac, self._mac(nonce))


def code_hash(code: str) -> str:
    """What the store keeps instead of the code itself."""
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def status_of(issued_at: float, used_at: float | None, now: float, ttl_s: float) -> CodeStatus:
    """A used code is `USED` even once it has also expired: replay is the stronger signal."""
    if used_at is not None:
        return CodeStatus.USED
    if now >= issued_at + ttl_s or now < issued_at - 5:  # 5 s of clock slack backwards
        return CodeStatus.EXPIRED
    return CodeStatus.VALID


def load_or_create_key(path: Path) -> bytes:
    """The HMAC key from the data dir, made (32 random bytes, mode 0600) on first start."""
    if path.exists():
        key = path.read_bytes()
        if len(key) >= 16:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key
