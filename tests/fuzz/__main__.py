"""`python -m tests.fuzz`: run fuzz targets outside pytest, with the same report.

    python -m tests.fuzz --list
    python -m tests.fuzz --summary          # the report as a table (for CI logs)
    python -m tests.fuzz --examples 100000 sam_frames ipp_answer   # seeded loop
    python -m tests.fuzz --atheris --examples 100000 ipp_answer     # coverage-guided

The seeded loop is what `make test` / `make fuzz` run (through pytest). `--atheris` drives a
target's `run` with atheris 3.0.0 (libFuzzer, coverage-guided; a prebuilt manylinux wheel,
no clang needed) when it is importable: bytes go through the target's `from_bytes`, or seed
its generator. Atheris stops at the first undocumented exception and prints it; the report
entry is `<target>[atheris]` with the inputs actually executed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence

from tests.fuzz.engine import REPORT_PATH, FuzzRun, fuzz, seed_from_env, write_report


def _seeded(names: Sequence[str], examples: int, seed: int) -> int:
    from tests.fuzz.targets import all_targets

    failed = 0
    for target in all_targets():
        if names and target.name not in names:
            continue
        run = fuzz(target, examples, seed)
        write_report(run, seed)
        print(run.summary(), flush=True)
        failed += run.uncaught > 0
    return 1 if failed else 0


def _atheris(name: str, examples: int, seed: int) -> int:
    try:
        import atheris
    except ImportError:
        print("atheris is not installed (pip install atheris==3.0.0)", file=sys.stderr)
        return 2
    with atheris.instrument_imports(include=["drivers", "kiosk", "fleet", "provisioning"]):
        from tests.fuzz.targets import by_name

        target = by_name(name)
    result = FuzzRun(f"{target.name}[atheris]")
    started = time.perf_counter()

    def one(data: bytes) -> None:
        value = target.from_bytes(data) if target.from_bytes else target.generate(random.Random(data))
        result.inputs += 1
        try:
            target.run(value)
            result.accepted += 1
        except target.documented:
            pass
        finally:
            result.seconds = time.perf_counter() - started
            if result.inputs == examples:
                write_report(result, seed)

    atheris.Setup([sys.argv[0], f"-runs={examples}", f"-seed={seed}", "-max_len=4096"], one)
    atheris.Fuzz()  # exits the process when done or on the first uncaught exception
    return 0


def _summary() -> int:
    import json

    try:
        report = json.loads(REPORT_PATH.read_text("utf-8"))
    except (OSError, ValueError):
        print(f"no report at {REPORT_PATH}", file=sys.stderr)
        return 2
    print(f"{'target':26} {'inputs':>8} {'seconds':>8} {'accepted':>8} {'uncaught':>8}")
    for name, entry in sorted(report.items()):
        print(f"{name:26} {entry['inputs']:>8} {entry['seconds']:>8.1f} "
              f"{entry.get('accepted', 0):>8} {entry['uncaught']:>8}")
    return 1 if any(entry["uncaught"] for entry in report.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help="target names (default: all)")
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=seed_from_env())
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, one target")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--summary", action="store_true", help="print report.json as a table")
    args = parser.parse_args(argv)
    if args.summary:
        return _summary()
    if args.list:
        from tests.fuzz.targets import all_targets

        for target in all_targets():
            print(f"{target.name:18} {target.parser}")
        return 0
    if args.atheris:
        if len(args.targets) != 1:
            parser.error("--atheris runs exactly one target")
        return _atheris(args.targets[0], args.examples, args.seed)
    code = _seeded(args.targets, args.examples, args.seed)
    print(f"report: {REPORT_PATH}")
    return code


if __name__ == "__main__":
    sys.exit(main())
