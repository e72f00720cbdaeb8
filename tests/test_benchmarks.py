"""Every benchmark in bench/ runs and prints one JSON object as its last line, with the keys
its issue asks for. Only the shape is checked here: figures come from `make bench`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADLESS_ENV = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}

CASES = {
    "startup.py": (["--runs", "1"], {"start_s", "rss_mb"}),
    "qr.py": (["--frames", "3"], {"sets"}),
    "print.py": (["--runs", "3"], {"receipt_median_ms", "receipt_bytes"}),
    "journey.py": (["--runs", "2"], {"journeys"}),
    "ui.py": (["--rounds", "1"], {"transition_median_ms", "transition_p95_ms"}),
    "fleet.py": (["--smoke"], {"ours", "pushgateway", "ratio"}),
}


def test_every_benchmark_is_covered():
    assert {p.name for p in (ROOT / "bench").glob("*.py")} == set(CASES)


@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_prints_json(script, tmp_path):
    args, keys = CASES[script]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True, text=True, cwd=tmp_path, env=HEADLESS_ENV, timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert keys <= set(figures), figures
    if script == "qr.py":
        for entry in figures["sets"]:
            assert {"project", "pyzbar", "zxing"} <= set(entry)
    if script == "journey.py":
        assert {j["kind"] for j in figures["journeys"]} == {"print", "query", "submit"}
        assert all({"item", "p50_ms", "p95_ms"} <= set(j) for j in figures["journeys"])
