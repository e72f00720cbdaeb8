"""`kiosk provision ...` (provisioning.cli.main): enrol, status, and the ops tools, driven
with real arguments; one run as a real process (`python -m provisioning`)."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from provisioning.bundles import BundleStore
from provisioning.cli import main
from provisioning.credentials import MaintenanceGate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.asyncio
async def test_enrol_then_status(enrol_server, tmp_path, capsys):
    state = str(tmp_path / "state")
    argv = ["--server", enrol_server.url, "--token", enrol_server.new_token(), "--state-dir", state]
    # main() runs its own event loop, as it does under `kiosk provision`: give it a thread.
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "enrolled as kiosk-" in out and "wx-bank-001" in out and "valid until" in out
    assert await asyncio.to_thread(main, argv) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["status", "--state-dir", state]) == 0
    out = capsys.readouterr().out
    assert "device id:" in out and "region 320213" in out and "days left" in out
    assert main(["status", "--state-dir", state, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["enrolled"] and report["site"]["site_id"] == "wx-bank-001"
    assert 820 <= report["certificate_days_left"] <= 825 and report["file_problems"] == []


@pytest.mark.asyncio
async def test_enrol_failure_prints_the_ops_sentence(enrol_server, tmp_path, capsys):
    argv = ["--server", enrol_server.url, "--token", "kenr_" + "c" * 32,
            "--state-dir", str(tmp_path / "s")]
    assert await asyncio.to_thread(main, argv) == 1
    assert "does not know this enrolment token" in capsys.readouterr().err


def test_usage_errors_and_not_enrolled(tmp_path, capsys):
    assert main([]) == 2
    assert main(["--server", "https://x"]) == 2
    assert main(["--help"]) == 0 and main(["status", "--help"]) == 0
    assert main(["status", "--state-dir", str(tmp_path / "none")]) == 1
    assert "not enrolled" in capsys.readouterr().err


def test_bundle_keygen_and_sign_make_bundles_the_kiosk_installs(tmp_path, capsys):
    key = tmp_path / "ops" / "bundle.key"
    assert main(["bundle-keygen", "--out", str(key)]) == 0
    assert main(["bundle-keygen", "--out", str(key)]) == 1  # never overwrites a key
    assert key.stat().st_mode & 0o777 == 0o600
    public = serialization.load_pem_public_key(Path(f"{key}.pub").read_bytes())
    payload = tmp_path / "catalogue.json"
    payload.write_text('{"items": []}')
    out = tmp_path / "catalogue.bundle"
    argv = ["bundle-sign", "--kind", "catalogue", "--version", "3", "--key", str(key),
            "--out", str(out), str(payload)]
    assert main(argv) == 0
    installed = BundleStore(tmp_path / "kiosk", [public]).apply(out.read_bytes())
    assert installed.version == 3 and installed.payload == b'{"items": []}'
    assert main(argv[:-1] + [str(tmp_path / "missing")]) == 1


def test_credential_issue_reads_the_pin_from_stdin(tmp_path, capsys, monkeypatch):
    key = tmp_path / "cred.key"
    assert main(["bundle-keygen", "--out", str(key)]) == 0
    capsys.readouterr()
    public = serialization.load_pem_public_key(Path(f"{key}.pub").read_bytes())
    monkeypatch.setattr(sys, "stdin", io.StringIO("246810\n"))
    assert main(["credential-issue", "--key", str(key), "--holder", "wang.fang",
                 "--region", "320200", "--valid-for-hours", "1"]) == 0
    issued = json.loads(capsys.readouterr().out)
    gate = MaintenanceGate(public, "kiosk-0001", "320213")
    assert gate.attempt(issued["credential"], "246810").ok


def test_python_dash_m_provisioning_runs_as_a_process(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "provisioning", "status", "--state-dir", str(tmp_path / "x")],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 1 and "not enrolled" in done.stderr
