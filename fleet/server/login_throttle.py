"""Failed ops logins slow down guessing: per user name, shared through the database.

argon2 makes each guess cost the server ~0.25 s, but nothing stopped an attacker from
guessing all day. Now the first `FREE_FAILURES` wrong passwords for a name cost nothing more;
each further one locks the name for twice as long as the last (30 s, 60 s, ... up to
`MAX_LOCK_S`), so a steady guesser gets about four guesses an hour. The count is forgotten
after `WINDOW_S` without a failure. While a name is locked every attempt for it, right
password or not, is refused without checking the password (429 with Retry-After on the API,
the same message on the dashboard), so a guess costs the attacker time and the server no
hashing. A successful login clears the name. Unknown names are counted like known ones, so
the answers do not reveal which names exist.

The counter lives in the database (`login_failures`), so the limit holds across server
processes and hosts. It is a slowdown, not an account lock-out: a locked ops user waits at
most `MAX_LOCK_S` after the attacker stops. Per-address limits are left to the load balancer,
which sees the client's address (this server sees the balancer's).
"""

from __future__ import annotations

import sqlalchemy as sa

from fleet.server.db import Database, upsert
from fleet.server.schema import login_failures

FREE_FAILURES = 5
WINDOW_S = 15 * 60.0
FIRST_LOCK_S = 30.0
MAX_LOCK_S = 15 * 60.0
MAX_NAME = 64


def _key(name: str) -> str:
    return name.strip().lower()[:MAX_NAME]


def lock_for(failures: int) -> float:
    """How long the name is locked after its `failures`-th failure in a window."""
    over = failures - FREE_FAILURES
    if over <= 0:
        return 0.0
    return min(MAX_LOCK_S, FIRST_LOCK_S * 2 ** min(over - 1, 20))


class LoginThrottle:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def retry_after(self, name: str, now: float) -> float:
        """Seconds until `name` may try again (0: now)."""
        async with self._db.engine.connect() as conn:
            locked_until = await conn.scalar(sa.select(login_failures.c.locked_until)
                                             .where(login_failures.c.name == _key(name)))
        return max(0.0, (locked_until or 0.0) - now)

    async def failed(self, name: str, now: float) -> float:
        """Count a wrong password for `name`; returns how long it is now locked (0: not)."""
        key = _key(name)
        async with self._db.engine.begin() as conn:
            row = (await conn.execute(sa.select(login_failures.c.failures,
                                                login_failures.c.last_at)
                                      .where(login_failures.c.name == key))).first()
            failures = 1 if row is None or now - row.last_at > WINDOW_S else row.failures + 1
            lock = lock_for(failures)
            await conn.execute(
                upsert(self._db, login_failures, ["name"],
                       replace=("failures", "last_at", "locked_until")),
                [{"name": key, "failures": failures, "last_at": now,
                  "locked_until": now + lock}])
            # Names nobody tried for a window (and not locked) are forgotten here, so junk
            # names cannot grow the table without bound.
            await conn.execute(login_failures.delete().where(
                login_failures.c.last_at < now - WINDOW_S,
                login_failures.c.locked_until < now))
        return lock

    async def succeeded(self, name: str) -> None:
        async with self._db.engine.begin() as conn:
            await conn.execute(login_failures.delete().where(login_failures.c.name == _key(name)))


def retry_text(seconds: float) -> tuple[str, str]:
    """The wait, said plainly: (Chinese, English)."""
    if seconds < 60:
        n = max(1, round(seconds))
        return f"{n} 秒", f"{n} s"
    n = -(-int(seconds) // 60)
    return f"{n} 分钟", f"{n} min"
