"""Per-item usage deltas (pure) and the agent's store: the pending heartbeat, the bounded
offline buffer and its summary, command results."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import wire
from fleet.agent.store import AgentStore
from fleet.agent.usage import MAX_ITEMS_PER_HEARTBEAT, clean_items, usage_delta


def item(completed=0, abandoned=0, failed=0, **ratings):
    return {"completed": completed, "abandoned": abandoned, "failed": failed, "ratings": ratings}


def test_delta_against_acknowledged_totals():
    acked = {"tax": item(2, 1, satisfied=1)}
    current = {"tax": item(5, 1, satisfied=3, basic=1), "ssc": item(0, 0, 1)}
    usage, covered = usage_delta(current, acked)
    assert usage == [
        {"item_id": "ssc", "failed": 1},
        {"item_id": "tax", "completed": 3, "ratings": {"satisfied": 2, "basic": 1}},
    ]
    assert covered == current
    for u in usage:
        wire.ItemUsage.model_validate(u)
    assert usage_delta(current, covered)[0] == []  # acknowledged: nothing more to send


def test_more_items_than_a_heartbeat_holds_wait_for_the_next():
    current = {f"item{i:04d}": item(1) for i in range(MAX_ITEMS_PER_HEARTBEAT + 30)}
    first, covered = usage_delta(current, {})
    assert len(first) == MAX_ITEMS_PER_HEARTBEAT
    second, covered = usage_delta(current, covered)
    assert len(second) == 30
    assert usage_delta(current, covered)[0] == []


def test_clean_items_drops_what_is_not_ours():
    raw = {"tax": {"completed": 2, "failed": -1, "ratings": {"basic": 1, "awful": 9}},
           "bad id!": item(1), "x": "nope"}
    assert clean_items(raw) == {"tax": item(2, basic=1)}
    assert clean_items(["not", "a", "dict"]) == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]),
                          st.sampled_from(["completed", "abandoned", "failed"]),
                          st.booleans()), max_size=60),
       st.lists(st.integers(0, 60), max_size=8))
def test_deltas_add_up_to_the_totals_whatever_is_lost(events, ack_points):
    """Heartbeats at arbitrary points, some lost (never acknowledged): the acknowledged
    deltas always add up to exactly the totals at the last acknowledgement."""
    totals: dict = {}
    acked: dict = {}
    server: dict = {}
    for index, (item_id, outcome, lost) in enumerate(events):
        entry = totals.setdefault(item_id, item())
        entry[outcome] += 1
        if index in ack_points or index == len(events) - 1:
            usage, covered = usage_delta(json.loads(json.dumps(totals)), acked)
            if lost and index != len(events) - 1:
                continue
            for u in usage:
                for key in ("completed", "abandoned", "failed"):
                    server[(u["item_id"], key)] = server.get((u["item_id"], key), 0) + u.get(key, 0)
            acked = covered
    for item_id, entry in totals.items():
        for key in ("completed", "abandoned", "failed"):
            assert server.get((item_id, key), 0) == entry[key]


def hb(at, *, app="running", devices=(), interval=30):
    return json.dumps({"sent_at": at, "interval_s": interval, "app": {"state": app},
                       "devices": [{"name": n, "state": s} for n, s in devices]})


def test_pending_heartbeat_and_acknowledgement(tmp_path):
    store = AgentStore(tmp_path / "agent.sqlite3")
    assert store.next_seq() == 1 and store.next_seq() == 2
    store.set_pending(2, "heartbeat", "{}", {"tax": item(1)})
    store.close()
    store = AgentStore(tmp_path / "agent.sqlite3")  # a crash here: it is still there
    assert store.pending().seq == 2
    assert store.acked_items() == {}
    store.acknowledged()
    assert store.pending() is None
    assert store.acked_items() == {"tax": item(1)}
    assert store.next_seq() == 3


def test_buffer_is_bounded_and_the_summary_counts_what_was_dropped(tmp_path):
    store = AgentStore(tmp_path / "agent.sqlite3")
    t0 = 1_000_000.0
    for i in range(10):
        app = "down" if 3 <= i < 6 else "running"
        devices = [("receipt_printer", "hardware_error" if i == 1 else "online"), ("qr", "online")]
        store.buffer_add(t0 + 30 * i, hb(t0 + 30 * i, app=app, devices=devices), max_rows=4,
                         max_age_s=86_400)
    assert store.buffered() == 4
    summary = store.offline_summary(t0 + 300)
    assert summary["since"] == t0
    assert summary["heartbeats_buffered"] == 4
    assert summary["heartbeats_dropped"] == 6
    assert summary["app_down_s"] == 90.0
    assert summary["worst_device_states"] == {"qr": "online", "receipt_printer": "hardware_error"}
    wire.OfflineSummary.model_validate(summary)
    # Old ones go by age too.
    store.buffer_add(t0 + 90_000, hb(t0 + 90_000), max_rows=100, max_age_s=86_400)
    assert store.buffered() == 1
    # A summary acknowledged ends the offline period.
    store.set_pending(store.next_seq(), "summary", "{}", {})
    store.acknowledged()
    assert store.offline_summary(t0 + 90_030) is None


def test_results_are_kept_until_posted(tmp_path):
    store = AgentStore(tmp_path / "agent.sqlite3")
    store.save_result("cmd-1", '{"a": 1}')
    store.save_result("cmd-2", '{"a": 2}')
    assert store.command_seen("cmd-1") and not store.command_seen("cmd-3")
    assert [r[0] for r in store.unposted_results()] == ["cmd-1", "cmd-2"]
    store.mark_posted("cmd-1")
    assert [r[0] for r in store.unposted_results()] == ["cmd-2"]
    assert store.command_seen("cmd-1")  # never run twice
