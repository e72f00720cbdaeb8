"""QR decoding benchmark: the project's pipeline (drivers/qr/decode.py) against raw pyzbar
(restricted to QR) and raw zxing-cpp (QR only, default options) on the same fixed-seed
simulated camera frames — easy / medium / hard at 640×480 and 1280×720, 50 frames each.

A read counts as a success only if the decoded text equals the code rendered into the frame.
Times are per frame, wall clock, single thread; medians over all frames of the set (failed
reads included, since a kiosk pays for them too). The last line printed is one JSON object:
{"sets": [{"name": ..., "project": {"success": n, "median_ms": x}, "pyzbar": {...},
"zxing": {...}}], ...}. Usage: .venv/bin/python bench/qr.py [--frames N]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.qr.decode import PyzbarDecoder, QrDecoder, ZxingDecoder  # noqa: E402
from drivers.sim.camera import frame_set  # noqa: E402

LEVELS = ("easy", "medium", "hard")
SIZES = ("640x480", "1280x720")
SEED = 2024


def measure(decoders: dict, frames) -> dict[str, dict[str, float | int]]:
    """Each frame through every decoder in turn (interleaved, so load from other processes
    on a shared machine hits all of them alike)."""
    success = dict.fromkeys(decoders, 0)
    times: dict[str, list[float]] = {key: [] for key in decoders}
    for frame in frames:
        for key, decoder in decoders.items():
            started = time.perf_counter()
            decoded = decoder.decode(frame.image)
            times[key].append((time.perf_counter() - started) * 1000)
            success[key] += decoded is not None and decoded.text == frame.expected
    return {key: {"success": success[key], "median_ms": round(statistics.median(times[key]), 2)}
            for key in decoders}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50, help="frames per set (default 50)")
    args = parser.parse_args()
    decoders = {"project": QrDecoder(), "pyzbar": PyzbarDecoder(), "zxing": ZxingDecoder()}
    started = time.perf_counter()
    sets = []
    for level in LEVELS:
        for size in SIZES:
            frames = frame_set(level, size, n=args.frames, seed=SEED)
            row: dict[str, object] = {"name": f"{level}-{size}", "frames": len(frames)}
            # Warm each decoder on one frame so first-call costs don't land in the median.
            for decoder in decoders.values():
                decoder.decode(frames[0].image)
            row.update(measure(decoders, frames))
            sets.append(row)
            p, z, b = row["project"], row["zxing"], row["pyzbar"]
            print(f"{row['name']:>16}: project {p['success']:>2} in {p['median_ms']:>6} ms | "
                  f"zxing {z['success']:>2} in {z['median_ms']:>6} ms | "
                  f"pyzbar {b['success']:>2} in {b['median_ms']:>6} ms", file=sys.stderr)
    ok = all(
        s["project"]["success"] >= s["zxing"]["success"]
        and s["project"]["median_ms"] <= 1.2 * s["zxing"]["median_ms"]
        for s in sets
    )
    print(json.dumps({
        "sets": sets,
        "seed": SEED,
        "project_at_least_zxing_within_1_2x": ok,
        "python": platform.python_version(),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }))


if __name__ == "__main__":
    main()
