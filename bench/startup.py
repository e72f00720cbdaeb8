"""Cold start of the kiosk app to its first rendered attract frame, then to its services being
up (platform client, outbox, the five simulated devices), and the process's peak RSS.

Each run starts a new `kiosk run --headless --quit-after-first-frame` process (offscreen
SDL + Mesa, the same code path as a real kiosk minus the display) and times it from spawn
to the line the app prints once the first frame is on screen, and to the line it prints once
its services are ready (they start after the first frame). Peak RSS comes from the child's
own rusage (at the end: everything loaded); `rss_first_frame_mb` is its peak at the first
frame. Median of N runs (default 5); the last line printed is JSON:
{"start_s": ..., "ready_s": ..., "rss_mb": ..., "rss_first_frame_mb": ..., "runs": N, ...}
Goals (issue 2): start_s <= 2.0, rss_mb <= 200 on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIOSK = Path(sys.executable).with_name("kiosk")


def one_run(config: Path) -> tuple[float, float, float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(KIOSK), "--config", str(config), "run", "--headless", "--quit-after-first-frame"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    first_frame = ready = None
    rss_first = 0.0
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith('{"first_frame"'):
            first_frame = time.perf_counter() - started
            rss_first = json.loads(line)["rss_mb"]
        elif line.startswith('{"services_ready"'):
            if not json.loads(line)["services_ready"]:
                raise SystemExit("the kiosk's services failed to start")
            ready = time.perf_counter() - started
            break
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if first_frame is None or ready is None or proc.returncode != 0:
        raise SystemExit(f"kiosk run failed (exit {proc.returncode}) before its services were up")
    return first_frame, ready, usage.ru_maxrss / 1024, rss_first  # ru_maxrss: KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        config = Path(tmp) / "kiosk.toml"
        config.write_text('[paths]\ndata_dir = "var"\n[logging]\nlevel = "WARNING"\n')
        one_run(config)  # warm-up: creates Kivy's home once, as on an installed kiosk
        results = [one_run(config) for _ in range(args.runs)]
    starts = [round(r[0], 3) for r in results]
    readies = [round(r[1], 3) for r in results]
    rss = [round(r[2], 1) for r in results]
    rss_first = [round(r[3], 1) for r in results]
    print(
        json.dumps(
            {
                "start_s": round(statistics.median(starts), 3),
                "ready_s": round(statistics.median(readies), 3),
                "rss_mb": round(statistics.median(rss), 1),
                "rss_first_frame_mb": round(statistics.median(rss_first), 1),
                "runs": args.runs,
                "start_s_each": starts,
                "ready_s_each": readies,
                "rss_mb_each": rss,
            }
        )
    )


if __name__ == "__main__":
    main()
