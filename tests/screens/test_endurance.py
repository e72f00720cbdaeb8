"""200 visits in one running kiosk app: resident memory grows by at most 10 MB, and nothing
the app can reach still holds the last citizen's name or ID number (tests/screens/endurance.py
runs them in a process of its own, as a kiosk runs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADLESS_ENV = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


@pytest.mark.timeout(300)
def test_200_visits_keep_memory_flat_and_forget_the_last_citizen():
    result = subprocess.run(
        [sys.executable, "-m", "tests.screens.endurance", "--visits", "200"],
        capture_output=True, text=True, cwd=ROOT, env=HEADLESS_ENV, timeout=280,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(figures)
    assert figures["visits"] == 200
    assert figures["rss_after_mb"] - figures["rss_before_mb"] <= 10, figures
    assert figures["strings_searched"] > 5_000 and figures["control"], figures
    assert figures["hits"] == [], figures
