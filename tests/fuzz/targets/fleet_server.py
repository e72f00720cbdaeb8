"""The fleet server's request bodies and query strings, as its route handler reads them.

`fleet_server_bodies` takes every route in `fleet.server.routes.ROUTES` that has a JSON body
or a query model and does what `_endpoint` does before the handler runs: the body cut at the
route's `max_body`, `model_validate_json`, a `ValidationError` turned into an `ApiProblem`
by `_validation_problem` (400 malformed_json / wire_version, 422 invalid_body); query strings
through `model_validate_strings` and the same mapping; then what the handlers do with the raw
bytes and the parsed body first (the heartbeat's raw text as UTF-8, a command result's data
as JSON). Bodies: valid ones for each model, tree mutations, byte mutations, deep JSON,
random bytes. Documented error: `ApiProblem`. (Signed headers: see signing.py.)
"""

from __future__ import annotations

import json
import random
from typing import Any

from pydantic import BaseModel, ValidationError

from fleet.server import routes
from fleet.server.errors import ApiProblem
from tests.fuzz import mutate
from tests.fuzz.engine import Target
from tests.fuzz.targets import fleet as fleet_target

_BODY_BUILDERS: dict[str, Any] = {
    "Heartbeat": fleet_target._heartbeat,
    "CommandResult": fleet_target._command_result,
    "EnrolRequest": fleet_target._enrol_request,
    "LoginRequest": lambda rng: {"username": "ops", "password": "correct horse"},
    "UserCreate": lambda rng: {"name": "ops.wx", "password": "x" * 12, "role": "operator",
                               "regions": ["320200"]},
    "UserUpdate": lambda rng: {"role": "viewer", "disabled": rng.random() < 0.5},
    "Site": lambda rng: {"site_id": "wx-bank-01", "site_type": "bank", "name": "无锡支行",
                         "region": "320200", "longitude": 120.3, "latitude": 31.5},
    "TokenCreate": lambda rng: {"ttl_s": 3600},
    "CommandCreate": lambda rng: {"name": "out_of_service", "args": {"reason": "维护"}, "ttl_s": 600},
    "CredentialRevoke": lambda rng: {"credential_id": "cred-1", "note": "lost"},
}
_QUERY_VALUES = {
    "region": "320200", "site_type": "bank", "state": "online", "health": "ok", "alert": "any",
    "site_id": "wx-bank-01", "limit": "100", "offset": "0", "status": "open",
    "severity": "critical", "rule": "supply_out", "actor": "ops", "device_id": "kiosk-0001",
    "acked": "false", "group_by": "item", "from_day": "2026-11-01", "to_day": "2026-11-22",
    "item_id": "ssc_payment_records",
}

_BODY_ROUTES = [r for r in routes.ROUTES if r.body is not None]
_QUERY_ROUTES = [r for r in routes.ROUTES if r.query is not None]


def _body(rng: random.Random, route: routes.Route) -> bytes:
    builder = _BODY_BUILDERS.get(route.body.__name__)
    tree = builder(rng) if builder else {}
    roll = rng.random()
    if roll < 0.2:
        raw = json.dumps(tree, ensure_ascii=False).encode()
    elif roll < 0.75:
        raw = mutate.to_json(rng, mutate.mutate_tree(rng, tree))
    elif roll < 0.85:
        raw = mutate.mutate_bytes(rng, json.dumps(tree).encode())
    elif roll < 0.93:
        raw = mutate.deep_json(rng).encode()
    else:
        raw = mutate.random_bytes(rng, 100)
    return raw


def _query(rng: random.Random, route: routes.Route) -> dict[str, str]:
    fields = list(route.query.model_fields)
    query = {name: _QUERY_VALUES.get(name, "x") for name in rng.sample(fields, rng.randint(0, len(fields)))}
    for _ in range(rng.choice((0, 1, 2))):
        name = rng.choice(fields + ["unknown"])
        query[name] = rng.choice((mutate.odd_text(rng, 12), "", "-1", "1e400", "9" * 40, "nan",
                                  "true", "2026-02-30", mutate.mutate_text(rng, query.get(name, "x"))))
    return query


def _server_input(rng: random.Random) -> tuple[str, str, Any]:
    if rng.random() < 0.8:
        route = rng.choice(_BODY_ROUTES)
        return "body", route.operation_id, _body(rng, route)
    route = rng.choice(_QUERY_ROUTES)
    return "query", route.operation_id, _query(rng, route)


_BY_ID = {r.operation_id: r for r in routes.ROUTES}


def read_request(value: tuple[str, str, Any]) -> str:
    where, operation, data = value
    route = _BY_ID[operation]
    model: type[BaseModel]
    try:
        if where == "query":
            model = route.query
            model.model_validate_strings(data)
            return f"{operation}: query ok"
        model = route.body
        if len(data) > route.max_body:
            raise ApiProblem(413, "body_too_large", "")
        body = model.model_validate_json(data)
    except ValidationError as exc:
        problem = routes._validation_problem(exc, where)
        assert problem.status in (400, 422) and problem.code, problem
        raise problem from None
    if model.__name__ == "Heartbeat":
        data.decode("utf-8")  # post_heartbeat stores the raw text
    if model.__name__ == "CommandResult" and body.data:
        json.loads(json.dumps(body.data, ensure_ascii=False))  # stored, read back by queries
    return f"{operation}: ok"


FLEET_SERVER_BODIES = Target(
    name="fleet_server_bodies",
    parser="fleet/server/routes.py: body (model_validate_json) and query "
           "(model_validate_strings) parsing of every route, _validation_problem",
    generate=_server_input,
    run=read_request,
    documented=(ApiProblem,),
    short_examples=10_000,
)

TARGETS = (FLEET_SERVER_BODIES,)
