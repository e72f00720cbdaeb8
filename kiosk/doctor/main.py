"""`kiosk doctor [--config FILE] [--json]`: exit 0 when nothing failed (warnings allowed),
1 when a check failed, 2 when the config does not load (which is itself the first check)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from kiosk.config import ConfigError, load
from kiosk.doctor.model import CheckResult, DoctorOptions, Status, fail, ok

_MARK = {Status.OK: "ok  ", Status.WARN: "WARN", Status.FAIL: "FAIL"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kiosk doctor",
        description="Check this kiosk machine and say how to fix what is wrong.",
    )
    p.add_argument("--config", help="config file (default: $KIOSK_CONFIG, else ./kiosk.toml)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--user", default="kiosk", help="user the kiosk app runs as (default kiosk)")
    p.add_argument("--agent-user", default="kiosk-agent",
                   help="user the fleet agent runs as (default kiosk-agent)")
    p.add_argument("--state-dir", help="fleet agent state dir (default: [fleet] state_dir, "
                   "else <data_dir>/fleet)")
    p.add_argument("--skip", action="append", default=[], metavar="GROUP",
                   help="leave a group of checks out (e.g. devices while the app holds them)")
    p.add_argument("--open-devices", action="store_true",
                   help="open the devices even while the kiosk app runs (it holds them)")
    p.add_argument("--timeout", type=float, default=4.0, help="seconds per group (default 4)")
    return p


def _config_path(arg: str | None) -> Path | None:
    if arg:
        return Path(arg)
    if os.environ.get("KIOSK_CONFIG"):
        return Path(os.environ["KIOSK_CONFIG"])
    local = Path("kiosk.toml")
    return local if local.is_file() else None


def render(results: list[CheckResult], seconds: float) -> str:
    lines = []
    for r in results:
        lines.append(f"{_MARK[r.status]}  {r.name:28} {r.found}")
        if r.fix:
            lines.append(f"{'':6}{'':28} fix: {r.fix}")
    counts = {s: sum(r.status is s for r in results) for s in Status}
    lines.append(f"{counts[Status.OK]} ok, {counts[Status.WARN]} warning(s), "
                 f"{counts[Status.FAIL]} failed in {seconds:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from kiosk.doctor.runner import run_checks

    args = parser().parse_args(argv)
    # Drivers log what they find at WARNING; the report says it better. Errors still show.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    path = _config_path(args.config)
    try:
        config = load(path)
    except ConfigError as exc:
        result = fail("config.load", str(exc).replace("\n", " "),
                      f"correct the file; `kiosk config check {path or ''}` re-checks it")
        if args.json:
            print(json.dumps({"ok": False, "checks": [result.to_json()]}, ensure_ascii=False))
        else:
            print(render([result], 0.0))
        return 2
    options = DoctorOptions(
        user=args.user,
        agent_user=args.agent_user,
        state_dir=Path(args.state_dir) if args.state_dir else None,
        group_timeout_s=args.timeout,
        open_devices=args.open_devices,
        skip=frozenset(args.skip),
    )
    report = asyncio.run(run_checks(config, options))
    report.results.insert(0, ok("config.load", f"{path or '<built-in defaults>'} loads"))
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render(report.results, report.seconds))
    sys.stdout.flush()
    return report.exit_code
