"""Ops users: argon2 password hashes, roles, region scopes, bearer tokens and sessions.

Roles are cumulative: a viewer reads; an operator also acknowledges alerts and issues
commands; an admin also manages users, sites, enrolment tokens and revocation. Region scopes
are GB/T 2260 codes; a scope covers every code it is a prefix of once its trailing zero pairs
are dropped (320200 → "3202" covers 320205; 320000 → "32" covers the whole province). A user
without scopes sees the whole fleet.

The API uses bearer tokens (`POST /api/v1/auth/login`), the dashboard cookie sessions; both
are rows in `api_tokens` holding only the SHA-256 of the secret, so a leaked database logs
nobody in.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from fleet.server.db import Database
from fleet.server.schema import ROLES, api_tokens, users

Role = Literal["viewer", "operator", "admin"]
TokenKind = Literal["bearer", "session"]
ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}
_REGION = re.compile(r"^\d{6}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_hasher = PasswordHasher()
# Verified against when the user does not exist, so a wrong name costs as long as a wrong
# password (no user enumeration by timing).
_DUMMY_HASH = _hasher.hash("not a password")
MIN_PASSWORD_CHARS = 8


class UserError(ValueError):
    """A user that cannot be created as asked (bad name, role, region or password)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def region_prefix(code: str) -> str:
    prefix = code
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return prefix


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: Role
    regions: tuple[str, ...] = ()

    def has_role(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def sees_region(self, region: str) -> bool:
        return not self.regions or any(region.startswith(region_prefix(r)) for r in self.regions)

    def region_clause(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """A WHERE clause limiting `column` (a region code column) to this user's scopes."""
        if not self.regions:
            return sa.true()
        return sa.or_(*(column.startswith(region_prefix(r), autoescape=True)
                        for r in self.regions))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _validate(name: str, password: str | None, role: str, regions: tuple[str, ...]) -> None:
    if not _NAME.match(name):
        raise UserError("bad_name", "user names are 1-64 letters, digits or _ . @ -")
    if role not in ROLES:
        raise UserError("bad_role", f"role must be one of {', '.join(ROLES)}")
    for r in regions:
        if not _REGION.match(r):
            raise UserError("bad_region", f"{r!r} is not a 6-digit GB/T 2260 region code")
    if password is not None and len(password) < MIN_PASSWORD_CHARS:
        raise UserError("weak_password", f"passwords need at least {MIN_PASSWORD_CHARS} characters")


async def add_user(db: Database, name: str, password: str, role: str,
                   regions: tuple[str, ...] | list[str] = (), *, now: float) -> User:
    """Create a user. Raises `UserError` (including `user_exists`)."""
    regions = tuple(regions)
    _validate(name, password, role, regions)
    async with db.engine.begin() as conn:
        exists = await conn.scalar(sa.select(users.c.id).where(users.c.name == name))
        if exists is not None:
            raise UserError("user_exists", f"user {name!r} already exists")
        result = await conn.execute(users.insert().values(
            name=name, password_hash=hash_password(password), role=role,
            regions=" ".join(regions), created_at=now))
        user_id = result.inserted_primary_key[0]
    return User(int(user_id), name, role, regions)  # type: ignore[arg-type]


async def update_user(db: Database, name: str, *, role: str | None = None,
                      regions: tuple[str, ...] | None = None, password: str | None = None,
                      disabled: bool | None = None, now: float) -> User | None:
    async with db.engine.begin() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.name == name))).first()
        if row is None:
            return None
        new_role = role if role is not None else row.role
        new_regions = tuple(regions) if regions is not None else _split(row.regions)
        _validate(name, password, new_role, new_regions)
        values: dict[str, Any] = {"role": new_role, "regions": " ".join(new_regions)}
        if password is not None:
            values["password_hash"] = hash_password(password)
        if disabled is not None:
            values["disabled_at"] = now if disabled else None
        await conn.execute(users.update().where(users.c.id == row.id).values(**values))
        if password is not None or disabled:
            await conn.execute(api_tokens.delete().where(api_tokens.c.user_id == row.id))
    return User(row.id, name, new_role, new_regions)  # type: ignore[arg-type]


async def delete_user(db: Database, name: str) -> bool:
    async with db.engine.begin() as conn:
        uid = await conn.scalar(sa.select(users.c.id).where(users.c.name == name))
        if uid is None:
            return False
        await conn.execute(api_tokens.delete().where(api_tokens.c.user_id == uid))
        await conn.execute(users.delete().where(users.c.id == uid))
    return True


def _split(regions: str) -> tuple[str, ...]:
    return tuple(r for r in regions.split() if r)


def _user(row: Any) -> User:
    return User(row.id, row.name, row.role, _split(row.regions))


async def check_credentials(db: Database, name: str, password: str) -> User | None:
    """The user with this name and password, or None (unknown, wrong password, disabled).
    The dashboard's login form calls this too."""
    async with db.engine.connect() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.name == name))).first()
    if row is None:
        await _verify(_DUMMY_HASH, password)  # the same time as a known name
        return None
    if not await _verify(row.password_hash, password):
        return None
    if row.disabled_at is not None:
        return None
    if _hasher.check_needs_rehash(row.password_hash):
        async with db.engine.begin() as conn:
            await conn.execute(users.update().where(users.c.id == row.id)
                               .values(password_hash=hash_password(password)))
    return _user(row)


# argon2 takes ~0.25 s of CPU and 64 MiB per check: run off the event loop (heartbeats keep
# flowing during a login) and at most two at once per process (a burst of logins cannot take
# the memory). argon2-cffi releases the GIL while it hashes.
_HASHING = threading.BoundedSemaphore(2)


def _verify_blocking(password_hash: str, password: str) -> bool:
    with _HASHING:
        try:
            return bool(_hasher.verify(password_hash, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


async def _verify(password_hash: str, password: str) -> bool:
    return await asyncio.to_thread(_verify_blocking, password_hash, password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


async def issue_token(db: Database, user: User, kind: TokenKind, *, ttl_s: float,
                      now: float) -> tuple[str, float]:
    """A new bearer token or session id for `user`: (secret shown once, expires_at)."""
    token = ("fst_" if kind == "bearer" else "fss_") + secrets.token_urlsafe(32)
    expires_at = now + ttl_s
    async with db.engine.begin() as conn:
        await conn.execute(api_tokens.delete().where(api_tokens.c.expires_at < now))
        await conn.execute(api_tokens.insert().values(
            token_hash=_token_hash(token), user_id=user.id, kind=kind, created_at=now,
            expires_at=expires_at))
    return token, expires_at


async def user_for_token(db: Database, token: str, kind: TokenKind, *, now: float) -> User | None:
    """The user a bearer token or session id belongs to, or None (unknown, expired, disabled)."""
    if not token or len(token) > 200:
        return None
    q = (sa.select(users).join(api_tokens, api_tokens.c.user_id == users.c.id)
         .where(api_tokens.c.token_hash == _token_hash(token), api_tokens.c.kind == kind,
                api_tokens.c.expires_at > now, users.c.disabled_at.is_(None)))
    async with db.engine.connect() as conn:
        row = (await conn.execute(q)).first()
    return _user(row) if row is not None else None


async def revoke_token(db: Database, token: str) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(api_tokens.delete().where(api_tokens.c.token_hash == _token_hash(token)))


async def list_users(db: Database) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(sa.select(users).order_by(users.c.name))).all()
    return [{"name": r.name, "role": r.role, "regions": list(_split(r.regions)),
             "created_at": r.created_at, "disabled": r.disabled_at is not None} for r in rows]
