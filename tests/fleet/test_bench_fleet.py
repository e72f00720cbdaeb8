"""bench/fleet.py runs end to end (a small fleet, a few seconds of load) and prints the JSON
the issue asks for, with nothing failed; its generator's payloads are valid. Figures are not
asserted: they come from a full run (`python bench/fleet.py`), not from CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.fleetload.payloads import (  # noqa: E402
    SimKiosk,
    heartbeat_body,
    prometheus_text,
    template_checked,
)
from bench.fleetload.pool import PoolSpec, write_pools  # noqa: E402
from fleet.wire import Heartbeat  # noqa: E402

needs_tools = pytest.mark.skipif(
    not (shutil.which("wrk") and shutil.which("prometheus-pushgateway")),
    reason="needs the Debian packages wrk and prometheus-pushgateway")


def _kiosk(n: int) -> SimKiosk:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return SimKiosk(f"bench-{n:05d}-k{n:010x}", f"bench-{n:05d}", pem)


def test_payloads_are_valid_heartbeats_and_exposition():
    kiosks = [_kiosk(n) for n in range(40)]  # some have paper low or a jam (by id)
    for kiosk in kiosks:
        template = template_checked(kiosk, 30)
        for seq in (1, 5, 6):
            hb = Heartbeat.model_validate_json(heartbeat_body(template, seq, 1.7e9))
            assert hb.seq == seq and hb.counters.journeys_completed == seq
            assert {d.device_class for d in hb.devices} == {
                "id_card_reader", "ssc_reader", "qr_scanner", "receipt_printer", "a4_printer"}
    text = b"".join(prometheus_text(k, 3, 1.7e9) for k in kiosks[:1])
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True)
        assert check.returncode in (0, 3), check.stderr  # 3: lint advice only, still valid


def test_pool_keeps_each_kiosks_counters_in_order(tmp_path):
    kiosks = tuple(_kiosk(n) for n in range(6))
    spec = PoolSpec("ours", "127.0.0.1:1", kiosks, rounds=3, seq_start=1, sent_at=1.7e9,
                    interval_s=30)
    assert write_pools(spec, threads=2, directory=tmp_path, processes=1) == 18
    seen: dict[str, list[int]] = {}
    for t in (1, 2):
        data = (tmp_path / f"pool-{t}.bin").read_bytes()
        while data:
            length, _, rest = data.partition(b"\n")
            raw, data = rest[:int(length)], rest[int(length):]
            head = raw.split(b"\r\n\r\n", 1)[0].decode()
            fields = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
            seen.setdefault(fields["Kiosk-Device"], []).append(int(fields["Kiosk-Counter"]))
            # each kiosk lives in one thread's pool only
            assert kiosks.index(next(k for k in kiosks
                                     if k.device_id == fields["Kiosk-Device"])) % 2 == t - 1
    assert len(seen) == 6
    assert all(c == sorted(c) and len(set(c)) == 3 for c in seen.values())


@needs_tools
def test_bench_fleet_smoke_run(tmp_path):
    work = tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "fleet.py"), "--smoke", "--keep", str(work)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=110)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"ours", "pushgateway", "ratio", "offline_alert_s", "offline_bound_s",
            "pages_ms", "failed"} <= set(figures)
    for side in ("ours", "pushgateway"):
        assert {"rps", "p50_ms", "p99_ms", "failed", "exhausted"} <= set(figures[side])
        assert figures[side]["rps"] > 0 and figures[side]["failed"] == 0
        assert not figures[side]["exhausted"]
    assert figures["ours"]["ingest"]["refused"] == 0  # counters reached it strictly in order
    assert figures["failed"] == 0
    assert figures["bootstrap"]["primed"] == 120
    assert figures["offline_alert_s"] is not None and figures["offline_alert_s"] > 0
    assert {"api_overview", "api_kiosks"} <= set(figures["pages_ms"])
    assert "median" in figures["pages_ms"]["api_overview"]
    # the server and the Pushgateway it started are gone
    leftovers = [p for p in Path("/proc").glob("[0-9]*/cmdline")
                 if str(work).encode() in _read(p)]
    assert not leftovers, leftovers


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
