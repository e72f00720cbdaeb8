"""Fleet wire: the JSON bodies the agent and the fleet server read from each other.

`fleet_wire` parses bodies with each model's `model_validate_json`, as both sides do:
Heartbeat, CommandResult and EnrolRequest (what the server reads from kiosks), HeartbeatAck,
Command, EnrolResponse and ApiError (what the agent reads from the server). Bodies are valid
documents built from random but plausible values, the same trees mutated (wrong types,
huge/non-finite numbers, unknown keys, deep nesting, long strings), deeply nested JSON, byte
mutations and random bytes; every body stays within the server's size limits
(MAX_HEARTBEAT_BYTES, MAX_COMMAND_RESULT_BYTES), as the server checks those first. A parsed
model must dump back to JSON that parses to an equal model (what the agent's buffer does).

Documented error: pydantic's `ValidationError`.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from pydantic import BaseModel, ValidationError

from fleet import wire
from tests.fuzz import mutate
from tests.fuzz.engine import Target

NOW = 1_795_000_000.0


def _device(rng: random.Random) -> dict[str, Any]:
    report: dict[str, Any] = {
        "name": rng.choice(("receipt", "a4", "idcard", "ssc", "qr")),
        "device_class": rng.choice(("id_card_reader", "ssc_reader", "qr_scanner", "receipt_printer", "a4_printer")),
        "lifecycle": rng.choice(("closed", "open", "claimed", "enabled")),
        "state": rng.choice(("online", "offline", "hardware_error", "user_error", "busy")),
        "supplies": {"paper": rng.choice(("full", "low", "out", "jammed", "unknown"))},
        "info": {"model": "TM-T20II", "serial": "X1"},
    }
    if rng.random() < 0.3:
        report["last_error"] = {"kind": "user", "action": "clear", "code": "printer.paper_out",
                                "vendor_text": "", "at": NOW}
    return report


def _heartbeat(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {
        "wire_version": 1, "kind": rng.choice(("heartbeat", "summary", "going_offline")),
        "seq": rng.randint(0, 10**6), "sent_at": NOW, "interval_s": 30,
        "app": {"state": "running", "screen": "attract", "uptime_s": 12.5, "outbox_pending": 0},
        "devices": [_device(rng) for _ in range(rng.randint(0, 5))],
        "counters": {"journeys_started": 3, "journeys_completed": 2},
        "usage": [{"item_id": "ssc_payment_records", "completed": 1,
                   "ratings": {"very_satisfied": 1}} for _ in range(rng.randint(0, 3))],
        "versions": {"app": "0.1.0", "catalogue": "7", "catalogue_published_at": "2026-11-22T10:00:00Z"},
        "disk": {"path": "/var/lib/kiosk", "total_bytes": 10**11, "free_bytes": 10**10},
        "cabinet": {"door_open": False, "tamper": None},
        "system_uptime_s": 100.0, "clock_synced": True,
    }
    if body["kind"] == "summary":
        body["summary"] = {"since": NOW - 600, "heartbeats_buffered": 20,
                           "worst_device_states": {"receipt": "offline"}}
    return body


def _command_result(rng: random.Random) -> dict[str, Any]:
    return {"command_id": "cmd-1", "status": rng.choice(("done", "failed", "rejected", "expired")),
            "detail": "", "data": {"png_base64": "iVBORw0KGgo=", "width": 1080, "height": 1920},
            "finished_at": NOW}


def _enrol_request(rng: random.Random) -> dict[str, Any]:
    return {"token": "e" * 32, "csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
            "app_version": "0.1.0"}


def _command(rng: random.Random) -> dict[str, Any]:
    return {"id": "cmd-1", "name": rng.choice(("out_of_service", "in_service", "apply_bundle", "screenshot")),
            "args": {"reason": "维护"}, "issued_at": NOW, "expires_at": NOW + 60}


def _ack(rng: random.Random) -> dict[str, Any]:
    return {"server_time": NOW, "interval_s": 30, "commands": [_command(rng) for _ in range(rng.randint(0, 2))],
            "revoked_credentials": ["cred-1"]}


def _enrol_response(rng: random.Random) -> dict[str, Any]:
    return {"device_id": "kiosk-0001", "certificate_pem": "-----BEGIN CERTIFICATE-----\n",
            "ca_certificate_pem": "-----BEGIN CERTIFICATE-----\n",
            "site": {"site_id": "wx-bank-01", "site_type": "bank", "name": "无锡支行",
                     "region": "320200", "longitude": 120.3, "latitude": 31.5},
            "heartbeat_interval_s": 30}


_MODELS: dict[str, tuple[type[BaseModel], Any, int]] = {
    "Heartbeat": (wire.Heartbeat, _heartbeat, wire.MAX_HEARTBEAT_BYTES),
    "CommandResult": (wire.CommandResult, _command_result, wire.MAX_COMMAND_RESULT_BYTES),
    "EnrolRequest": (wire.EnrolRequest, _enrol_request, wire.MAX_HEARTBEAT_BYTES),
    "HeartbeatAck": (wire.HeartbeatAck, _ack, wire.MAX_HEARTBEAT_BYTES),
    "Command": (wire.Command, _command, wire.MAX_HEARTBEAT_BYTES),
    "EnrolResponse": (wire.EnrolResponse, _enrol_response, wire.MAX_HEARTBEAT_BYTES),
    "ApiError": (wire.ApiError, lambda rng: {"error": "wire_version", "detail": "x"}, wire.MAX_HEARTBEAT_BYTES),
}


def _fleet_input(rng: random.Random) -> tuple[str, bytes]:
    name = rng.choice(list(_MODELS))
    _, build, limit = _MODELS[name]
    tree = build(rng)
    roll = rng.random()
    if roll < 0.2:
        body = json.dumps(tree, ensure_ascii=False).encode()
    elif roll < 0.75:
        body = mutate.to_json(rng, mutate.mutate_tree(rng, tree))
    elif roll < 0.85:
        body = mutate.mutate_bytes(rng, json.dumps(tree).encode())
    elif roll < 0.93:
        body = mutate.deep_json(rng).encode()
    else:
        body = mutate.random_bytes(rng, 100)
    return name, body[:limit]


def has_non_finite(value: Any) -> bool:
    """Whether a dumped model holds NaN or ±Infinity anywhere (iteratively: may be deep)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


# Known finding, reported to the lead (fleet/wire.py is theirs): pydantic's JSON parser takes
# NaN/Infinity, the models accept them in float fields and in free-form args/data, and
# model_dump_json writes them as null, so such a body is accepted but does not survive the
# agent's buffer. tests/fuzz/test_regressions.py holds the strict xfail that tracks the fix.
NON_FINITE = "accepted NaN/Infinity (known: fleet/wire.py needs allow_inf_nan=False)"


def parse_fleet(value: tuple[str, bytes]) -> str:
    name, body = value
    model = _MODELS[name][0]
    parsed = model.model_validate_json(body)
    if has_non_finite(parsed.model_dump()):
        return NON_FINITE
    again = model.model_validate_json(parsed.model_dump_json())
    assert again == parsed, f"{name} does not survive a dump and re-parse"
    return f"{name}: ok"


FLEET_WIRE = Target(
    name="fleet_wire",
    parser="fleet/wire.py: Heartbeat, CommandResult, EnrolRequest, HeartbeatAck, Command, "
           "EnrolResponse, ApiError via model_validate_json",
    generate=_fleet_input,
    run=parse_fleet,
    documented=(ValidationError,),
    label=lambda exc: f"ValidationError:{exc.title}:{exc.errors()[0]['type']}" if isinstance(exc, ValidationError) else type(exc).__name__,
    short_examples=10_000,
    from_bytes=lambda data: (list(_MODELS)[data[0] % len(_MODELS)] if data else "Heartbeat", data[1:]),
)

TARGETS = (FLEET_WIRE,)
