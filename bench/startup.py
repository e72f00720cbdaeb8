"""Cold start of the kiosk app to its first rendered attract frame, and the process's peak RSS.

Each run starts a new `kiosk run --headless --quit-after-first-frame` process (offscreen
SDL + Mesa, the same code path as a real kiosk minus the display) and times it from spawn
to the line the app prints once the first frame is on screen. Peak RSS comes from the
child's own rusage. Median of N runs (default 5); the last line printed is JSON:
{"start_s": ..., "rss_mb": ..., "runs": N, "start_s_each": [...], "rss_mb_each": [...]}
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


def one_run(config: Path) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(KIOSK), "--config", str(config), "run", "--headless", "--quit-after-first-frame"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    )
    first_frame = None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith('{"first_frame"'):
            first_frame = time.perf_counter() - started
            break
    proc.stdout.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if first_frame is None or proc.returncode != 0:
        raise SystemExit(f"kiosk run failed (exit {proc.returncode}) before its first frame")
    return first_frame, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        config = Path(tmp) / "kiosk.toml"
        config.write_text('[paths]\ndata_dir = "var"\n[logging]\nlevel = "WARNING"\n')
        one_run(config)  # warm-up: creates Kivy's home once, as on an installed kiosk
        results = [one_run(config) for _ in range(args.runs)]
    starts = [round(s, 3) for s, _ in results]
    rss = [round(r, 1) for _, r in results]
    print(
        json.dumps(
            {
                "start_s": round(statistics.median(starts), 3),
                "rss_mb": round(statistics.median(rss), 1),
                "runs": args.runs,
                "start_s_each": starts,
                "rss_mb_each": rss,
            }
        )
    )


if __name__ == "__main__":
    main()
