"""The sandbox platform's SQLite store: citizens, device tokens, 苏服码 codes, scoped
authorisations, issued certificates, cases with their state history, ratings and
idempotency keys.

One connection in WAL mode, used from the event loop's thread: every statement here is a
sub-millisecond local write or indexed read (RECIPES: ~8,600 insert+commit/s), so the
handlers call it directly. Secrets (codes, tokens) are stored as SHA-256 hashes only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.platform.sandbox.seed import SeedCitizen

logger = logging.getLogger("kiosk.platform.sandbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS citizens (
    citizen_id TEXT PRIMARY KEY,
    id_number TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS access_tokens (
    token_hash TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS codes (
    code_hash TEXT PRIMARY KEY,
    citizen_id TEXT NOT NULL REFERENCES citizens(citizen_id),
    issued_at REAL NOT NULL,
    used_at REAL,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS authorizations (
    token_hash TEXT PRIMARY KEY,
    citizen_id TEXT NOT NULL REFERENCES citizens(citizen_id),
    device_id TEXT NOT NULL,
    item_code TEXT NOT NULL,
    certificate_types TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS certificates (
    licence_code TEXT PRIMARY KEY,
    citizen_id TEXT NOT NULL REFERENCES citizens(citizen_id),
    type TEXT NOT NULL,
    issued_on TEXT NOT NULL,
    meta TEXT NOT NULL,
    pdf BLOB NOT NULL,
    sha256 TEXT NOT NULL,
    signature BLOB NOT NULL,
    key_id TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT '',  -- hash of the parameters that shaped it ('' = none)
    UNIQUE (citizen_id, type, issued_on, variant)
);
CREATE TABLE IF NOT EXISTS cases (
    case_number TEXT PRIMARY KEY,
    item_code TEXT NOT NULL,
    item_id TEXT NOT NULL,
    citizen_id TEXT NOT NULL REFERENCES citizens(citizen_id),
    device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    fields TEXT NOT NULL,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS case_events (
    case_number TEXT NOT NULL REFERENCES cases(case_number),
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    at REAL NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (case_number, seq)
);
CREATE TABLE IF NOT EXISTS case_serials (
    day TEXT PRIMARY KEY,
    last INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ratings (
    rating_id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    item_code TEXT NOT NULL,
    case_number TEXT,
    level TEXT NOT NULL,
    code_reporting INTEGER NOT NULL,
    code_gbt INTEGER NOT NULL,
    indicators TEXT NOT NULL,
    reasons TEXT NOT NULL,
    channel TEXT NOT NULL,
    first INTEGER NOT NULL,
    rated_at REAL NOT NULL,
    received_at REAL NOT NULL,
    follow_up_required INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    scope TEXT NOT NULL,
    device_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, device_id, key)
);
"""


@dataclass(frozen=True, repr=False)
class Citizen:
    citizen_id: str
    id_number: str
    name: str
    phone: str
    data: dict[str, Any]

    def __repr__(self) -> str:
        return f"Citizen({self.citizen_id})"


@dataclass(frozen=True)
class CodeRow:
    citizen_id: str
    issued_at: float
    used_at: float | None


@dataclass(frozen=True)
class AuthorizationRow:
    citizen_id: str
    device_id: str
    item_code: str
    certificate_types: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class CertificateRow:
    licence_code: str
    citizen_id: str
    type: str
    issued_on: str
    meta: dict[str, Any]
    pdf: bytes
    sha256: str
    signature: bytes
    key_id: str
    variant: str = ""  # hash of the parameters that shaped it; "" for the standard one


@dataclass(frozen=True)
class CaseRow:
    case_number: str
    item_code: str
    item_id: str
    citizen_id: str
    device_id: str
    state: str
    fields: dict[str, Any]
    received_at: float
    updated_at: float
    history: tuple[tuple[str, float, str], ...]  # (state, at, note)


@dataclass(frozen=True)
class RatingRow:
    rating_id: int
    device_id: str
    item_code: str
    case_number: str | None
    level: str
    code_reporting: int
    code_gbt: int
    indicators: dict[str, str]
    reasons: list[str]
    channel: str
    first: bool
    rated_at: float
    follow_up_required: bool


class IdempotencyConflict(Exception):
    """The key was used before with a different request."""


class SandboxStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._drop_outdated_certificates()
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- citizens ----------------------------------------------------------------------

    def seed(self, citizens: Sequence[SeedCitizen]) -> int:
        """Insert the citizens not yet present; returns how many were added."""
        added = 0
        with self.transaction():
            for c in citizens:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO citizens VALUES (?, ?, ?, ?, ?)",
                    (c.citizen_id, c.id_number, c.name, c.phone,
                     json.dumps(c.data, ensure_ascii=False)),
                )
                added += cursor.rowcount
        return added

    @staticmethod
    def _citizen(row: tuple) -> Citizen:
        return Citizen(row[0], row[1], row[2], row[3], json.loads(row[4]))

    def citizens(self) -> list[Citizen]:
        rows = self._db.execute("SELECT * FROM citizens ORDER BY citizen_id").fetchall()
        return [self._citizen(row) for row in rows]

    def citizen(self, citizen_id: str) -> Citizen | None:
        row = self._db.execute(
            "SELECT * FROM citizens WHERE citizen_id = ?", (citizen_id,)
        ).fetchone()
        return self._citizen(row) if row else None

    def citizen_by_id_number(self, id_number: str) -> Citizen | None:
        row = self._db.execute(
            "SELECT * FROM citizens WHERE id_number = ?", (id_number,)
        ).fetchone()
        return self._citizen(row) if row else None

    # -- device access tokens ----------------------------------------------------------

    def add_access_token(self, token_hash: str, device_id: str, expires_at: float) -> None:
        self._db.execute(
            "INSERT INTO access_tokens VALUES (?, ?, ?)", (token_hash, device_id, expires_at)
        )

    def access_token(self, token_hash: str) -> tuple[str, float] | None:
        row = self._db.execute(
            "SELECT device_id, expires_at FROM access_tokens WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def count_access_tokens(self, device_id: str) -> int:
        return self._db.execute(
            "SELECT count(*) FROM access_tokens WHERE device_id = ?", (device_id,)
        ).fetchone()[0]

    # -- codes ---------------------------------------------------------------------------

    def add_code(self, code_hash: str, citizen_id: str, issued_at: float) -> None:
        self._db.execute(
            "INSERT INTO codes (code_hash, citizen_id, issued_at) VALUES (?, ?, ?)",
            (code_hash, citizen_id, issued_at),
        )

    def code(self, code_hash: str) -> CodeRow | None:
        row = self._db.execute(
            "SELECT citizen_id, issued_at, used_at FROM codes WHERE code_hash = ?",
            (code_hash,),
        ).fetchone()
        return CodeRow(*row) if row else None

    def use_code(self, code_hash: str, at: float, device_id: str) -> bool:
        """Mark the code used; False if it already was (single use, race-free)."""
        cursor = self._db.execute(
            "UPDATE codes SET used_at = ?, used_by = ? WHERE code_hash = ? AND used_at IS NULL",
            (at, device_id, code_hash),
        )
        return cursor.rowcount == 1

    # -- scoped authorisations -----------------------------------------------------------

    def add_authorization(
        self,
        token_hash: str,
        citizen_id: str,
        device_id: str,
        item_code: str,
        certificate_types: Sequence[str],
        expires_at: float,
    ) -> None:
        self._db.execute(
            "INSERT INTO authorizations VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash, citizen_id, device_id, item_code,
             json.dumps(list(certificate_types)), expires_at),
        )

    def authorization(self, token_hash: str) -> AuthorizationRow | None:
        row = self._db.execute(
            "SELECT citizen_id, device_id, item_code, certificate_types, expires_at "
            "FROM authorizations WHERE token_hash = ?",
            (token_hash,),
        ).fetchone()
        if not row:
            return None
        return AuthorizationRow(row[0], row[1], row[2], tuple(json.loads(row[3])), row[4])

    # -- certificates ----------------------------------------------------------------------

    def _drop_outdated_certificates(self) -> None:
        """Databases from before certificates had parameters lack the `variant` column.
        Certificates are generated on demand, so the old table is simply rebuilt."""
        columns = [r[1] for r in self._db.execute("PRAGMA table_info(certificates)")]
        if columns and "variant" not in columns:
            self._db.execute("DROP TABLE certificates")
            logger.info("sandbox: certificate table rebuilt for parameters (old copies dropped)")

    @staticmethod
    def _certificate(row: tuple) -> CertificateRow:
        return CertificateRow(
            row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6], row[7], row[8],
            row[9],
        )

    def certificate(
        self, citizen_id: str, type_: str, issued_on: str, variant: str = ""
    ) -> CertificateRow | None:
        row = self._db.execute(
            "SELECT * FROM certificates WHERE citizen_id = ? AND type = ? AND issued_on = ? "
            "AND variant = ?",
            (citizen_id, type_, issued_on, variant),
        ).fetchone()
        return self._certificate(row) if row else None

    def certificate_by_licence(self, licence_code: str) -> CertificateRow | None:
        row = self._db.execute(
            "SELECT * FROM certificates WHERE licence_code = ?", (licence_code,)
        ).fetchone()
        return self._certificate(row) if row else None

    def add_certificate(self, cert: CertificateRow) -> CertificateRow:
        """Keep a certificate; if the same one was made meanwhile, the first one wins."""
        self._db.execute(
            "INSERT OR IGNORE INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cert.licence_code, cert.citizen_id, cert.type, cert.issued_on,
             json.dumps(cert.meta, ensure_ascii=False), cert.pdf, cert.sha256, cert.signature,
             cert.key_id, cert.variant),
        )
        stored = self.certificate(cert.citizen_id, cert.type, cert.issued_on, cert.variant)
        assert stored is not None
        return stored

    # -- cases ---------------------------------------------------------------------------

    def next_case_serial(self, day: str) -> int:
        """Call inside a transaction."""
        self._db.execute(
            "INSERT INTO case_serials VALUES (?, 1) "
            "ON CONFLICT(day) DO UPDATE SET last = last + 1",
            (day,),
        )
        return self._db.execute("SELECT last FROM case_serials WHERE day = ?", (day,)).fetchone()[0]

    def add_case(
        self,
        case_number: str,
        item_code: str,
        item_id: str,
        citizen_id: str,
        device_id: str,
        state: str,
        fields: dict[str, Any],
        at: float,
        note: str,
    ) -> None:
        """Call inside a transaction."""
        self._db.execute(
            "INSERT INTO cases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (case_number, item_code, item_id, citizen_id, device_id, state,
             json.dumps(fields, ensure_ascii=False), at, at),
        )
        self._db.execute(
            "INSERT INTO case_events VALUES (?, 0, ?, ?, ?)", (case_number, state, at, note)
        )

    def add_case_event(self, case_number: str, state: str, at: float, note: str) -> None:
        with self.transaction():
            seq = self._db.execute(
                "SELECT coalesce(max(seq), -1) + 1 FROM case_events WHERE case_number = ?",
                (case_number,),
            ).fetchone()[0]
            self._db.execute(
                "INSERT INTO case_events VALUES (?, ?, ?, ?, ?)",
                (case_number, seq, state, at, note),
            )
            self._db.execute(
                "UPDATE cases SET state = ?, updated_at = ? WHERE case_number = ?",
                (state, at, case_number),
            )

    def case(self, case_number: str) -> CaseRow | None:
        row = self._db.execute(
            "SELECT * FROM cases WHERE case_number = ?", (case_number,)
        ).fetchone()
        if not row:
            return None
        events = self._db.execute(
            "SELECT state, at, note FROM case_events WHERE case_number = ? ORDER BY seq",
            (case_number,),
        ).fetchall()
        return CaseRow(
            row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8],
            tuple((e[0], e[1], e[2]) for e in events),
        )

    def count_cases(self) -> int:
        return self._db.execute("SELECT count(*) FROM cases").fetchone()[0]

    # -- idempotency -------------------------------------------------------------------------

    def idempotent_result(
        self, scope: str, device_id: str, key: str, request_hash: str
    ) -> str | None:
        """The stored result for this key, None if unused; IdempotencyConflict if the key
        was used with a different request. Call inside a transaction."""
        row = self._db.execute(
            "SELECT request_hash, result FROM idempotency_keys "
            "WHERE scope = ? AND device_id = ? AND key = ?",
            (scope, device_id, key),
        ).fetchone()
        if row is None:
            return None
        if row[0] != request_hash:
            raise IdempotencyConflict(scope)
        return row[1]

    def remember_idempotent(
        self, scope: str, device_id: str, key: str, request_hash: str, result: str, at: float
    ) -> None:
        """Call inside the transaction that made the result."""
        self._db.execute(
            "INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?)",
            (scope, device_id, key, request_hash, result, at),
        )

    # -- ratings -----------------------------------------------------------------------------

    def add_rating(
        self,
        device_id: str,
        item_code: str,
        case_number: str | None,
        level: str,
        code_reporting: int,
        code_gbt: int,
        indicators: dict[str, str],
        reasons: Sequence[str],
        channel: str,
        first: bool,
        rated_at: float,
        received_at: float,
        follow_up_required: bool,
    ) -> int:
        """Call inside a transaction."""
        cursor = self._db.execute(
            "INSERT INTO ratings (device_id, item_code, case_number, level, code_reporting, "
            "code_gbt, indicators, reasons, channel, first, rated_at, received_at, "
            "follow_up_required) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (device_id, item_code, case_number, level, code_reporting, code_gbt,
             json.dumps(indicators), json.dumps(list(reasons)), channel, int(first), rated_at,
             received_at, int(follow_up_required)),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def ratings(self) -> list[RatingRow]:
        rows = self._db.execute(
            "SELECT rating_id, device_id, item_code, case_number, level, code_reporting, "
            "code_gbt, indicators, reasons, channel, first, rated_at, follow_up_required "
            "FROM ratings ORDER BY rating_id"
        ).fetchall()
        return [
            RatingRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]),
                      json.loads(r[8]), r[9], bool(r[10]), r[11], bool(r[12]))
            for r in rows
        ]
