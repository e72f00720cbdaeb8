"""Inputs the fuzz run found that broke a parser, kept as plain regression tests, and the
harness's own checks (an undocumented exception is counted, the inputs are reproducible).

Each regression names the exception that used to escape; the fix is in the parser.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from fleet import wire as fleet_wire
from kiosk.items.loader import ItemError, load_item
from kiosk.items.manifest import ManifestError, read_manifest
from kiosk.items.testing import MINIMAL_TOML, write_item
from kiosk.platform.api import PlatformProtocolError
from tests.fuzz.engine import Target, fuzz
from tests.fuzz.targets import all_targets
from tests.fuzz.targets.fleet import parse_fleet
from tests.fuzz.targets.platform import call_platform

GOOD = MINIMAL_TOML.format(id="test_item", code="TEST-0001")


# -- item.toml and locales (kiosk/items) ---------------------------------------------------------


def test_certificate_field_naming_no_field_is_a_problem_not_a_key_error():
    # was: KeyError from Manifest.field() inside the model validator, through pydantic
    text = GOOD.replace('kind = "print"\n', 'kind = "print"\ncertificate_field = "licence"\n')
    with pytest.raises(ManifestError) as caught:
        read_manifest(text, "item.toml", "test_item")
    assert "names no field" in caught.value.problems[0].message
    assert caught.value.problems[0].line == text.splitlines().index('certificate_field = "licence"') + 1


@pytest.mark.parametrize(
    "line",
    ["x = " + "[" * 1000 + "]" * 1000, "x = " + "{ a = " * 1000 + "1" + " }" * 1000],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_is_a_problem_not_a_recursion_error(line):
    # was: RecursionError out of tomllib through parse_toml
    with pytest.raises(ManifestError) as caught:
        read_manifest(GOOD + line + "\n", "item.toml", "test_item")
    assert "nested too deeply" in caught.value.problems[0].message


def test_deeply_dotted_locale_key_is_a_problem_not_a_recursion_error(tmp_path):
    # was: RecursionError in loader._walk (tomllib builds 1500 nested tables from one line)
    key = ".".join(["items", "test_item"] + ["a"] * 1500)
    folder = write_item(tmp_path, locales={"zh_CN": f'{key} = "x"\n', "en": "[items.test_item]\n"})
    with pytest.raises(ItemError) as caught:
        load_item(folder)
    assert "has no en translation" in caught.value.problems[0].message


@pytest.mark.parametrize("text", ["剩余 {count 次", "Single } brace", "{count}} 次"])
def test_unpaired_brace_in_a_translation_is_a_problem_not_a_value_error(tmp_path, text):
    # was: ValueError from string.Formatter().parse in i18n.placeholders
    locales = {"zh_CN": f'[items.test_item]\nhint = "{text}"\n', "en": '[items.test_item]\nhint = "ok"\n'}
    folder = write_item(tmp_path, locales=locales)
    with pytest.raises(ItemError) as caught:
        load_item(folder)
    problem = caught.value.problems[0]
    assert problem.file.endswith("zh_CN.toml") and problem.line == 2
    assert "unpaired" in problem.message


# -- platform answers (kiosk/platform/wire.py) -------------------------------------------------------


def test_token_lifetime_of_400_digits_is_a_protocol_error_not_an_overflow():
    # was: OverflowError in HttpPlatformClient._access_token (expires_in / 10)
    token = json.dumps({"access_token": "t" * 32, "token_type": "Bearer", "expires_in": 10**400})
    with pytest.raises(PlatformProtocolError):
        call_platform(("rate", [(200, token.encode())], 1))


def test_authorisation_lifetime_of_400_digits_is_a_protocol_error_not_an_overflow():
    # was: OverflowError adding expires_in to the float clock in verify_code
    token = json.dumps({"access_token": "t" * 32, "expires_in": 60}).encode()
    answer = json.dumps({
        "holder": {"name": "王晓明", "id_number": "320211198506151318"},
        "authorization": {"token": "a" * 32, "expires_in": 10**400},
    }).encode()
    with pytest.raises(PlatformProtocolError):
        call_platform(("verify_code", [(200, token), (200, answer)], 1))


# -- fleet wire (fleet/wire.py, lead-owned: reported, not fixed here) ---------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_heartbeat_with_a_non_finite_time_is_refused(number):
    body = ('{"seq": 1, "sent_at": %s, "app": {"state": "running"}, "versions": {"app": "1"}}'
            % number)
    with pytest.raises(ValidationError):
        fleet_wire.Heartbeat.model_validate_json(body)


def test_fleet_bodies_round_trip_when_finite():
    body = json.dumps({"command_id": "c-1", "status": "done", "data": {"w": 1}, "finished_at": 1.5})
    assert parse_fleet(("CommandResult", body.encode())) == "CommandResult: ok"


# -- the harness -----------------------------------------------------------------------------------


def test_an_undocumented_exception_is_counted_with_its_input():
    def run(value: bytes) -> None:
        if value == b"\x01":
            raise KeyError("boom")
        if value == b"\x02":
            raise ValueError("documented")

    target = Target("self-test", "none", lambda rng: bytes([rng.randrange(3)]), run, (ValueError,))
    result = fuzz(target, 300, seed=1)
    assert result.inputs == 300
    assert result.uncaught == result.outcomes["UNCAUGHT KeyError"] > 0
    assert result.outcomes["ValueError"] > 0 and result.accepted == result.outcomes["ok"] > 0
    assert base64.b64decode(result.failures[0].input.removeprefix("b64:")) == b"\x01"


_FINGERPRINT = """
import hashlib, random
from tests.fuzz.targets import all_targets
for target in all_targets():
    rng, digest = random.Random(f"{target.name}/7"), hashlib.sha256()
    for _ in range(30):
        digest.update(repr(target.generate(rng)).encode("utf-8", "surrogatepass"))
    print(target.name, digest.hexdigest())
"""


def test_inputs_are_reproducible_from_the_seed_in_another_process():
    """A failing input must be regenerable from (target, seed, index) on another machine:
    no randomness outside the seeded Random (random ECDSA nonces, token_bytes...)."""
    here = io.StringIO()
    with contextlib.redirect_stdout(here):
        exec(_FINGERPRINT, {})
    there = subprocess.run(
        [sys.executable, "-c", _FINGERPRINT], capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parents[2], timeout=60,
    ).stdout
    assert here.getvalue() == there
    assert len(there.splitlines()) == len(all_targets())
