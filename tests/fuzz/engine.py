"""The fuzz loop: a seeded generator feeds a parser, and every outcome is counted.

A `Target` names one parser of outside bytes, how to make an input (`generate`, from a
`random.Random`) and how to feed it (`run`), and which exceptions are the parser's
documented answer to junk (`documented`: its typed errors). `fuzz()` runs it N times and
returns a `FuzzRun`: inputs actually executed, wall time, outcomes by kind (so a report shows
how deep the inputs got: "ok", "FrameError:sam.bad_checksum", ...), the slowest input, and
every *uncaught* exception (anything not documented) with the input that caused it.

Why a plain seeded loop rather than hypothesis for the counting run: hypothesis spends most
of its time on its own bookkeeping (choice sequences, the example database, shrinking), which
makes 100,000 examples per target take minutes; the same generators driven by a seeded
`random.Random` run 10-50x faster and are just as reproducible: seed + index regenerate any
input. Hypothesis stays in the project's property tests; atheris (coverage-guided) can drive
the same `run` functions (tests/fuzz/atheris_run.py).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_PATH = Path(__file__).resolve().parents[2] / "test-artifacts" / "fuzz" / "report.json"
DEFAULT_SEED = 20261122
_KEPT_FAILURES = 5


def examples_for(target: Target) -> int:
    """FUZZ_EXAMPLES for every target when set (`make fuzz`: 100000), else the target's
    short-run count."""
    value = os.environ.get("FUZZ_EXAMPLES")
    return int(value) if value else target.short_examples


def seed_from_env() -> int:
    return int(os.environ.get("FUZZ_SEED", DEFAULT_SEED))


@dataclass(frozen=True)
class Target:
    name: str
    parser: str  # the code under test, for the report and docs/fuzzing.md
    generate: Callable[[random.Random], Any]
    run: Callable[[Any], object]  # returns None or a label for a non-error outcome
    documented: tuple[type[BaseException], ...]
    # How a documented error is counted; default: class name plus its `code` if it has one.
    label: Callable[[BaseException], str] | None = None
    # Inputs in the short run (`make test`) when FUZZ_EXAMPLES is not set: cheap targets
    # get more, so the whole short run stays within its time budget.
    short_examples: int = 2000
    # For coverage-guided byte fuzzers (atheris): raw bytes → an input for `run`. Targets
    # without it get `generate` driven by a Random seeded from the bytes.
    from_bytes: Callable[[bytes], Any] | None = None


@dataclass
class Failure:
    index: int
    input: str  # repr (text) or base64 (bytes), to paste into a regression test
    error: str
    traceback: str


@dataclass
class FuzzRun:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    uncaught: int = 0
    accepted: int = 0  # inputs the parser took without any error: the fuzz got deep
    slowest_ms: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)

    def as_report(self, seed: int) -> dict[str, Any]:
        return {
            "inputs": self.inputs,
            "seconds": round(self.seconds, 3),
            "uncaught": self.uncaught,
            "accepted": self.accepted,
            "seed": seed,
            "slowest_ms": round(self.slowest_ms, 2),
            "outcomes": dict(self.outcomes.most_common(40)),
            "failures": [f.__dict__ for f in self.failures],
        }

    def summary(self) -> str:
        lines = [f"{self.target}: {self.inputs} inputs in {self.seconds:.1f}s, "
                 f"{self.uncaught} uncaught"]
        for failure in self.failures:
            lines.append(f"  #{failure.index}: {failure.error}\n    input: {failure.input[:500]}\n"
                         + "".join("    " + line + "\n" for line in failure.traceback.splitlines()[-8:]))
        return "\n".join(lines)


def _label(exc: BaseException) -> str:
    label = type(exc).__name__
    for attribute in ("code", "reason"):  # typed errors name what went wrong, never values
        value = getattr(exc, attribute, None)
        if isinstance(value, str):
            label += f":{value[:60]}"
    return label


def show_input(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "b64:" + base64.b64encode(bytes(value)).decode("ascii")
    text = repr(value)
    return text if len(text) <= 20_000 else text[:20_000] + "...(cut)"


def fuzz(target: Target, examples: int, seed: int) -> FuzzRun:
    """Run `target` on `examples` generated inputs; never raises for the parser's sake."""
    rng = random.Random(f"{target.name}/{seed}")
    label = target.label or _label
    result = FuzzRun(target.name)
    # Parsers log what they refuse; a million log lines would only slow the run down.
    previous_disable = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        _loop(target, examples, rng, label, result)
    finally:
        logging.disable(previous_disable)
    return result


def _loop(target: Target, examples: int, rng: random.Random, label: Callable[[BaseException], str],
          result: FuzzRun) -> None:
    started = time.perf_counter()
    for index in range(examples):
        try:
            value = target.generate(rng)
        except Exception as exc:  # the harness's own bug, not the parser's: stop loudly
            raise RuntimeError(f"{target.name}: the generator failed at input {index}") from exc
        one = time.perf_counter()
        try:
            returned = target.run(value)
            # A target may name a non-error outcome ("incomplete", "no frame") itself.
            outcome = returned if isinstance(returned, str) else "ok"
            result.accepted += 1
        except target.documented as exc:
            outcome = label(exc)
        except Exception as exc:  # the point of fuzzing: anything undocumented is a bug
            result.uncaught += 1
            outcome = f"UNCAUGHT {type(exc).__name__}"
            if len(result.failures) < _KEPT_FAILURES:
                result.failures.append(
                    Failure(index, show_input(value), f"{type(exc).__name__}: {exc}"[:500],
                            traceback.format_exc()[-4000:])
                )
        result.slowest_ms = max(result.slowest_ms, (time.perf_counter() - one) * 1000)
        result.outcomes[outcome] += 1
        result.inputs += 1
    result.seconds = time.perf_counter() - started


def write_report(run: FuzzRun, seed: int, path: Path = REPORT_PATH) -> None:
    """Merge one target's figures into the JSON report {target: {inputs, seconds, ...}}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        report = json.loads(path.read_text("utf-8"))
        if not isinstance(report, dict):
            report = {}
    except (OSError, ValueError):
        report = {}
    report[run.target] = run.as_report(seed)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n", "utf-8")
    os.replace(temporary, path)
