"""Signed requests to the fleet server, one at a time, with every answer checked.

The server refuses a request counter that is not above the last one it saw, so requests go
out strictly one after another (a lock around "take a counter, send"). Failures are sorted
by what they mean for the heartbeat that was sent:

- `NotDelivered`: it certainly did not reach the server (no connection);
- `Refused`: the server answered 4xx: it stored nothing;
- `Uncertain`: it may have been stored (timeout, dropped connection, 5xx, bad answer).

Requests go in a device session (provisioning/sessions.py) when the server offers them: one
request signed with the device key opens it, later ones carry an HMAC, which costs the server
a fraction of a signature check. The session lives in this object only, never on disk; it is
renewed when less than `SESSION_RENEW_S` is left, and when the server answers `bad_session`
or `session_expired` (its ticket key changed, or clocks disagree) a new one is opened and that
request sent once more. A server without the session endpoint (404) gets signed requests, and
is asked again after `SESSION_RETRY_S`. Every request, the handshake included, takes the next
value of the persisted request counter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl as ssl_module
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fleet import wire
from provisioning.sessions import SESSION_PATH, DeviceSession
from provisioning.signing import BAD_SESSION, SESSION_EXPIRED

_log = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)

HEARTBEAT_PATH = "/api/v1/device/heartbeat"
RESULT_PATH = "/api/v1/device/commands/{command_id}/result"
MAX_ANSWER_BYTES = 1024 * 1024
SESSION_RENEW_S = 300.0  # open a new session when the current one has less left than this
SESSION_RETRY_S = 3600.0  # a server without sessions is asked again after this long
_RENEW_CODES = (BAD_SESSION, SESSION_EXPIRED)


class ServerError(Exception):
    def __init__(self, detail: str, *, status: int | None = None, code: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code


class NotDelivered(ServerError):
    pass


class Refused(ServerError):
    pass


class Uncertain(ServerError):
    pass


@dataclass
class ClientStats:
    signed: int = 0  # requests signed with the device key (handshakes included)
    in_session: int = 0  # requests sent with a session MAC
    sessions_opened: int = 0
    sessions_refused: int = 0  # bad_session / session_expired answers (each retried once)


class FleetClient:
    """`identity`: provisioning.device.DeviceIdentity (anything with `device_id` and `sign`;
    sessions need its `session_offer` too); `counter`: provisioning.signing RequestCounter.
    `sessions=False` signs every request with the device key."""

    def __init__(
        self,
        identity,
        counter,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        ssl: ssl_module.SSLContext | None = None,
        rng: random.Random | None = None,
        sessions: bool = True,
    ) -> None:
        self.identity = identity
        self.counter = counter
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._ssl = ssl
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None
        self._use_sessions = sessions and callable(getattr(identity, "session_offer", None))
        self._device_session: DeviceSession | None = None
        self._no_sessions_until = 0.0
        self.stats = ClientStats()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    ssl=self._ssl if self._ssl is not None else True, limit=1
                )
            )
        return self._session

    async def _once(
        self, method: str, path: str, body: bytes, timeout_s: float
    ) -> tuple[int, bytes]:
        async with self._lock:
            session = await self._current_session(timeout_s)
            status, raw = await self._send(method, path, body, timeout_s, session)
            if session is None or status != 401 or _error_code(raw) not in _RENEW_CODES:
                return status, raw
            # The server no longer accepts the session (its ticket key changed, or it
            # expired early by our clock): a new one, and this request once more.
            self.stats.sessions_refused += 1
            _log.info("%s: session refused (%s); opening a new one", path, _error_code(raw))
            self._device_session = None
            session = await self._current_session(timeout_s)
            status, raw = await self._send(method, path, body, timeout_s, session)
            if session is not None and status == 401 and _error_code(raw) in _RENEW_CODES:
                # A session refused as soon as it was opened: the server processes do not
                # share one ticket key. Signed requests work regardless; try again later.
                _log.warning("a new session was refused at once; signing each request for "
                             "%.0f s (do the fleet servers share one ticket key?)",
                             SESSION_RETRY_S)
                self._device_session = None
                self._no_sessions_until = time.time() + SESSION_RETRY_S
            return status, raw

    async def _current_session(self, timeout_s: float) -> DeviceSession | None:
        """The session to send the next request in, opening one if needed; None: sign the
        request with the device key. Raises NotDelivered when the handshake got no answer
        (the request itself has not gone out) and Refused when the server refuses the kiosk
        itself (revoked, replayed counter, clock): the request would be refused alike."""
        if not self._use_sessions:
            return None
        now = time.time()
        current = self._device_session
        if current is not None and not current.expires_within(SESSION_RENEW_S, now):
            return current
        self._device_session = None
        if now < self._no_sessions_until:
            return None
        offer = self.identity.session_offer()
        try:
            status, raw = await self._send("POST", SESSION_PATH, offer.body, timeout_s, None)
        except ServerError as exc:
            raise NotDelivered(str(exc), status=exc.status, code=exc.code) from None
        if status == 200:
            try:
                session = offer.accept(wire.DeviceSessionResponse.model_validate_json(raw))
            except (ValidationError, ValueError) as exc:
                _log.warning("%s: unusable answer (%s); signing each request for %.0f s",
                             SESSION_PATH, type(exc).__name__, SESSION_RETRY_S)
                self._no_sessions_until = now + SESSION_RETRY_S
                return None
            self._device_session = session
            self.stats.sessions_opened += 1
            _log.info("device session opened, %.0f s left", session.expires_at - now)
            return session
        if status == 401:
            code = _error_code(raw)
            raise Refused(f"{SESSION_PATH}: HTTP 401 {code}".strip(), status=status, code=code)
        if 400 <= status < 500 and status not in (408, 429):
            # 404: a server from before sessions; other 4xx: it cannot take our offer.
            _log.info("%s: HTTP %d; signing each request (asking again in %.0f s)",
                      SESSION_PATH, status, SESSION_RETRY_S)
            self._no_sessions_until = now + SESSION_RETRY_S
        return None  # 5xx and the like: this request goes signed; the next one tries again

    async def _send(self, method: str, path: str, body: bytes, timeout_s: float,
                    session: DeviceSession | None) -> tuple[int, bytes]:
        counter = await asyncio.to_thread(self.counter.next)
        if session is not None:
            headers = session.sign(method, path, body, counter, time.time())
            self.stats.in_session += 1
        else:
            headers = self.identity.sign(method, path, body, counter, time.time())
            self.stats.signed += 1
        headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._http().request(
                method, self.base_url + path, data=body, headers=headers, timeout=timeout
            ) as answer:
                raw = await answer.content.read(MAX_ANSWER_BYTES + 1)
                if len(raw) > MAX_ANSWER_BYTES:
                    raise Uncertain(
                        f"{path}: answer larger than {MAX_ANSWER_BYTES} bytes",
                        status=answer.status,
                    )
                return answer.status, raw
        except aiohttp.ClientConnectorError as exc:
            raise NotDelivered(f"{path}: cannot connect: {exc.os_error or exc}") from None
        except aiohttp.ConnectionTimeoutError:
            raise NotDelivered(f"{path}: no connection within {timeout_s:.0f}s") from None
        except (TimeoutError, asyncio.TimeoutError):
            raise Uncertain(f"{path}: no answer within {timeout_s:.0f}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Uncertain(f"{path}: {type(exc).__name__}: {exc}") from None

    async def request(
        self,
        method: str,
        path: str,
        body: bytes,
        answer_model: type[T],
        *,
        attempts: int = 3,
        timeout_s: float | None = None,
        deadline_s: float | None = None,
    ) -> T:
        """Send (retrying what may be retried, with backoff and jitter, at most `attempts`
        times and within `deadline_s`), then parse the answer as `answer_model`."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        if deadline_s is None:
            deadline_s = attempts * (timeout_s + 4)
        give_up_at = loop.time() + deadline_s
        uncertain = False
        for attempt in range(1, attempts + 1):
            try:
                left = min(timeout_s, max(0.5, give_up_at - loop.time()))
                status, raw = await self._once(method, path, body, left)
                return self._parse(path, status, raw, answer_model)
            except Refused:
                raise
            except (NotDelivered, Uncertain) as exc:
                uncertain = uncertain or isinstance(exc, Uncertain)
                delay = min(8.0, 0.5 * 2 ** (attempt - 1)) * self._rng.uniform(0.5, 1.5)
                if attempt == attempts or loop.time() + delay >= give_up_at:
                    if uncertain and isinstance(exc, NotDelivered):
                        # An earlier try may have arrived: the outcome as a whole is uncertain.
                        raise Uncertain(str(exc), status=exc.status, code=exc.code) from None
                    raise
                _log.info("%s; retry %d/%d in %.1f s", exc, attempt, attempts - 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _parse(path: str, status: int, raw: bytes, answer_model: type[T]) -> T:
        if 200 <= status < 300:
            try:
                return answer_model.model_validate_json(raw)
            except ValidationError as exc:
                raise Uncertain(
                    f"{path}: HTTP {status} but not a {answer_model.__name__}: "
                    + exc.errors()[0]["msg"],
                    status=status,
                ) from None
        code, detail = "", ""
        try:
            error = wire.ApiError.model_validate_json(raw)
            code, detail = error.error, error.detail
        except ValidationError:
            try:
                detail = str(json.loads(raw))[:200]
            except ValueError:
                detail = raw[:200].decode("utf-8", "replace")
        text = f"{path}: HTTP {status} {code} {detail}".strip()
        if 400 <= status < 500 and status != 408:
            raise Refused(text, status=status, code=code)
        raise Uncertain(text, status=status, code=code)

    # -- the device endpoints ------------------------------------------------------------
    async def heartbeat(self, body: bytes, *, attempts: int = 3, timeout_s: float | None = None,
                        deadline_s: float | None = None) -> AckEnvelope:
        return await self.request(
            "POST", HEARTBEAT_PATH, body, AckEnvelope,
            attempts=attempts, timeout_s=timeout_s, deadline_s=deadline_s,
        )

    async def post_result(self, result_json: str, command_id: str) -> None:
        await self.request(
            "POST", RESULT_PATH.format(command_id=command_id), result_json.encode("utf-8"), _Any,
            attempts=2,
        )


def _error_code(raw: bytes) -> str:
    try:
        return wire.ApiError.model_validate_json(raw).error
    except ValidationError:
        return ""


class AckEnvelope(BaseModel):
    """wire.HeartbeatAck with its commands left as JSON objects: each is checked on its own
    by the command runner, so one the agent cannot read (a newer command name) is answered
    "rejected" instead of making the whole acknowledgement unreadable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    server_time: float
    interval_s: int
    commands: list[dict[str, Any]] = Field(default_factory=list, max_length=100)
    revoked_credentials: list[wire.Ident] = Field(default_factory=list, max_length=10_000)


class _Any(BaseModel):
    """Any JSON object (the result endpoint's answer carries nothing the agent needs)."""

    model_config = {"extra": "allow"}
