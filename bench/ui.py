"""Touch-to-screen latency of the kiosk UI over whole journeys, offscreen.

One `kiosk`-like process renders the real app (SDL offscreen + Mesa llvmpipe, the same code
path as a kiosk minus the display), opens its services (sandbox platform, outbox, the
simulated devices) and plays whole visits by touches at widget positions
(screens/journeys.py): print via 苏服码, submit via 社保卡, query via ID card with a receipt,
in normal and 长辈模式. Each tap that leads to another screen is timed from the touch going
down to the first frame of the new screen (the app records when it drew it). Printing and
platform calls run between "confirm" and "result" and are not a screen transition: the
"working" screen comes first.

Prints JSON last: {"transition_median_ms", "transition_p95_ms", "transitions", "journeys",
"per_page_median_ms": {...}}. Goal (issue 5): median <= 100 ms, p95 <= 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

JOURNEYS = (
    ("ssc_participation_cert", "c01", "code", False, {}),
    ("flexible_employment_enrol", "c03", "ssc", False, {}),
    ("ssc_payment_records", "c04", "idcard", False, {"receipt": True}),
    ("ssc_participation_cert", "c02", "code", True, {}),
)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="times to play the journey set")
    args = parser.parse_args()
    for key in ("DISPLAY", "WAYLAND_DISPLAY"):
        os.environ.pop(key, None)

    from kiosk.config import KioskConfig
    from kiosk.runtime import build
    from screens.run import prepare, run_async

    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
        config = KioskConfig.model_validate(
            {"paths": {"data_dir": str(Path(tmp) / "var")}, "logging": {"level": "WARNING"}}
        )
        runtime = build(config)
        prepare(runtime, headless=True)

        async def script(pilot) -> None:
            from screens import journeys

            transitions: list[float] = []
            per_page: dict[str, list[float]] = {}
            played = 0
            for _ in range(args.rounds):
                for item_id, citizen_id, via, elderly, options in JOURNEYS:
                    if elderly:
                        await pilot.tap(pilot.widget("attract", "elderly"))
                    walk = await journeys.visit(pilot, item_id, citizen_id, via, **options)
                    for page, ms in zip(walk.pages, walk.transitions, strict=False):
                        per_page.setdefault(page, []).append(ms)
                    transitions += walk.transitions
                    played += 1
            results.update(
                transitions=transitions, per_page=per_page, journeys=played,
            )

        asyncio.run(run_async(runtime, script))
    transitions = results["transitions"]
    print(json.dumps({
        "transition_median_ms": round(statistics.median(transitions), 1),
        "transition_p95_ms": round(percentile(transitions, 0.95), 1),
        "transition_max_ms": round(max(transitions), 1),
        "transitions": len(transitions),
        "journeys": results["journeys"],
        "per_page_median_ms": {
            page: round(statistics.median(ms), 1) for page, ms in sorted(results["per_page"].items())
        },
    }))


if __name__ == "__main__":
    main()
