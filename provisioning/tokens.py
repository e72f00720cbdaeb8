"""One-time enrolment tokens: what ops hand to the engineer installing a kiosk.

A token is `kenr_` + 32 base32 characters (160 random bits), shown once when ops create it
and typed on the kiosk (`kiosk provision --token ...`). Base32 because it is easy to read
aloud and type: one case, and no 0, 1, 8 or 9 to mistake for o, l, b or g. The server stores only its
SHA-256 (with the site, expiry and `used_at`), so a leaked database enrols nothing; 160 bits
make a plain hash enough (nothing to brute-force, unlike a password).

Typing is forgiving: case, spaces and hyphens (ops may read the token out in groups) do not
matter; `token_hash` normalises before hashing.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

TOKEN_PREFIX = "kenr_"
TOKEN_BITS = 160
TOKEN_CHARS = TOKEN_BITS // 5  # 32 base32 characters, no padding
DEFAULT_TOKEN_TTL_S = 24 * 3600  # a suggestion for the server: one working day to install
_BODY = re.compile(r"^[a-z2-7]{32}$")
_IGNORED = re.compile(r"[\s-]+")


def new_enrolment_token() -> tuple[str, str]:
    """A fresh token and the hash to store: `(token shown once to ops, sha256 hex)`."""
    body = base64.b32encode(secrets.token_bytes(TOKEN_BITS // 8)).decode("ascii").lower()
    assert len(body) == TOKEN_CHARS
    token = TOKEN_PREFIX + body
    return token, token_hash(token)


def normalise_token(token: str) -> str | None:
    """The canonical form of a typed token, or None when it is not a token at all."""
    if not isinstance(token, str) or len(token) > 200:
        return None
    text = _IGNORED.sub("", token).lower()
    if not text.startswith(TOKEN_PREFIX):
        return None
    body = text[len(TOKEN_PREFIX):]
    return TOKEN_PREFIX + body if _BODY.match(body) else None


def looks_like_token(s: object) -> bool:
    """True when `s` has the shape of an enrolment token (never raises)."""
    return isinstance(s, str) and normalise_token(s) is not None


def token_hash(token: str) -> str:
    """SHA-256 hex of the normalised token: what the server stores and looks up.

    Something that is not token-shaped is hashed as given (it then matches nothing); check
    `looks_like_token` first to answer such input early.
    """
    canonical = normalise_token(token)
    text = canonical if canonical is not None else str(token)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
