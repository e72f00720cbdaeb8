"""`kiosk fleet-server ...` (fleet.server.cli.main): init, users, sites, tokens, revoke, and
`serve` as a real process that answers /healthz and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request


from fleet.server.cli import main
from tests.fleet.conftest import free_port


def test_init_users_sites_tokens_revoke(tmp_path, monkeypatch, capsys):
    state = str(tmp_path / "fleet")
    monkeypatch.setenv("ADMIN_PW", "first-admin-pw")
    assert main(["init", "--state-dir", state, "--admin", "root", "--password-env",
                 "ADMIN_PW"]) == 0
    assert (tmp_path / "fleet" / "ca" / "ca.crt").exists()
    assert (tmp_path / "fleet" / "fleet.db").exists()
    assert main(["init", "--state-dir", state, "--admin", "root", "--password-env",
                 "ADMIN_PW"]) == 1  # the CA is kept, the user exists
    assert "user_exists" in capsys.readouterr().err
    assert main(["users", "add", "wuxi-ops", "--role", "operator", "--region", "320200",
                 "--state-dir", state, "--password-env", "ADMIN_PW"]) == 0
    assert main(["sites", "add", "--state-dir", state, "--id", "wx-post-07", "--type", "post",
                 "--name", "无锡邮政", "--region", "320205", "--lon", "120.3",
                 "--lat", "31.5"]) == 0
    assert main(["sites", "add", "--state-dir", state, "--id", "bad", "--type", "post",
                 "--name", "x", "--region", "32", "--lon", "0", "--lat", "0"]) == 1
    capsys.readouterr()
    assert main(["tokens", "create", "--state-dir", state, "--site", "wx-post-07",
                 "--ttl", "600"]) == 0
    assert capsys.readouterr().out.strip().startswith("kenr_")
    assert main(["tokens", "create", "--state-dir", state, "--site", "nope"]) == 1
    assert main(["revoke", "--state-dir", state, "no-such-kiosk"]) == 1
    assert "kiosk_unknown" in capsys.readouterr().err


def test_serve_runs_answers_and_stops_on_sigterm(tmp_path, monkeypatch):
    state = str(tmp_path / "fleet")
    monkeypatch.setenv("ADMIN_PW", "first-admin-pw")
    assert main(["init", "--state-dir", state, "--password-env", "ADMIN_PW"]) == 0
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fleet.server.cli", "serve", "--state-dir",
                             state, "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert json.load(r)["database"] == "sqlite"
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "the server never answered"
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
