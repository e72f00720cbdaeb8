"""Every parser of outside bytes, fed generated inputs: zero uncaught exceptions.

The short run (part of `make test`) uses each target's `short_examples`; `make fuzz` sets
FUZZ_EXAMPLES=100000 for every target. Each test writes its figures to
test-artifacts/fuzz/report.json ({target: {inputs, seconds, uncaught, outcomes, ...}}), so CI
can report how many inputs actually ran. FUZZ_SEED changes the inputs (default fixed, so a
failure reproduces); a failure prints the inputs that broke the parser and its traceback.
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz.engine import REPORT_PATH, examples_for, fuzz, seed_from_env, write_report
from tests.fuzz.targets import all_targets

TARGETS = all_targets()


@pytest.fixture(scope="module", autouse=True)
def _fresh_report():
    """The report describes this run only: no figures left over from an earlier one."""
    REPORT_PATH.unlink(missing_ok=True)
    yield


def _timeout() -> int:
    # pytest's default 120 s per test is for the short run; a 100k run of the slowest
    # target (item folders, ~5 ms an input) needs more.
    examples = int(os.environ.get("FUZZ_EXAMPLES") or 0)
    return max(120, examples // 40)


@pytest.mark.timeout(_timeout())
@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_parser_survives_generated_inputs(target):
    examples, seed = examples_for(target), seed_from_env()
    run = fuzz(target, examples, seed)
    write_report(run, seed)
    assert run.inputs == examples
    assert run.uncaught == 0, run.summary()
    # Structure-aware inputs must get past the first length check: a share of them is
    # accepted, and the rest fail in several different ways.
    assert run.accepted >= examples // 20, f"{target.name}: too few inputs accepted: {dict(run.outcomes)}"
    assert len(run.outcomes) >= 2, f"{target.name}: too few distinct outcomes: {dict(run.outcomes)}"
