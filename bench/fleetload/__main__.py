"""`python -m bench.fleetload`: pre-sign a pool of requests, send it with wrk, print JSON.

    python -m bench.fleetload --target ours|pushgateway --url http://127.0.0.1:PORT \
        --kiosks kiosks.json [--limit N] [--connections C] [--threads T] [--duration S] \
        [--max-rps R | --rounds K] [--seq-start Q] [--interval S] [--once]
        [--sessions-out FILE (with --once) | --sessions FILE]

`kiosks.json` is a list of {"device_id", "site_id", "key_pem"} (bench/fleet.py writes it).
The pool holds `rounds` requests per kiosk, by default enough for `max-rps` over the whole
duration; a thread that runs dry stops, and the result says `"exhausted": true` (its rate is
then a lower bound). The last stdout line is JSON with the rate, latency percentiles, errors,
and the CPU the generator used: presigning (this process and its workers) and wrk itself.
`--once` instead sends every kiosk one heartbeat (aiohttp, untimed) and reports the statuses;
with `--sessions-out FILE` each kiosk opens a device session first, sends that heartbeat in
it, and the sessions go to FILE. `--sessions FILE` then presigns the pools with those
sessions' MACs instead of ECDSA signatures (what a current agent sends).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.fleetload.once import load_sessions, send_once
from bench.fleetload.payloads import SimKiosk
from bench.fleetload.pool import PoolSpec, write_pools

LUA = Path(__file__).with_name("wrk.lua")
HARMLESS = {"ours": "/healthz", "pushgateway": "/-/healthy"}  # sent once a pool runs dry


def _cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_wrk(url: str, pool_dir: Path, threads: int, connections: int, duration_s: float,
            harmless_path: str) -> tuple[dict, float]:
    """wrk's JSON summary and the CPU seconds wrk used."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration_s))}s",
             "--timeout", "10s", "-s", str(LUA), url, "--", str(pool_dir), harmless_path],
            stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    lines = [ln for ln in text.splitlines() if ln.startswith('{"requests"')]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"wrk failed (exit {proc.returncode}):\n{text[-2000:]}")
    return json.loads(lines[-1]), usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("ours", "pushgateway"), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--kiosks", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0, help="use the first N kiosks only")
    parser.add_argument("--offset", type=int, default=0, help="skip the first N kiosks")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds (wrk takes whole ones)")
    parser.add_argument("--max-rps", type=float, default=15_000.0,
                        help="size the pool for this rate over the whole duration")
    parser.add_argument("--rounds", type=int, default=0, help="requests per kiosk (overrides)")
    parser.add_argument("--seq-start", type=int, default=1)
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--presign-processes", type=int, default=2)
    parser.add_argument("--once", action="store_true",
                        help="send one heartbeat per kiosk and stop (untimed; no wrk)")
    parser.add_argument("--sessions-out", type=Path,
                        help="with --once: open a device session per kiosk, write them here")
    parser.add_argument("--sessions", type=Path,
                        help="MAC the pools with these sessions (from --sessions-out)")
    args = parser.parse_args(argv)

    entries = json.loads(args.kiosks.read_text())
    entries = entries[args.offset:]
    if args.limit:
        entries = entries[:args.limit]
    kiosks = tuple(SimKiosk(e["device_id"], e["site_id"], e["key_pem"]) for e in entries)
    if args.once:
        started = time.perf_counter()
        statuses = asyncio.run(send_once(args.url, kiosks, args.connections, args.seq_start,
                                         args.interval, args.sessions_out))
        seconds = time.perf_counter() - started
        print(json.dumps({"target": args.target, "kiosks": len(kiosks), "statuses": statuses,
                          "seconds": round(seconds, 2),
                          "rps": round(len(kiosks) / seconds, 1) if seconds else 0.0}))
        return 0
    threads = max(1, min(args.threads, args.connections))
    if len(kiosks) < 2 * args.connections:
        # With fewer kiosks per thread than connections per thread one kiosk could have two
        # heartbeats in flight, and the second could overtake the first (a replay refusal).
        raise SystemExit(f"need at least {2 * args.connections} kiosks for "
                         f"{args.connections} connections (have {len(kiosks)})")
    rounds = args.rounds or max(1, math.ceil(args.max_rps * args.duration / len(kiosks)))
    sessions = None
    if args.sessions is not None and args.target == "ours":
        sessions = load_sessions(args.sessions)
        missing = [k.device_id for k in kiosks if k.device_id not in sessions]
        if missing:
            raise SystemExit(f"no session for {len(missing)} kiosks (e.g. {missing[0]})")
    host = urlsplit(args.url).netloc

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fleetload-") as tmp:
        prepared = write_pools(PoolSpec(args.target, host, kiosks, rounds, args.seq_start,
                                        time.time(), args.interval, sessions),
                               threads, Path(tmp), args.presign_processes)
        presign_s = time.perf_counter() - started
        presign_cpu = _cpu_s(resource.RUSAGE_SELF) + _cpu_s(resource.RUSAGE_CHILDREN)
        print(f"fleetload: {prepared} {args.target} requests for {len(kiosks)} kiosks "
              f"prepared in {presign_s:.1f} s; sending for {args.duration:g} s with "
              f"{args.connections} connections", file=sys.stderr, flush=True)
        summary, wrk_cpu = run_wrk(args.url, Path(tmp), threads, args.connections,
                                   args.duration, HARMLESS[args.target])
    duration = summary["duration_us"] / 1e6
    errors = summary["errors"]
    lat = summary["latency_us"]
    result = {
        "target": args.target, "kiosks": len(kiosks), "connections": args.connections,
        "signing": None if args.target != "ours" else (
            "session" if sessions is not None else "ecdsa"),
        "threads": threads, "duration_s": round(duration, 2),
        "requests": summary["requests"],
        "rps": round(summary["requests"] / duration, 1) if duration else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 2), "p90_ms": round(lat["p90"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2), "max_ms": round(lat["max"] / 1000, 2),
        "errors": errors, "failed": sum(errors.values()),
        "prepared": prepared, "rounds": rounds, "seq_end": args.seq_start + rounds,
        "exhausted": summary["exhausted_threads"] > 0,
        "presign_s": round(presign_s, 2), "presign_cpu_s": round(presign_cpu, 2),
        "wrk_cpu_s": round(wrk_cpu, 2),
        "wrk_cpu_cores": round(wrk_cpu / duration, 2) if duration else 0.0,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
