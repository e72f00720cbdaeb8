"""The citizen session state machine: states, idle timeout with a countdown, hard cap, wipe.

Pure Python with an injected monotonic clock; the UI observes it and feeds it touches and
ticks, it never reads the time itself. The flow (DESIGN §3):

    attract → identify → catalogue → item_steps → confirm → working → result → rating → attract

plus `out_of_service` and `maintenance`. Every way back to attract (done, cancelled, idle
timeout, hard cap, out of service) goes through `_end_session`, which wipes the session's
identity, form data and documents and tells every wipe listener to drop what it holds.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Clock = Callable[[], float]


class State(enum.StrEnum):
    ATTRACT = "attract"
    IDENTIFY = "identify"
    CATALOGUE = "catalogue"
    ITEM_STEPS = "item_steps"
    CONFIRM = "confirm"
    WORKING = "working"
    RESULT = "result"
    RATING = "rating"
    OUT_OF_SERVICE = "out_of_service"
    MAINTENANCE = "maintenance"


# States in which a citizen is at the kiosk: the idle timer and the hard cap run.
CITIZEN_STATES = frozenset(
    {
        State.IDENTIFY,
        State.CATALOGUE,
        State.ITEM_STEPS,
        State.CONFIRM,
        State.WORKING,
        State.RESULT,
        State.RATING,
    }
)

# Forward moves a citizen's journey may make. Going back to attract is `end()`, not a move.
_MOVES: dict[State, frozenset[State]] = {
    State.ATTRACT: frozenset({State.IDENTIFY}),
    State.IDENTIFY: frozenset({State.CATALOGUE}),
    State.CATALOGUE: frozenset({State.ITEM_STEPS, State.IDENTIFY}),
    State.ITEM_STEPS: frozenset({State.CONFIRM, State.CATALOGUE}),
    State.CONFIRM: frozenset({State.WORKING, State.ITEM_STEPS, State.CATALOGUE}),
    State.WORKING: frozenset({State.RESULT}),
    State.RESULT: frozenset({State.RATING, State.CATALOGUE}),
    State.RATING: frozenset(),
    State.OUT_OF_SERVICE: frozenset(),
    State.MAINTENANCE: frozenset(),
}


class EndReason(enum.StrEnum):
    COMPLETED = "completed"  # rated, or skipped the rating
    CANCELLED = "cancelled"  # the citizen pressed 退出 / exit
    IDLE_TIMEOUT = "idle_timeout"
    HARD_CAP = "hard_cap"
    OUT_OF_SERVICE = "out_of_service"  # forced out of service mid-session
    MAINTENANCE = "maintenance"


class InvalidTransition(RuntimeError):
    def __init__(self, current: State, target: State) -> None:
        super().__init__(f"no transition {current} → {target}")
        self.current = current
        self.target = target


@dataclass(frozen=True)
class Timing:
    """Time limits in seconds for normal mode; elderly mode multiplies them by `factor`."""

    idle_s: float = 60.0
    warning_s: float = 15.0
    hard_cap_s: float = 900.0
    elderly_factor: float = 2.0

    def scaled(self, elderly: bool) -> Timing:
        f = self.elderly_factor if elderly else 1.0
        return Timing(self.idle_s * f, self.warning_s * f, self.hard_cap_s * f, self.elderly_factor)


@dataclass
class SessionData:
    """What one citizen's visit holds. Dropped whole by the wipe; never reused."""

    number: int
    started_at: float
    identity: Any = None
    item_id: str | None = None
    form: dict[str, Any] = field(default_factory=dict)
    documents: list[Any] = field(default_factory=list)
    result: Any = None

    def clear(self) -> None:
        self.identity = None
        self.item_id = None
        self.form.clear()
        self.documents.clear()
        self.result = None


@dataclass(frozen=True)
class Transition:
    previous: State
    current: State
    end_reason: EndReason | None = None  # set when the move ended a session


def _discard(listeners: list, listener: object) -> None:
    if listener in listeners:  # unsubscribing twice is harmless
        listeners.remove(listener)


Listener = Callable[[Transition], None]
WipeListener = Callable[[], None]


class SessionMachine:
    def __init__(
        self,
        timing: Timing = Timing(),
        *,
        clock: Clock = time.monotonic,
        elderly: bool = False,
    ) -> None:
        self._timing = timing
        self._clock = clock
        self._elderly = elderly
        self._state = State.ATTRACT
        self._numbers = itertools.count(1)
        self._session: SessionData | None = None
        self._last_activity = clock()
        self._out_of_service_reason: str | None = None
        self._listeners: list[Listener] = []
        self._wipe_listeners: list[WipeListener] = []

    # -- observation -------------------------------------------------------------------
    @property
    def state(self) -> State:
        return self._state

    @property
    def session(self) -> SessionData | None:
        """The current citizen's data; None when nobody is at the kiosk."""
        return self._session

    @property
    def elderly(self) -> bool:
        return self._elderly

    @property
    def timing(self) -> Timing:
        """The limits in force now (elderly mode already applied)."""
        return self._timing.scaled(self._elderly)

    @property
    def out_of_service_reason(self) -> str | None:
        """Why the kiosk is (or will be, once the citizen leaves) out of service."""
        return self._out_of_service_reason

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: _discard(self._listeners, listener)

    def on_wipe(self, listener: WipeListener) -> Callable[[], None]:
        """Called at every wipe: drop anything derived from the session (images, caches)."""
        self._wipe_listeners.append(listener)
        return lambda: _discard(self._wipe_listeners, listener)

    def idle_deadline(self) -> float | None:
        """Clock time at which the session times out for inactivity, if a timer runs."""
        if not self._idle_timer_runs():
            return None
        limits = self.timing
        return self._last_activity + limits.idle_s + limits.warning_s

    def idle_for(self) -> float:
        """Seconds since the last activity (any state)."""
        return self._clock() - self._last_activity

    def countdown(self) -> float | None:
        """Seconds left on the visible warning countdown, or None while not warning."""
        deadline = self.idle_deadline()
        if deadline is None:
            return None
        left = deadline - self._clock()
        if left > self.timing.warning_s:
            return None
        return max(0.0, left)

    # -- input ---------------------------------------------------------------------------
    def activity(self) -> None:
        """The citizen did something (touch, card, scan): restart the idle timer."""
        self._last_activity = self._clock()

    def set_elderly(self, elderly: bool) -> None:
        """Elderly mode scales the limits; the time already idle keeps counting."""
        self._elderly = elderly

    def start(self) -> None:
        """A citizen begins (开始办理, a card inserted, a code scanned)."""
        self.move(State.IDENTIFY)

    def move(self, target: State) -> None:
        if target not in _MOVES[self._state]:
            raise InvalidTransition(self._state, target)
        if self._state is State.ATTRACT:
            self._session = SessionData(number=next(self._numbers), started_at=self._clock())
        self.activity()
        self._set_state(target)

    def end(self, reason: EndReason = EndReason.COMPLETED) -> None:
        """The session is over: wipe it and go to attract (or out of service if pending)."""
        if self._state not in CITIZEN_STATES:
            raise InvalidTransition(self._state, State.ATTRACT)
        self._end_session(reason)

    def tick(self) -> None:
        """Check timers; the UI calls this a few times a second."""
        if self._state not in CITIZEN_STATES or self._session is None:
            return
        now = self._clock()
        if self._state is not State.WORKING:
            # The hard cap never cuts a print or a submission in progress; it waits for it.
            cap = self.timing.hard_cap_s
            if now - self._session.started_at >= cap:
                self._end_session(EndReason.HARD_CAP)
                return
        deadline = self.idle_deadline()
        if deadline is not None and now >= deadline:
            self._end_session(EndReason.IDLE_TIMEOUT)

    # -- service control (ops, device faults) -------------------------------------------
    def take_out_of_service(self, reason: str, *, force: bool = False) -> None:
        """Stop taking citizens. A citizen mid-journey finishes first unless `force`."""
        self._out_of_service_reason = reason
        if self._state in (State.ATTRACT, State.OUT_OF_SERVICE):
            self._set_state(State.OUT_OF_SERVICE)  # a new reason is news to observers too
        elif self._state in CITIZEN_STATES and force:
            self._end_session(EndReason.OUT_OF_SERVICE)

    def return_to_service(self) -> None:
        self._out_of_service_reason = None
        if self._state is State.OUT_OF_SERVICE:
            self._set_state(State.ATTRACT)

    def enter_maintenance(self) -> None:
        """An ops engineer opened the maintenance screen (credential already checked)."""
        if self._state in CITIZEN_STATES:
            self._end_session(EndReason.MAINTENANCE)
        if self._state is not State.MAINTENANCE:
            self.activity()
            self._set_state(State.MAINTENANCE)

    def leave_maintenance(self) -> None:
        if self._state is not State.MAINTENANCE:
            raise InvalidTransition(self._state, State.ATTRACT)
        self._set_state(self._resting_state())

    # -- internals -----------------------------------------------------------------------
    def _idle_timer_runs(self) -> bool:
        # While working the kiosk is busy on the citizen's behalf; idleness is not theirs.
        return self._state in CITIZEN_STATES and self._state is not State.WORKING

    def _resting_state(self) -> State:
        return State.OUT_OF_SERVICE if self._out_of_service_reason else State.ATTRACT

    def _end_session(self, reason: EndReason) -> None:
        try:
            self._wipe()
        finally:
            self._set_state(self._resting_state(), end_reason=reason)

    def _wipe(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.clear()
        errors: list[BaseException] = []
        for listener in list(self._wipe_listeners):
            try:
                listener()
            except Exception as exc:  # one failing listener must not keep data alive
                errors.append(exc)
        if errors:
            raise ExceptionGroup("wipe listeners failed", errors)

    def _set_state(self, target: State, end_reason: EndReason | None = None) -> None:
        previous, self._state = self._state, target
        event = Transition(previous, target, end_reason)
        for listener in list(self._listeners):
            listener(event)
