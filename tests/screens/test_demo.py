"""`kiosk demo` and `kiosk run` as a user runs them: real processes, headless."""

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image, ImageStat

KIOSK = Path(sys.executable).with_name("kiosk")
HEADLESS_ENV = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}


def test_headless_demo_writes_a_screenshot_of_every_screen(tmp_path):
    out = tmp_path / "shots"
    result = subprocess.run(
        [KIOSK, "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=HEADLESS_ENV,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    listed = [Path(line.strip()) for line in result.stdout.splitlines()
              if line.strip().endswith(".png") and not Path(line.strip()).name.startswith("journey-")
              and Path(line.strip()).parent == out]
    names = [p.name for p in listed]
    assert names == sorted(p.name for p in out.glob("[0-9]*.png"))
    for expected in ("attract-zh", "attract-zh-elderly", "attract-en", "identify-zh",
                     "identify-countdown-zh", "attract-after-timeout", "out-of-service-zh"):
        assert any(n[3:-4] == expected for n in names), expected
    for path in listed:
        image = Image.open(path)
        assert image.size == (1280, 800)
        # Not blank: a rendered screen has both dark text and light background.
        extrema = ImageStat.Stat(image.convert("L")).extrema[0]
        assert extrema[0] < 60 and extrema[1] > 200, path
    # The zh and en attract screens differ where the text is (the language really switched).
    zh, en = (Image.open(out / n).convert("L") for n in (names[0], names[2]))
    assert zh.tobytes() != en.tobytes()
    # Whole journeys through the touch UI: every page of a visit, in normal and 长辈模式.
    pages = {}
    for name in names:
        parts = name[3:-4].split("-")
        if parts[0].startswith("j") and parts[0][1:].isdigit():
            pages.setdefault(parts[2], set()).add("-".join(parts[3:]))
    for mode in ("normal", "elderly"):
        assert pages[mode] >= {"identify", "catalogue", "guide", "field-choice", "field-phone",
                               "field-month", "field-year", "consent", "commitment", "confirm",
                               "result", "rating"}, (mode, pages[mode])
    assert len({n.split("-")[1] for n in names if n[3:4] == "j"}) >= 3
    assert result.stdout.count("UI journey ") >= 3
    # The fleet around it: a server, this kiosk enrolled and reporting, the dashboard captured.
    assert "heartbeats with the app running" in result.stdout
    for page in ("overview", "kiosks", "kiosk", "alerts", "stats", "map"):
        shot = out / "fleet" / f"{page}.png"
        assert shot.is_file() and Image.open(shot).size[0] == 1280, page
    assert (tmp_path / "var").is_dir()  # the demo's state stayed in its own folder

    # The system part: whole journeys on the simulated devices and the sandbox.
    reports = json.loads((out / "journeys.json").read_text(encoding="utf-8"))
    assert [r["outcome"] for r in reports] == ["printed", "submitted", "answered", "printed"]
    assert all(r["ok"] for r in reports)
    pdfs = sorted(out.glob("journey-*-a4-*.pdf"))
    assert len(pdfs) == 2 and all(p.read_bytes().startswith(b"%PDF") for p in pdfs)
    (receipt,) = out.glob("journey-2-*-receipt-1.png")
    assert Image.open(receipt).size[0] == 576  # an 80 mm receipt, decoded from ESC/POS


def test_run_headless_reports_its_first_frame_and_exits(tmp_path):
    result = subprocess.run(
        [KIOSK, "run", "--headless", "--quit-after-first-frame"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=HEADLESS_ENV,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.strip().splitlines() if line.startswith("{")]
    assert lines[0]["first_frame"] is True and lines[0]["rss_mb"] > 0
    assert lines[1]["services_ready"] is True  # then the services came up behind it
