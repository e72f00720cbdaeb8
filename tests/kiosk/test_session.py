import itertools

import pytest

from kiosk.session import (
    _MOVES,
    CITIZEN_STATES,
    EndReason,
    InvalidTransition,
    SessionData,
    SessionMachine,
    State,
    Timing,
)

TIMING = Timing(idle_s=60, warning_s=15, hard_cap_s=900, elderly_factor=2)
JOURNEY = [
    State.IDENTIFY,
    State.CATALOGUE,
    State.ITEM_STEPS,
    State.CONFIRM,
    State.WORKING,
    State.RESULT,
    State.RATING,
]


@pytest.fixture
def machine(clock):
    m = SessionMachine(TIMING, clock=clock)
    m.events = []
    m.wipes = 0

    def count_wipe():
        m.wipes += 1

    m.subscribe(m.events.append)
    m.on_wipe(count_wipe)
    return m


def walk_to(machine, target):
    machine.start()
    for state in JOURNEY[1 : JOURNEY.index(target) + 1]:
        machine.move(state)


def fill(machine):
    s = machine.session
    s.identity = {"name": "张三"}
    s.item_id = "ssc_certificate"
    s.form["phone"] = "13812345678"
    s.documents.append(b"%PDF-1.7 certificate")
    s.result = {"case": "JS-1"}
    return s


def assert_wiped(machine, session):
    assert machine.session is None
    assert session.identity is None and session.item_id is None and session.result is None
    assert session.form == {} and session.documents == []


def test_starts_in_attract_with_nobody(machine):
    assert machine.state is State.ATTRACT and machine.session is None
    assert machine.countdown() is None and machine.idle_deadline() is None


def test_happy_path_through_every_state(machine):
    walk_to(machine, State.RATING)
    assert [e.current for e in machine.events] == JOURNEY
    session = fill(machine)
    machine.end(EndReason.COMPLETED)
    assert machine.state is State.ATTRACT
    assert machine.events[-1].end_reason is EndReason.COMPLETED
    assert machine.wipes == 1
    assert_wiped(machine, session)


def test_each_session_is_new(machine):
    machine.start()
    first = machine.session
    machine.end(EndReason.CANCELLED)
    machine.start()
    assert machine.session is not first and machine.session.number == first.number + 1


@pytest.mark.parametrize("source, target", list(itertools.product(State, State)))
def test_every_move_outside_the_table_is_refused(machine, source, target):
    machine._state = source  # place the machine directly: this test is about the table
    if source is not State.ATTRACT:
        machine._session = SessionData(number=1, started_at=0)
    if target in _MOVES[source]:
        machine.move(target)
        assert machine.state is target
    else:
        with pytest.raises(InvalidTransition):
            machine.move(target)
        assert machine.state is source


@pytest.mark.parametrize("state", sorted(CITIZEN_STATES))
def test_cancel_from_every_citizen_state_wipes(machine, state):
    walk_to(machine, state)
    session = fill(machine)
    machine.end(EndReason.CANCELLED)
    assert machine.state is State.ATTRACT and machine.wipes == 1
    assert_wiped(machine, session)


@pytest.mark.parametrize("state", [State.ATTRACT, State.OUT_OF_SERVICE, State.MAINTENANCE])
def test_end_outside_a_session_is_refused(machine, state):
    if state is State.OUT_OF_SERVICE:
        machine.take_out_of_service("remote")
    elif state is State.MAINTENANCE:
        machine.enter_maintenance()
    with pytest.raises(InvalidTransition):
        machine.end()


# -- idle timeout and countdown ----------------------------------------------------------


@pytest.mark.parametrize("state", sorted(CITIZEN_STATES - {State.WORKING}))
def test_idle_timeout_from_every_interactive_state(machine, clock, state):
    walk_to(machine, state)
    session = fill(machine)
    clock.advance(59.9)
    machine.tick()
    assert machine.countdown() is None and machine.state is state
    clock.advance(0.2)  # 60.1 s idle: warning shows 15 s minus 0.1
    assert machine.countdown() == pytest.approx(14.9)
    clock.advance(14.8)
    machine.tick()
    assert machine.state is state and machine.countdown() == pytest.approx(0.1)
    clock.advance(0.1)
    machine.tick()
    assert machine.state is State.ATTRACT
    assert machine.events[-1].end_reason is EndReason.IDLE_TIMEOUT
    assert_wiped(machine, session)


def test_activity_during_the_warning_restarts_the_timer(machine, clock):
    machine.start()
    clock.advance(70)
    assert machine.countdown() == pytest.approx(5)
    machine.activity()
    assert machine.countdown() is None
    clock.advance(74)
    machine.tick()
    assert machine.state is State.IDENTIFY
    clock.advance(1)
    machine.tick()
    assert machine.state is State.ATTRACT


def test_no_idle_timeout_while_working(machine, clock):
    walk_to(machine, State.WORKING)
    clock.advance(500)
    machine.tick()
    assert machine.state is State.WORKING and machine.countdown() is None
    machine.move(State.RESULT)  # moving is activity: the citizen gets a full idle period
    clock.advance(74)
    machine.tick()
    assert machine.state is State.RESULT


def test_moves_count_as_activity(machine, clock):
    machine.start()
    clock.advance(50)
    machine.move(State.CATALOGUE)
    clock.advance(50)
    machine.tick()
    assert machine.countdown() is None and machine.state is State.CATALOGUE


def test_elderly_mode_doubles_every_limit(machine, clock):
    machine.set_elderly(True)
    assert machine.timing == Timing(120, 30, 1800, 2)
    machine.start()
    clock.advance(119)
    assert machine.countdown() is None
    clock.advance(2)
    assert machine.countdown() == pytest.approx(29)
    clock.advance(28.9)
    machine.tick()
    assert machine.state is State.IDENTIFY
    clock.advance(0.2)
    machine.tick()
    assert machine.state is State.ATTRACT


def test_switching_elderly_mode_mid_session_keeps_idle_time(machine, clock):
    machine.start()
    clock.advance(70)  # 5 s left in normal mode
    machine.set_elderly(True)  # now 120 + 30: 80 s left, no warning
    assert machine.countdown() is None
    assert machine.idle_deadline() - clock() == pytest.approx(80)


# -- hard cap ----------------------------------------------------------------------------


def test_hard_cap_ends_even_an_active_session(machine, clock):
    machine.start()
    session = fill(machine)
    for _ in range(30):  # the citizen keeps touching
        clock.advance(30)
        machine.activity()
        machine.tick()
    assert machine.state is State.ATTRACT
    assert machine.events[-1].end_reason is EndReason.HARD_CAP
    assert_wiped(machine, session)


def test_hard_cap_waits_for_work_in_progress(machine, clock):
    walk_to(machine, State.WORKING)
    clock.advance(950)
    machine.tick()
    assert machine.state is State.WORKING
    machine.move(State.RESULT)
    machine.tick()
    assert machine.state is State.ATTRACT
    assert machine.events[-1].end_reason is EndReason.HARD_CAP


def test_hard_cap_doubles_in_elderly_mode(machine, clock):
    machine.set_elderly(True)
    machine.start()
    for _ in range(59):
        clock.advance(30)
        machine.activity()
        machine.tick()
    assert machine.state is State.IDENTIFY  # 1770 s < 1800 s
    clock.advance(30)
    machine.tick()
    assert machine.state is State.ATTRACT


def test_tick_in_attract_does_nothing(machine, clock):
    clock.advance(10_000)
    machine.tick()
    assert machine.state is State.ATTRACT and machine.events == []


# -- out of service and maintenance -------------------------------------------------------


def test_out_of_service_from_attract_is_immediate(machine):
    machine.take_out_of_service("printer")
    assert machine.state is State.OUT_OF_SERVICE
    assert machine.out_of_service_reason == "printer"
    with pytest.raises(InvalidTransition):
        machine.start()
    machine.return_to_service()
    assert machine.state is State.ATTRACT and machine.out_of_service_reason is None


def test_a_new_out_of_service_reason_is_announced(machine):
    machine.take_out_of_service("printer")
    machine.take_out_of_service("network")
    assert machine.events[-1].previous is State.OUT_OF_SERVICE
    assert machine.events[-1].current is State.OUT_OF_SERVICE
    assert machine.out_of_service_reason == "network"


def test_out_of_service_waits_for_the_citizen(machine):
    walk_to(machine, State.CONFIRM)
    machine.take_out_of_service("remote")
    assert machine.state is State.CONFIRM  # they may finish
    machine.move(State.WORKING)
    machine.move(State.RESULT)
    session = fill(machine)
    machine.end()
    assert machine.state is State.OUT_OF_SERVICE
    assert_wiped(machine, session)


def test_forced_out_of_service_wipes_at_once(machine):
    walk_to(machine, State.ITEM_STEPS)
    session = fill(machine)
    machine.take_out_of_service("device", force=True)
    assert machine.state is State.OUT_OF_SERVICE
    assert machine.events[-1].end_reason is EndReason.OUT_OF_SERVICE
    assert_wiped(machine, session)


def test_timeout_while_out_of_service_is_pending_lands_out_of_service(machine, clock):
    machine.start()
    machine.take_out_of_service("network")
    clock.advance(76)
    machine.tick()
    assert machine.state is State.OUT_OF_SERVICE


def test_back_in_service_before_the_citizen_leaves(machine):
    machine.start()
    machine.take_out_of_service("remote")
    machine.return_to_service()
    machine.end()
    assert machine.state is State.ATTRACT


def test_maintenance_ends_a_session_and_returns_to_the_resting_state(machine):
    walk_to(machine, State.CATALOGUE)
    session = fill(machine)
    machine.enter_maintenance()
    assert machine.state is State.MAINTENANCE
    assert machine.events[-1].current is State.MAINTENANCE
    assert any(e.end_reason is EndReason.MAINTENANCE for e in machine.events)
    assert_wiped(machine, session)
    machine.leave_maintenance()
    assert machine.state is State.ATTRACT

    machine.take_out_of_service("maintenance")
    machine.enter_maintenance()
    machine.leave_maintenance()
    assert machine.state is State.OUT_OF_SERVICE


def test_leave_maintenance_only_from_maintenance(machine):
    with pytest.raises(InvalidTransition):
        machine.leave_maintenance()


# -- wipe robustness ----------------------------------------------------------------------


def test_a_failing_wipe_listener_does_not_keep_data_or_block_the_others(machine):
    called = []

    def broken():
        raise RuntimeError("image cache busy")

    machine.on_wipe(broken)
    machine.on_wipe(lambda: called.append(True))
    machine.start()
    session = fill(machine)
    with pytest.raises(ExceptionGroup):
        machine.end()
    assert called == [True]
    assert machine.state is State.ATTRACT
    assert_wiped(machine, session)


def test_unsubscribe_is_idempotent(machine):
    events = []
    unsubscribe = machine.subscribe(events.append)
    unsubscribe()
    unsubscribe()
    machine.start()
    assert events == []
